"""Estimator sanity on the test channel: data-aided SNR, noise variance, delay spread."""
import numpy as np
import pytest
from radio_channel_helpers import apply_channel, random_symbols

import radio
from radio.delay_spread import rms_delay_spread

CFG = radio.FrameConfig()
TX = radio.Transmitter(CFG)


@pytest.mark.parametrize("snr_db", [0.0, 5.0, 10.0, 15.0, 20.0])
def test_snr_estimate_in_awgn(snr_db):
    rng = np.random.default_rng(int(snr_db) + 1)
    err = []
    for _ in range(12):
        x, truth = apply_channel(TX.modulate(random_symbols(480, rng)), CFG, rng, snr_db=snr_db,
                                 cfo_subcarriers=rng.uniform(-2, 2))
        f = radio.Receiver(CFG).receive(x, final=True)[0]
        err.append(f.snr_db - truth.snr_db)
    err = np.array(err)
    assert abs(err.mean()) < 0.3
    assert np.sqrt(np.mean(err ** 2)) < 0.6


def test_snr_estimate_follows_a_frequency_selective_channel():
    rng = np.random.default_rng(7)
    taps = [(0.0, 0.9), (5.0, 0.4j), (9.0, 0.2)]
    err = []
    for _ in range(10):
        x, truth = apply_channel(TX.modulate(random_symbols(800, rng)), CFG, rng, snr_db=12.0, taps=taps)
        err.append(radio.Receiver(CFG).receive(x, final=True)[0].snr_db - truth.snr_db)
    assert abs(np.mean(err)) < 0.3


def test_noise_var_matches_actual_symbol_error():
    rng = np.random.default_rng(8)
    s = random_symbols(4000, rng)
    x, _ = apply_channel(TX.modulate(s), CFG, rng, snr_db=8.0, taps=[(0.0, 0.8), (4.0, 0.6)])
    f = radio.Receiver(CFG).receive(x, final=True)[0]
    # MMSE estimates: E|ŝ − s|² = noise_var (for unit-power s), checked on the strong and weak halves
    err = np.abs(f.symbols - s) ** 2
    order = np.argsort(f.noise_var)
    for part in (order[:2000], order[2000:]):
        assert np.mean(err[part]) == pytest.approx(np.mean(f.noise_var[part]), rel=0.2)


def test_rms_delay_spread_formula():
    assert rms_delay_spread(np.array([1.0, 1.0]), np.array([0.0, 1e-6])) == pytest.approx(0.5e-6)
    assert rms_delay_spread(np.array([1.0]), np.array([3e-7])) == 0.0


@pytest.mark.parametrize("spacing", [3.0, 6.0, 10.0])
def test_delay_spread_of_a_two_tap_channel(spacing):
    rng = np.random.default_rng(int(spacing))
    est = []
    for _ in range(6):
        phase = np.exp(2j * np.pi * rng.uniform())
        x, truth = apply_channel(TX.modulate(random_symbols(100, rng)), CFG, rng, snr_db=20.0,
                                 taps=[(0.0, np.sqrt(0.5)), (spacing, np.sqrt(0.5) * phase)])
        f = radio.Receiver(CFG).receive(x, final=True)[0]
        assert not f.delay_spread_below_resolution
        est.append(f.delay_spread_s)
    true = spacing / 2 / CFG.sample_rate_hz
    assert truth.delay_spread_s == pytest.approx(true)
    assert np.mean(est) == pytest.approx(true, rel=0.25)


def test_flat_channel_reports_delay_spread_below_resolution():
    rng = np.random.default_rng(9)
    x, _ = apply_channel(TX.modulate(random_symbols(100, rng)), CFG, rng, snr_db=20.0)
    rx = radio.Receiver(CFG)
    f = rx.receive(x, final=True)[0]
    floor = 0.5 / CFG.occupied_bandwidth_hz  # the documented floor: 174 ns at the narrow preset
    assert rx.ds.resolution_s == pytest.approx(floor)
    assert f.delay_spread_below_resolution and f.delay_spread_s == pytest.approx(floor)


def test_delay_spread_is_positive_and_flagged_below_the_resolution_floor():
    ds = radio.Receiver(CFG).ds
    for tau in (0.0, 0.5 * ds.resolution_s, float("nan")):
        assert ds.resolve(tau) == (ds.resolution_s, True)
    assert ds.resolve(2 * ds.resolution_s) == (2 * ds.resolution_s, False)


def test_the_channel_filter_keeps_only_the_channels_taps_at_the_wide_presets():
    """At wide-30.72 the FFT window starts mid-CP, so a short channel sits ~450 taps into the SNR estimate's
    delay window; the channel filter uses the channel's own taps instead: at 0 dB its estimate must beat the
    LS one by far more than that window's 411 of 1200 directions would (−4.7 dB)."""
    cfg = radio.FrameConfig(preset="wide-30.72")
    tx, k, n = radio.Transmitter(cfg), radio.ofdm.ResourceGrid(cfg).subcarriers, cfg.fft_size
    rng = np.random.default_rng(11)
    taps = [(0.0, 0.8), (6.4, 0.6j)]
    gain = []
    for _ in range(4):
        x, _ = apply_channel(tx.modulate(random_symbols(128, rng)), cfg, rng, snr_db=0.0, taps=taps)
        f = radio.Receiver(cfg).receive(x, final=True)[0]
        # the true channel for the receiver's FFT window: the integer window offset that fits the unbiased LS
        # estimate best (its residual is then noise), with the common phase
        shifted = [sum(g * np.exp(-2j * np.pi * k * (d + off) / n) for d, g in taps) for off in range(cfg.cp_length)]
        h = min(shifted, key=lambda t: np.linalg.norm(f.channel_ls - t * np.vdot(t, f.channel_ls) / np.vdot(t, t)))
        h = h * np.vdot(h, f.channel_ls) / np.vdot(h, h)
        err = [np.sum(np.abs(e - h) ** 2) for e in (f.channel, f.channel_ls)]
        gain.append(10 * np.log10(err[1] / err[0]))
    assert np.mean(gain) > 10.0, gain
