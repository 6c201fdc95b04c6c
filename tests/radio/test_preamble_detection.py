"""The coherent LTS-region check of detection candidates (radio.preamble_detector): it places preambles under
CFO and multipath from a coarse start far off, drops noise candidates as often as its threshold promises, and
lets the receiver find frames near -5 dB that the autocorrelation metric alone lost."""
import numpy as np
import pytest
from radio_channel_helpers import apply_channel, random_symbols

import radio
from radio import sync
from radio.frame_layout import FrameLayout
from radio.preamble_detector import PreambleCheck

CFG = radio.FrameConfig()


def _check(cfg: radio.FrameConfig, false_pass: float = 1e-3) -> PreambleCheck:
    return PreambleCheck(cfg, FrameLayout(cfg).preamble, 4, false_pass)


def _frame(cfg, rng, snr_db, cfo, taps=None, lead=700, sco_ppm=0.0):
    return apply_channel(radio.Transmitter(cfg).modulate(random_symbols(64, rng), frame_id=1), cfg, rng,
                         snr_db=snr_db, taps=taps, cfo_subcarriers=cfo, lead=lead, tail=lead, sco_ppm=sco_ppm)


@pytest.mark.parametrize("cfo, offset, taps, sco_ppm", [
    (0.3, 0, None, 0.0),
    (-3.7, 90, None, 0.0),
    (3.9, -110, [(0.0, 0.8), (3.0, 0.5j), (9.0, -0.33)], 0.0),
    (-2.45, 60, [(0.0, 0.7), (13.5, 0.7)], 0.0),
    (1.2, -40, [(0.0, 0.8), (5.0, 0.6)], 100.0),
])
def test_check_places_the_preamble_and_measures_its_cfo(cfo, offset, taps, sco_ppm):
    rng = np.random.default_rng(21)
    x, truth = _frame(CFG, rng, 0.0, cfo, taps, sco_ppm=sco_ppm)
    sc = truth.start + FrameLayout(CFG).preamble.sc_offset
    r = _check(CFG)(x, np.array([sc + offset]), np.array([cfo - round(cfo)]))
    assert r.passed[0]
    assert abs(r.sc_start[0] - sc) <= CFG.cp_length  # a coarse start 110 samples off is placed
    assert abs(r.cfo[0] - cfo) < 0.02  # the integer part found by the shift search


def test_check_places_frames_at_minus_5_db():
    rng = np.random.default_rng(22)
    check, sc_offset = _check(CFG), FrameLayout(CFG).preamble.sc_offset
    placed = 0
    for _ in range(30):
        cfo = rng.uniform(-3.5, 3.5)
        x, truth = _frame(CFG, rng, -5.0, cfo)
        sc = truth.start + sc_offset
        r = check(x, np.array([sc + rng.integers(-64, 65)]), np.array([cfo - round(cfo)]))
        placed += bool(r.passed[0]) and abs(r.sc_start[0] - sc) <= CFG.cp_length
    assert placed >= 29


def test_noise_candidates_pass_no_more_often_than_the_threshold_allows():
    rng = np.random.default_rng(23)
    x = ((rng.standard_normal(2**20) + 1j * rng.standard_normal(2**20)) / np.sqrt(2)).astype(np.complex64)
    metric, corr = sync.detection_metric(x, CFG.fft_size, CFG.cp_length, CFG.preamble_cp_length)
    found = sync.candidates(metric, 0.0, 29)
    check = _check(CFG, false_pass=0.05)
    found = found[(found * sync.DECIMATION >= 64) & (found * sync.DECIMATION + check.needed() <= x.size)]
    r = check(x, found * sync.DECIMATION, np.angle(corr[found]) / (2 * np.pi))
    # a union bound: at most 5 % pass (mean + 3 sigma of that binomial); 0 would mean a dead check
    assert found.size > 1000
    assert 0 < r.passed.sum() <= 0.05 * found.size + 3 * np.sqrt(0.05 * found.size)


def test_receiver_on_noise_decodes_only_what_passes_the_check():
    rng = np.random.default_rng(24)
    x = ((rng.standard_normal(2**21) + 1j * rng.standard_normal(2**21)) / np.sqrt(2)).astype(np.complex64)
    rx = radio.Receiver(CFG)
    assert [f for i in range(0, x.size, 2**16) for f in rx.receive(x[i:i + 2**16])] == []
    assert rx.stats.screened_candidates > 2000  # one candidate per half preamble (local maxima of the metric)
    assert rx.stats.candidates <= 10  # false_pass 1e-3 of ~4000; before the check ~950 reached verification


def test_frames_near_minus_5_db_that_the_metric_alone_lost_are_found():
    # 40 frames at -5.5 dB: the receiver before the check (threshold 0.025, one candidate per preamble
    # length, verification on every candidate) found 30 of them, this one 35
    rng = np.random.default_rng(25)
    tx, rx = radio.Transmitter(CFG), radio.Receiver(CFG)
    found = 0
    for i in range(40):
        x, truth = apply_channel(tx.modulate(random_symbols(128, rng), frame_id=i), CFG, rng, snr_db=-5.5,
                                 cfo_subcarriers=0.8, lead=600, tail=600)
        rx.reset()
        found += any(abs(f.start - truth.start) <= CFG.cp_length for f in rx.receive(x, final=True))
    assert found >= 34


def test_check_places_a_frame_at_a_wide_preset():
    cfg = radio.FrameConfig(preset="wide-7.68")
    rng = np.random.default_rng(26)
    check, sc_offset = _check(cfg), FrameLayout(cfg).preamble.sc_offset
    for cfo in (-2.6, 0.4, 3.3):
        x, truth = _frame(cfg, rng, -5.0, cfo, lead=3000)
        sc = truth.start + sc_offset
        r = check(x, np.array([sc - 200]), np.array([cfo - round(cfo)]))
        assert r.passed[0] and abs(r.sc_start[0] - sc) <= cfg.cp_length
