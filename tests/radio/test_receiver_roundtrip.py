"""Receiver round trips over the test channel: exact symbol count, CFO, timing, multipath, clock offset."""
import numpy as np
import pytest
from radio_channel_helpers import apply_channel, random_symbols

import radio

CFG = radio.FrameConfig()
TX = radio.Transmitter(CFG)


def _one(x):
    frames = radio.Receiver(CFG).receive(x, final=True)
    assert len(frames) == 1, [f.status for f in frames]
    assert frames[0].status == "ok" and frames[0].crc_ok
    return frames[0]


@pytest.mark.parametrize("length", [1, 7, 80, 81, 2500])
def test_clean_round_trip_exact_length(length):
    rng = np.random.default_rng(length)
    s = random_symbols(length, rng)
    x, truth = apply_channel(TX.modulate(s, frame_id=length % 65536, condition=(12.0, 3e-7)), CFG, rng,
                             snr_db=40.0)
    f = _one(x)
    assert f.symbols.shape == (length,) and f.symbols.dtype == np.complex64
    assert f.noise_var.shape == (length,)
    assert np.mean(np.abs(f.symbols - s) ** 2) < 10 ** (-30 / 10)
    assert f.header.frame_id == length % 65536 and f.header.payload_len == length
    assert f.header.snr_db == 12.0 and f.header.delay_spread_s == pytest.approx(3e-7)
    assert abs(f.start - truth.start) <= 1


@pytest.mark.parametrize("cfo", [0.37, -0.93, 1.6, -2.45, 3.8])
def test_cfo_fractional_and_integer_recovered(cfo):
    rng = np.random.default_rng(int(abs(cfo) * 100))
    s = random_symbols(400, rng)
    x, truth = apply_channel(TX.modulate(s), CFG, rng, snr_db=20.0, cfo_subcarriers=cfo)
    f = _one(x)
    assert abs(f.cfo_hz - truth.cfo_hz) < 0.01 * CFG.subcarrier_spacing_hz
    assert np.mean(np.abs(f.symbols - s) ** 2) < 10 ** (-17 / 10)


def test_pluto_crystal_offset_60khz():
    rng = np.random.default_rng(3)
    s = random_symbols(300, rng)
    x, truth = apply_channel(TX.modulate(s), CFG, rng, snr_db=15.0, cfo_subcarriers=-60e3 / CFG.subcarrier_spacing_hz)
    f = _one(x)
    assert f.cfo_hz == pytest.approx(-60e3, abs=300)


@pytest.mark.parametrize("lead", [0, 1, 37, 999, 5003])
def test_timing_offset(lead):
    rng = np.random.default_rng(lead)
    s = random_symbols(200, rng)
    x, truth = apply_channel(TX.modulate(s), CFG, rng, snr_db=20.0, lead=lead, tail=10)
    f = _one(x)
    assert f.start == truth.start
    assert np.mean(np.abs(f.symbols - s) ** 2) < 10 ** (-17 / 10)


def test_multipath_equalised_within_cp():
    rng = np.random.default_rng(11)
    s = random_symbols(1500, rng)
    taps = [(0.0, 0.7), (2.5, 0.5j), (6.0, -0.4), (11.3, 0.3)]
    x, truth = apply_channel(TX.modulate(s), CFG, rng, snr_db=30.0, taps=taps, cfo_subcarriers=0.8)
    f = _one(x)
    err = np.mean(np.abs(f.symbols - s) ** 2)
    assert err < 10 ** (-22 / 10)
    # the reported per-symbol error variance is honest (within a factor of two on average)
    assert 0.5 < np.mean(f.noise_var) / err < 2.0


def test_channel_estimators_decode_and_filtering_beats_ls():
    rng = np.random.default_rng(5)
    taps = [(0.0, 0.8), (3.3, 0.6)]
    k = radio.ofdm.ResourceGrid(CFG).subcarriers
    h = sum(g * np.exp(-2j * np.pi * k * d / CFG.fft_size) for d, g in taps)
    n0 = CFG.fft_size / CFG.num_used_subcarriers / 10.0  # per-RE noise at 10 dB nominal
    genie = np.mean(n0 / (np.abs(h) ** 2 + n0))  # MMSE with the true channel
    errs = {e: [] for e in ("ls", "dft", "lmmse")}
    for _ in range(4):
        s = random_symbols(800, rng)
        x, _ = apply_channel(TX.modulate(s), CFG, rng, snr_db=10.0, taps=taps)
        for e in errs:
            f = radio.Receiver(CFG, radio.ReceiverConfig(channel_estimator=e)).receive(x)[0]
            errs[e].append(np.mean(np.abs(f.symbols - s) ** 2))
    mse = {e: np.mean(v) for e, v in errs.items()}
    assert mse["lmmse"] < 1.25 * genie and mse["dft"] < 1.3 * genie
    assert mse["ls"] > mse["lmmse"]  # small margin: the CRC-checked header already adds 8 observations


@pytest.mark.parametrize("ppm", [40.0, -40.0])
def test_sample_clock_offset_long_frame(ppm):
    rng = np.random.default_rng(int(ppm) + 100)
    s = random_symbols(24000, rng)  # 300 OFDM symbols: 1.7 samples of drift by the end
    x, _ = apply_channel(TX.modulate(s), CFG, rng, snr_db=25.0, sco_ppm=ppm, cfo_subcarriers=0.3)
    f = _one(x)
    err = np.abs(f.symbols - s) ** 2
    assert np.mean(err[-800:]) < 10 ** (-20 / 10)  # the end of the frame is as good as the start
