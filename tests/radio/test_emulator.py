"""radio.Emulator: reproducibility, the truth's definitions, time variation, bad input, TOML."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from scipy.special import j0

import radio
from common import ConfigError
from radio.channel_models import ChannelRealisation
from radio.emulator import used_subcarriers

CFG = radio.FrameConfig()
WIDE = radio.FrameConfig(preset="custom", sample_rate_hz=30.72e6, fft_size=1024, cp_length=128, num_used_subcarriers=768,
                         preamble_cp_length=256)  # the 30.72 MS/s numerology, built directly


def _ofdm_like(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


def test_same_seed_same_output_and_calls_differ() -> None:
    x = _ofdm_like(3000)
    kw = dict(profile="TDL-C", snr_db=10.0, delay_spread_s=100e-9, max_speed_mps=20.0,
              impairments=radio.Impairments.typical())
    a, b = radio.Emulator(CFG, seed=7, **kw), radio.Emulator(CFG, seed=7, **kw)
    (ya1, ta1), (ya2, ta2) = a(x), a(x)
    (yb1, tb1), (yb2, tb2) = b(x), b(x)
    np.testing.assert_array_equal(ya1, yb1)
    np.testing.assert_array_equal(ya2, yb2)
    assert ta1.to_dict() == tb1.to_dict() and ta2.to_dict() == tb2.to_dict()
    assert ya1.shape != ya2.shape or not np.array_equal(ya1, ya2)  # a fresh realisation per call
    yc, _ = radio.Emulator(CFG, seed=8, **kw)(x)
    assert yc.shape != ya1.shape or not np.array_equal(yc, ya1)


def test_emulator_leaves_torch_global_rng_alone() -> None:
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    radio.Emulator(CFG, profile="TDL-A", seed=1)(_ofdm_like(100))
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_noise_follows_the_snr_definition() -> None:
    """SNR = per-used-subcarrier Es/N0 = time-domain SNR × N_fft / N_used, measured on the FFT bins of a
    unit-power OFDM signal through AWGN."""
    n, u = CFG.fft_size, CFG.num_used_subcarriers
    rng = np.random.default_rng(5)
    num_symbols = 2000
    grid = np.zeros((num_symbols, n), np.complex128)
    bins = used_subcarriers(CFG) % n
    grid[:, bins] = (rng.standard_normal((num_symbols, u)) + 1j * rng.standard_normal((num_symbols, u))) / np.sqrt(2)
    x = (np.fft.ifft(grid, norm="ortho") * np.sqrt(n / u)).ravel().astype(np.complex64)  # unit time power
    assert np.mean(np.abs(x) ** 2) == pytest.approx(1.0, rel=0.01)
    ch = radio.Emulator(CFG, profile="AWGN", snr_db=7.0, seed=2)
    rx, truth = ch(x)
    assert truth.noise_var == pytest.approx(n / u / 10 ** 0.7)
    assert truth.snr_db == pytest.approx(7.0) and truth.start == 0
    y = np.fft.fft(rx.reshape(num_symbols, n), norm="ortho")
    x_f = np.fft.fft(x.reshape(num_symbols, n), norm="ortho")
    es = np.mean(np.abs(x_f[:, bins]) ** 2)
    n0 = np.mean(np.abs(y[:, bins] - x_f[:, bins]) ** 2)
    assert 10 * np.log10(es / n0) == pytest.approx(7.0, abs=0.05)  # 192 000 bins: 0.01 dB standard error


@pytest.mark.parametrize("cfg", [CFG, WIDE], ids=["3.84MSps", "30.72MSps"])
@pytest.mark.parametrize("profile", ["TDL-A", "TDL-E", "Rayleigh"])
def test_realised_snr_is_nominal_plus_used_subcarrier_gain(profile: str, cfg: radio.FrameConfig) -> None:
    """Measure the impulse response through the emulator, take its DFT on the used subcarriers, compare."""
    ch = radio.Emulator(cfg, profile=profile, snr_db=300.0, delay_spread_s=300e-9, seed=4)
    probe = np.zeros(1, np.complex64)
    probe[0] = 1
    for _ in range(5):
        rx, truth = ch(probe)
        lags = np.arange(len(rx)) - truth.start
        k = used_subcarriers(cfg)
        h_k = np.exp(-2j * np.pi * np.outer(k, lags) / cfg.fft_size) @ rx
        gain_db = 10 * np.log10(np.mean(np.abs(h_k) ** 2))
        assert truth.snr_db == pytest.approx(300.0 + gain_db, abs=1e-3)
        np.testing.assert_allclose(truth.frequency_response(cfg)[0], h_k, atol=1e-5)


def test_realised_snr_of_a_time_varying_channel_averages_its_blocks() -> None:
    ch = radio.Emulator(WIDE, profile="TDL-C", snr_db=10.0, delay_spread_s=300e-9, max_speed_mps=300.0, seed=2)
    truth = ch(_ofdm_like(40_000))[1]
    assert truth.realisation.taps.shape[0] > 3
    gain = np.mean(np.abs(truth.frequency_response(WIDE)) ** 2)
    assert truth.snr_db == pytest.approx(10.0 + 10 * np.log10(gain), abs=1e-4)


def test_returned_buffers_are_not_reused_between_calls() -> None:
    """The emulator works in reusable scratch; what it returned stays intact through later calls."""
    ch = radio.Emulator(WIDE, profile="TDL-C", snr_db=10.0, max_speed_mps=30.0, seed=3,
                        impairments=radio.Impairments.typical())
    x = _ofdm_like(20_000)
    first, _ = ch(x)
    kept = first.copy()
    ch(x)
    ch(_ofdm_like(5_000, seed=1))
    np.testing.assert_array_equal(first, kept)
    assert np.array_equal(radio.Emulator(WIDE, ch.config)(x)[0], kept)  # same seed, same first call


def test_realised_snr_averages_to_nominal() -> None:
    """The channel has unit average power over realisations: mean of 10^(gain/10) ≈ 1."""
    ch = radio.Emulator(CFG, profile="TDL-C", snr_db=10.0, delay_spread_s=1000e-9, seed=9)
    gains = np.array([10 ** (ch(np.ones(1, np.complex64))[1].channel_gain_db / 10) for _ in range(400)])
    assert abs(gains.mean() - 1.0) < 5 * gains.std() / np.sqrt(len(gains))


def test_block_convolution_equals_direct_convolution() -> None:
    rng = np.random.default_rng(0)
    x = _ofdm_like(1000)
    taps = (rng.standard_normal((4, 9)) + 1j * rng.standard_normal((4, 9))).astype(np.complex64)
    r = ChannelRealisation(taps=taps, l_min=-2, path_powers=np.ones(1), path_delays_s=np.zeros(1))
    y = r.apply(x, block_length=256)
    ref = np.zeros(len(x) + 8, np.complex128)
    for b in range(4):
        seg = x[b * 256:(b + 1) * 256]
        ref[b * 256: b * 256 + len(seg) + 8] += np.convolve(seg, taps[b])
    np.testing.assert_allclose(y, ref, atol=1e-4)
    same = ChannelRealisation(np.repeat(taps[:1], 4, 0), -2, np.ones(1), np.zeros(1))
    np.testing.assert_allclose(same.apply(x, 256), scipy.signal.oaconvolve(x, taps[0]), atol=1e-4)


def test_doppler_time_correlation_follows_clarke() -> None:
    """Tap correlation between blocks ≈ J0(2π f_d Δt) for a fixed speed (Sionna's sum-of-sinusoids)."""
    speed, fc, block = 30.0, 2.4e9, 256
    ch = radio.Emulator(CFG, profile="TDL-C", snr_db=300.0, delay_spread_s=30e-9, carrier_frequency_hz=fc,
                        min_speed_mps=speed, max_speed_mps=speed, block_length=block, seed=11)
    x = _ofdm_like(block * 60)
    rows = np.array([ch(x)[1].realisation.taps[:, 6] for _ in range(300)])  # lag 0 tap, [n, blocks]
    fd = speed / 299_792_458.0 * fc
    for lag in (10, 30, 59):
        rho = np.mean(rows[:, 0] * np.conj(rows[:, lag])) / np.mean(np.abs(rows[:, 0]) ** 2)
        assert abs(rho.real - j0(2 * np.pi * fd * lag * block / CFG.sample_rate_hz)) < 0.15
    static = radio.Emulator(CFG, profile="TDL-C", snr_db=10.0, seed=11)
    assert static(x)[1].realisation.taps.shape[0] == 1


def test_bad_input_raises_clear_errors() -> None:
    ch = radio.Emulator(CFG, profile="AWGN", snr_db=10.0, seed=1)
    for bad, msg in [(np.zeros(0, np.complex64), "empty"), (np.zeros((2, 3), np.complex64), "1-D"),
                     (np.array([1, np.nan], np.complex64), "NaN"), (np.array(["a"]), "numeric")]:
        with pytest.raises(radio.EmulatorInputError, match=msg):
            ch(bad)
    with pytest.raises(ConfigError, match="unknown channel profile"):
        radio.Emulator(CFG, profile="TDL-Z")
    with pytest.raises(ConfigError, match="delay_spread_s"):
        radio.Emulator(CFG, profile="TDL-A", delay_spread_s=-1e-9)
    with pytest.raises(ConfigError, match="max_speed_mps"):
        radio.Emulator(CFG, profile="TDL-A", min_speed_mps=5.0, max_speed_mps=1.0)
    with pytest.raises(ConfigError, match="snr_db"):
        radio.Emulator(CFG, snr_db=float("nan"))
    with pytest.raises(ConfigError, match="phase_noise_linewidth_hz"):
        radio.Impairments(phase_noise_linewidth_hz=-1.0)
    with pytest.raises(ConfigError, match="unknown impairment"):
        radio.Impairments().only("gremlins")


def test_config_toml_round_trip() -> None:
    c = radio.EmulatorConfig(profile="TDL-E", snr_db=3.5, delay_spread_s=1e-6, seed=4,
                             impairments=radio.Impairments.typical().only("cfo"))
    back = radio.EmulatorConfig.from_toml_str(c.to_toml_str())
    assert back == c and back.impairments.cfo and not back.impairments.dc_offset
    with pytest.raises(ConfigError, match="unknown key"):
        radio.EmulatorConfig.from_toml_str('[impairments]\ncfo_ppn = 3.0\n')
    x = _ofdm_like(500)
    np.testing.assert_array_equal(radio.Emulator(CFG, c)(x)[0], radio.Emulator(CFG, back)(x)[0])
