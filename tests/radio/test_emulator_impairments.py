"""Each hardware impairment of radio.Emulator on its own, measured on simple probe signals (AWGN, high SNR)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import radio
from common import ConfigError
from radio.impairments import quantize

CFG = radio.FrameConfig()
FS = CFG.sample_rate_hz
N = 40_000


def _emulator(name: str, snr_db: float = 60.0, **values) -> radio.Emulator:
    imp = radio.Impairments(**values).only(name)
    return radio.Emulator(CFG, profile="AWGN", snr_db=snr_db, seed=21, impairments=imp)


def _tone(freq_hz: float, n: int = N) -> np.ndarray:
    return np.exp(2j * np.pi * freq_hz / FS * np.arange(n)).astype(np.complex64)


def _frequency_hz(y: np.ndarray) -> float:
    """Frequency of a clean tone from the mean phase increment."""
    return float(np.angle(np.sum(y[1:] * np.conj(y[:-1]))) * FS / (2 * np.pi))


def test_cfo() -> None:
    rx, truth = _emulator("cfo", cfo_ppm=-7.5)(_tone(0.0))
    assert truth.cfo_hz == pytest.approx(-7.5e-6 * 2.4e9)
    assert _frequency_hz(rx) == pytest.approx(truth.cfo_hz, abs=5.0)


def test_start_offset() -> None:
    x = _tone(50e3, 5000)
    ch = _emulator("start_offset", snr_db=20.0, start_offset_max_samples=3000)
    starts = []
    for _ in range(6):
        rx, truth = ch(x)
        s = truth.start
        starts.append(s)
        assert 0 <= s <= 3000 and truth.num_leading_samples == s and len(rx) == s + len(x)
        corr = np.abs(np.correlate(rx[: s + 200], x[:200], mode="valid"))  # finds the TX start
        assert int(np.argmax(corr)) == s
        if s > 100:  # the leading samples hold noise only
            assert np.mean(np.abs(rx[:s]) ** 2) == pytest.approx(truth.noise_var, rel=0.5)
    assert len(set(starts)) > 1  # each call draws its own offset


def test_sample_clock_offset() -> None:
    ppm = 40.0
    f = 600e3
    rx, truth = _emulator("sample_clock", sample_clock_ppm=ppm)(_tone(f))
    assert truth.sample_clock_ppm == ppm
    assert len(rx) == math.floor((N - 1) * (1 + ppm * 1e-6)) + 1
    # a faster RX clock sees the tone at f / (1 + ppm): -24 Hz at 600 kHz and 40 ppm
    assert _frequency_hz(rx[100:-100]) == pytest.approx(f / (1 + ppm * 1e-6), abs=2.0)
    ref = np.exp(2j * np.pi * f / FS * np.arange(len(rx)) / (1 + ppm * 1e-6))
    err = rx[100:-100] - ref[100:-100]
    assert 10 * np.log10(np.mean(np.abs(err) ** 2)) < -55  # interpolation + 60 dB noise


def test_dc_offset() -> None:
    rx, truth = _emulator("dc_offset", dc_offset_dbc=-20.0)(_tone(100e3))
    expected = 10 ** (-20 / 10) * (1 + truth.noise_var)
    assert np.abs(np.mean(rx)) ** 2 == pytest.approx(expected, rel=0.02)


def test_iq_imbalance_image() -> None:
    amp_db, phase_deg, f = 1.0, 5.0, 300e3
    rx, truth = _emulator("iq_imbalance", iq_amplitude_db=amp_db, iq_phase_deg=phase_deg)(_tone(f))
    g, phi = 10 ** (amp_db / 20), math.radians(phase_deg)
    irr = 10 * math.log10((1 + 2 * g * math.cos(phi) + g * g) / (1 - 2 * g * math.cos(phi) + g * g))
    assert truth.image_rejection_db == pytest.approx(irr, abs=1e-6)
    n = np.arange(len(rx))
    wanted = np.abs(np.mean(rx * np.exp(-2j * np.pi * f / FS * n))) ** 2
    image = np.abs(np.mean(rx * np.exp(2j * np.pi * f / FS * n))) ** 2
    assert 10 * math.log10(wanted / image) == pytest.approx(irr, abs=0.3)


def test_phase_noise_is_wiener_with_the_set_linewidth() -> None:
    lw = 200.0
    rx, _ = _emulator("phase_noise", snr_db=80.0, phase_noise_linewidth_hz=lw)(_tone(0.0, 200_000))
    steps = np.angle(rx[1:] * np.conj(rx[:-1]))
    # increments are N(0, 2π lw / fs); over 1000-sample strides the variance adds up (random walk)
    stride = np.angle(rx[1000::1000] * np.conj(rx[:-1000:1000]))
    assert np.var(stride) == pytest.approx(2 * np.pi * lw / FS * 1000, rel=0.25)
    assert np.var(steps) < 3 * 2 * np.pi * lw / FS + 1e-7  # no phase jumps


def test_quantization_resolution_and_saturation() -> None:
    x = (np.random.default_rng(3).standard_normal(2 * N).view(np.complex128) / np.sqrt(2)).astype(np.complex64)
    q, clipped = quantize(x, bits=12, backoff_db=12.0, reference_power=1.0)
    scale = math.sqrt(10 ** (-12 / 10) / 0.5) * 2 ** 11
    codes = np.stack([q.real, q.imag]) * scale
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-2)  # integer codes
    assert codes.min() >= -2048 and codes.max() <= 2047
    sqnr_db = 10 * np.log10(1 / np.mean(np.abs(q - x) ** 2))
    assert 55 < sqnr_db < 70  # 12 bits at 12 dB back-off: ≈ 62 dB
    assert clipped < 1e-3

    rx, truth = _emulator("quantization", dac_backoff_db=20.0, adc_backoff_db=12.0)(x)
    assert truth.adc_clipped_fraction < 1e-3 and truth.dac_clipped_fraction < 1e-3
    assert 10 * np.log10(1 / np.mean(np.abs(rx - x) ** 2)) > 50
    rx, truth = _emulator("quantization", adc_backoff_db=-3.0)(x)  # gain far too high: provoke saturation
    assert truth.adc_clipped_fraction > 0.3
    full_scale = 1 / math.sqrt(10 ** (3 / 10) / (0.5 * (1 + truth.noise_var)))
    assert np.max(np.abs(rx.real)) <= full_scale * 1.001


def test_cfo_and_sample_clock_follow_one_crystal_per_device() -> None:
    """The Pluto derives LO and sample clock from one crystal: CFO = (tx - rx)·f_c, RX clock (1+rx)/(1+tx)."""
    tx_ppm, rx_ppm, f = 12.0, -3.0, 600e3
    imp = radio.Impairments(tx_crystal_ppm=tx_ppm, rx_crystal_ppm=rx_ppm)
    assert imp.carrier_offset_ppm == pytest.approx(15.0)
    clock_ppm = ((1 - 3e-6) / (1 + 12e-6) - 1) * 1e6
    assert imp.clock_offset_ppm == pytest.approx(clock_ppm) and clock_ppm == pytest.approx(-15.0, abs=1e-3)

    rx, truth = _emulator("cfo", tx_crystal_ppm=tx_ppm, rx_crystal_ppm=rx_ppm)(_tone(0.0))
    assert truth.cfo_hz == pytest.approx(15e-6 * 2.4e9) and truth.sample_clock_ppm == 0.0
    assert _frequency_hz(rx) == pytest.approx(truth.cfo_hz, abs=5.0)

    rx, truth = _emulator("sample_clock", tx_crystal_ppm=tx_ppm, rx_crystal_ppm=rx_ppm)(_tone(f))
    assert truth.sample_clock_ppm == pytest.approx(clock_ppm) and truth.cfo_hz == 0.0
    assert _frequency_hz(rx[100:-100]) == pytest.approx(f / (1 + clock_ppm * 1e-6), abs=2.0)  # +9 Hz

    both = radio.Emulator(CFG, profile="AWGN", snr_db=60.0, seed=1, impairments=radio.Impairments.typical())
    _, truth = both(_tone(0.0, 2000))
    assert truth.cfo_hz / 2.4e9 * 1e6 == pytest.approx(-truth.sample_clock_ppm, rel=1e-4)  # one crystal pair


def test_legacy_offsets_override_the_crystals_and_old_configs_load() -> None:
    imp = radio.Impairments(cfo=True, cfo_ppm=-7.5, sample_clock=True, sample_clock_ppm=40.0)
    assert imp.carrier_offset_ppm == -7.5 and imp.clock_offset_ppm == 40.0
    old = radio.Impairments.from_toml_str("cfo = true\ncfo_ppm = 10.0\nsample_clock = true\nsample_clock_ppm = 10.0\n")
    assert old.carrier_offset_ppm == 10.0 and old.clock_offset_ppm == 10.0
    default = radio.Impairments().to_toml_str()
    assert "tx_crystal_ppm" in default and "cfo_ppm" not in default  # unset overrides are not written
    assert radio.Impairments.from_toml_str(default) == radio.Impairments()
    with pytest.raises(ConfigError, match="tx_crystal_ppm"):
        radio.Impairments(tx_crystal_ppm=2000.0)
    with pytest.raises(ConfigError, match="cfo_ppm must be finite"):
        radio.Impairments(cfo_ppm=float("nan"))


def test_phase_noise_walk_interpolated_at_the_wide_rate() -> None:
    """At 30.72 MS/s and 1 Hz the walk is sampled every 16 samples and interpolated: same variance growth."""
    from radio.carrier import carrier_phasor, phase_noise_segment

    fs, lw = 30.72e6, 5.0
    assert phase_noise_segment(lw, fs) > 1
    p = carrier_phasor(2_000_000, 0.0, lw, fs, np.random.default_rng(4))
    np.testing.assert_allclose(np.abs(p), 1.0, atol=1e-5)
    stride = np.angle(p[20_000::20_000] * np.conj(p[:-20_000:20_000]))
    assert np.var(stride) == pytest.approx(2 * np.pi * lw / fs * 20_000, rel=0.35)  # 99 strides: ±14 % (1σ)


def test_noise_is_circular_gaussian() -> None:
    from radio.noise import add_complex_awgn

    w = add_complex_awgn(np.zeros(400_000, np.complex64), 0.5, np.random.default_rng(8))
    assert np.mean(np.abs(w) ** 2) == pytest.approx(0.5, rel=0.01)
    assert np.var(w.real) == pytest.approx(0.25, rel=0.01) and np.var(w.imag) == pytest.approx(0.25, rel=0.01)
    assert abs(np.mean(w.real * w.imag)) < 0.005 and abs(np.mean(w)) < 0.005
    assert np.mean(np.abs(w) ** 4) / 0.5 ** 2 == pytest.approx(2.0, rel=0.03)  # complex Gaussian kurtosis
    assert np.mean(np.abs(w) ** 2 > 5 * 0.5) == pytest.approx(np.exp(-5), rel=0.1)  # exponential tail
