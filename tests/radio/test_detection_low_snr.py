"""Acquisition at low SNR and on noise: frames at -5 dB are found and decoded, noise opens no frame and no
header decoding, and the pieces (non-maximum-suppressed candidates, CIR integer CFO and timing) do their job."""
import numpy as np
import pytest
from radio_channel_helpers import apply_channel, random_symbols

import radio
from radio import sync

CFG = radio.FrameConfig()


def _ok_frames(cfg, snr_db, cfo, count, seed, payload=128, taps=None, lead=600):
    rng = np.random.default_rng(seed)
    tx = radio.Transmitter(cfg)
    rx = radio.Receiver(cfg)
    ok = 0
    for i in range(count):
        x, truth = apply_channel(tx.modulate(random_symbols(payload, rng), frame_id=i), cfg, rng, snr_db=snr_db,
                                 cfo_subcarriers=cfo, taps=taps, lead=lead, tail=lead)
        rx.reset()
        ok += any(f.status == "ok" and f.header.frame_id == i and abs(f.start - truth.start) <= cfg.cp_length
                  for f in rx.receive(x, final=True))
    return ok


@pytest.mark.parametrize("snr_db, cfo, seed, bound", [(-5.0, 0.8, 11, 32), (-4.5, 0.3, 16, 37)])
def test_frames_near_minus_5_db_are_decoded(snr_db, cfo, seed, bound):
    # the previous acquisition (SC fractional CFO, differential integer CFO, timing from the metric's peak,
    # per-symbol payload-pilot vote) decoded 26 and 27 of these 40 frames; this one 34 and 39
    assert _ok_frames(CFG, snr_db, cfo, 40, seed) >= bound


def test_frames_at_minus_3_db_over_multipath_are_decoded():
    taps = [(0.0, 0.8), (3.0, 0.5j), (9.0, -0.33)]
    assert _ok_frames(CFG, -3.0, -1.3, 30, seed=12, taps=taps) >= 29  # previous acquisition: 27


@pytest.mark.slow  # the wide preset's first channel bases (1200-row SVDs) take seconds
def test_wide_preset_threshold_sits_at_the_same_snr():
    # the wide presets use 1200 of 2048 subcarriers: a preamble's metric is (0.59/0.75)² of the narrow one's at
    # the same SNR; the unscaled threshold found 5 of these 12 frames
    cfg = radio.FrameConfig(preset="wide-30.72")
    assert _ok_frames(cfg, -5.5, 0.3, 12, seed=3, lead=3000) >= 11


def test_noise_opens_no_frame_and_no_header_decoding():
    rng = np.random.default_rng(13)
    x = ((rng.standard_normal(2**21) + 1j * rng.standard_normal(2**21)) / np.sqrt(2)).astype(np.complex64)
    rx = radio.Receiver(CFG)
    frames = [f for i in range(0, x.size, 2**16) for f in rx.receive(x[i:i + 2**16])]
    assert frames == []
    assert rx.stats.candidates + rx.stats.screened_candidates > 100  # the detector did open candidates: later stages rejected them
    assert rx.stats.unconfirmed_candidates == 0  # none reached the list decoder (header-pilot gate)


def test_back_to_back_frames_at_a_wide_preset_are_each_found():
    # with 700-sample guards the data symbols' cyclic prefixes keep the detection metric above the threshold
    # from frame to frame: one candidate per run found 3 of 20 of these frames
    cfg = radio.FrameConfig(preset="wide-15.36")
    rng = np.random.default_rng(14)
    tx = radio.Transmitter(cfg)
    parts = []
    for i in range(6):
        parts += [np.zeros(700, np.complex64), tx.modulate(random_symbols(800, rng), frame_id=i)]
    x, _ = apply_channel(np.concatenate(parts), cfg, rng, snr_db=15.0, cfo_subcarriers=0.4)
    frames = radio.Receiver(cfg).receive(x, final=True)
    assert [f.header.frame_id for f in frames if f.status == "ok"] == list(range(6))


def test_candidates_are_local_maxima_above_the_threshold():
    metric = np.zeros(200)
    metric[[10, 14, 60, 150]] = [0.5, 0.3, 0.2, 0.01]
    assert sync.candidates(metric, 0.05, 8).tolist() == [10, 60]  # 14 is within 8 of a larger value


@pytest.mark.parametrize("shift, delay", [(0, 0), (3, 17), (-4, 100), (1, 127)])
def test_integer_cfo_and_timing_from_the_cir(shift, delay):
    rx = radio.Receiver(CFG)
    n = CFG.fft_size
    lts = rx.layout.preamble.lts_time
    # a window that starts `delay` samples before an LTS body (cyclically), with an integer CFO
    win = np.roll(lts, delay) * np.exp(2j * np.pi * shift * np.arange(n) / n)
    got_shift, tap = rx._integer_cfo(win)
    # the best CP-long window of the CIR holds the path: it starts at most cp taps before it
    assert got_shift == shift and 0 <= (delay - tap) % n <= CFG.cp_length


def test_fractional_cfo_from_the_lts_pair_correlation():
    assert sync.fractional_cfo(complex(np.exp(2j * np.pi * 0.3))) == pytest.approx(0.3)
    assert sync.fractional_cfo(complex(np.exp(-2j * np.pi * 0.45))) == pytest.approx(-0.45)


def test_a_frame_whose_pair_one_n_early_verifies_better_is_decoded_from_the_other_start():
    """wide-15.36, TDL-C 1 µs at 0 dB (estimator-grid seed 1008): in frames 3, 13 and 18 the LTS start one N
    early (guard + first copy: the guard is 0.875 N, so that pair is nearly as periodic) holds more matched-filter
    energy, and its header fails. The receiver decodes the other verified start before giving up: the true
    frame, not a header_crc report one N early (the receiver before did not recover any of the three)."""
    cfg = radio.FrameConfig(preset="wide-15.36")
    tx, rx = radio.Transmitter(cfg), radio.Receiver(cfg)
    ch = radio.Emulator(cfg, profile="TDL-C", snr_db=0.0, delay_spread_s=1e-6, seed=1008,
                        impairments=radio.Impairments.typical())
    rng = np.random.default_rng(1008)
    got = {}
    for i in range(19):
        sym = ((rng.standard_normal(480) + 1j * rng.standard_normal(480)) / np.sqrt(2)).astype(np.complex64)
        iq, truth = ch(tx.modulate(sym, frame_id=i))
        if i in (3, 13, 18):
            rx.reset()
            got[i] = [(f.status, abs(f.start - truth.start) <= cfg.cp_length) for f in rx.receive(iq, final=True)]
    assert got == {3: [("ok", True)], 13: [("ok", True)], 18: [("ok", True)]}
