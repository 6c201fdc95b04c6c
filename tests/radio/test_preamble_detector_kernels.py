"""The detector's numba kernels against direct numpy formulations of what they compute, each compiled and on
its plain Python path: the preamble check's (radio.preamble_detector; also the whole check, compiled against
pure, on a few hundred noise and frame candidates) and the detection metric's and candidates' (radio.sync)."""
import numpy as np
import pytest
import scipy.ndimage
from radio_channel_helpers import apply_channel, random_symbols

import radio
import radio.preamble_detector as pd
from radio import sync
from radio.frame_layout import FrameLayout
from radio.jit import python_function

KERNELS = ("folded_spectra", "best_window", "best_placement")


def _check(preset: str) -> pd.PreambleCheck:
    cfg = radio.FrameConfig(preset=preset)
    return pd.PreambleCheck(cfg, FrameLayout(cfg).preamble, 4, 1e-3)


def _noise(size: int, rng: np.random.Generator) -> np.ndarray:
    return ((rng.standard_normal(size) + 1j * rng.standard_normal(size)) / np.sqrt(2)).astype(np.complex64)


def _spectra(k: int, n: int, ref: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noise spectra (K, N), every 4th with the LTS (``conj(ref)``) through a one-tap channel planted at a random
    integer shift and delay, and the planted shifts (K // 4,)."""
    spec = _noise(k * n, rng).reshape(k, n)
    shifts = rng.integers(-4, 5, -(-k // 4))
    for i, shift in zip(range(0, k, 4), shifts):
        planted = np.conj(ref) * np.exp(-2j * np.pi * np.arange(n) * rng.integers(0, n) / n) * (3.0 + 2.0j)
        spec[i] += np.roll(planted, shift).astype(np.complex64)  # bin f + shift holds what bin f held
    return spec, shifts


def _best_window_reference(spec, ref, max_shift, block, window_blocks):
    k, n = spec.shape
    nb = n // block
    frac = np.empty((k, 2 * max_shift + 1, nb))
    for h, s in enumerate(range(-max_shift, max_shift + 1)):
        power = np.abs(np.fft.ifft(np.roll(spec.astype(complex), -s, axis=1) * ref, axis=1)) ** 2
        blocks = power.reshape(k, nb, block).sum(axis=2)
        window = sum(np.roll(blocks, -j, axis=1) for j in range(window_blocks))
        frac[:, h] = window / blocks.sum(axis=1, keepdims=True)
    best = frac.reshape(k, -1).argmax(axis=1)
    shift, first_block = np.divmod(best, nb)
    return frac.reshape(k, -1)[np.arange(k), best], first_block, shift - max_shift


@pytest.mark.parametrize("compiled", [True, False])
def test_best_window_equals_the_direct_formulation(compiled):
    check, rng = _check("narrow"), np.random.default_rng(40)
    spec, planted = _spectra(48, check.fft_size, check._ref, rng)
    fn = pd.best_window if compiled else python_function(pd.best_window)
    frac, first_block, shift = fn(spec, check._ref, 4, check.block, check.window_blocks)
    want = _best_window_reference(spec, check._ref, 4, check.block, check.window_blocks)
    np.testing.assert_allclose(frac, want[0], rtol=2e-6)
    np.testing.assert_array_equal(first_block, want[1])
    np.testing.assert_array_equal(shift, want[2])
    np.testing.assert_array_equal(shift[::4], planted)  # the planted channels are found
    assert np.all(frac[::4] > 0.8) and np.all(frac[1::4] < 0.5)


@pytest.mark.parametrize("compiled", [True, False])
def test_best_placement_equals_the_direct_formulation(compiled):
    """At CFOs of an integer plus a table level the fold's derotation is exact, so each placement's CIR is the
    IFFT of the derotated, folded region's spectrum shifted by the integer part; a region before the buffer
    start holds nothing."""
    check, rng = _check("narrow"), np.random.default_rng(41)
    n, cp, gp, width = check.fft_size, check.cp, check.gp, check.width
    length, lead, k = gp + 2 * n - cp, gp - cp, 40
    x, _, _ = _candidates("narrow", rng)
    first = np.concatenate([[lead + 10, lead + n - 5], rng.integers(n + lead, x.size - 2 * n - length, k - 2)])
    cfo = rng.integers(-4, 5, k) + rng.integers(-32, 32, k) / 64
    fn = pd.best_placement if compiled else python_function(pd.best_placement)
    pick, frac, centre = fn(x, first, cfo, length, lead, width, check._derotation, check._levels, check._ref)
    lam = cfo - np.rint(cfo)
    for i in range(k):
        window, fractions, centres = [], [], []
        for j in range(3):
            region = first[i] + (j - 1) * n - lead
            span = np.zeros(-(-length // n) * n, complex)
            if region >= 0:
                span[:length] = x[region:region + length] * np.exp(-2j * np.pi * lam[i] * np.arange(length) / n)
            spec = np.roll(np.fft.fft(span.reshape(-1, n).sum(axis=0)), -int(np.rint(cfo[i])))
            power = np.abs(np.fft.ifft(spec * check._ref)) ** 2
            inside = power[(lead + np.arange(width)) % n]
            window.append(inside.sum())
            fractions.append(inside.sum() / max(power.sum(), 1e-30))
            centres.append(inside @ np.arange(width) / max(inside.sum(), 1e-30))
        want = int(np.argmax(window))
        assert pick[i] == want
        assert frac[i] == pytest.approx(fractions[want], rel=2e-5)
        assert centre[i] == pytest.approx(centres[want], rel=2e-5, abs=1e-5)
    assert 0 < np.count_nonzero(pick == 1) < k  # the middle placement is not always the answer


@pytest.mark.parametrize("compiled", [True, False])
def test_folded_spectra_equal_the_spectrum_of_the_derotated_fold(compiled):
    """At CFOs on the table's levels the table's derotation is exact: the kernel's spectra are those of the
    span derotated sample by sample and folded modulo N (its length not a multiple of N: a partial copy)."""
    check, rng = _check("narrow"), np.random.default_rng(42)
    n, length = check.fft_size, check.length
    buf = _noise(6000, rng)
    starts = rng.integers(0, buf.size - length, 20)
    cfo = rng.integers(-32, 32, 20) / 64
    fn = pd.folded_spectra if compiled else python_function(pd.folded_spectra)
    spec, removed = fn(buf, starts, length, cfo, check._derotation, check._levels)
    copies = -(-length // n)
    for i in range(20):
        span = np.zeros(copies * n, complex)
        span[:length] = buf[starts[i]:starts[i] + length] * np.exp(-2j * np.pi * cfo[i] * np.arange(length) / n)
        np.testing.assert_allclose(spec[i], np.fft.fft(span.reshape(copies, n).sum(axis=0)), rtol=0, atol=2e-4)
    np.testing.assert_array_equal(removed, cfo)


def _candidates(preset: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stream, coarse SC starts, fractional CFOs): noise candidates (every local maximum of the detection
    metric) and candidates up to N off the preambles of frames at -6 .. 3 dB with CFOs up to ± 3.4."""
    cfg = radio.FrameConfig(preset=preset)
    tx, sc_offset = radio.Transmitter(cfg), FrameLayout(cfg).preamble.sc_offset
    parts, starts, cfos, pos = [_noise(20000, rng)], [], [], 20000
    for i, snr in enumerate((-6.0, -5.0, -3.0, 0.0, 3.0)):
        cfo = rng.uniform(-3.4, 3.4)
        x, truth = apply_channel(tx.modulate(random_symbols(64, rng), frame_id=i), cfg, rng, snr_db=snr,
                                 taps=[(0.0, 0.8), (5.0, 0.6j)], cfo_subcarriers=cfo, lead=1000, tail=1000)
        sc = pos + truth.start + sc_offset
        starts += list(sc + rng.integers(-cfg.fft_size, cfg.fft_size + 1, 20))
        cfos += list(np.clip(cfo - round(cfo) + rng.normal(0, 0.02, 20), -0.5, 0.5))
        parts.append(x.astype(np.complex64))
        pos += x.size
    x = np.concatenate(parts)
    metric, corr = sync.detection_metric(x, cfg.fft_size, cfg.cp_length, cfg.preamble_cp_length)
    found = sync.candidates(metric, 0.0, 29)
    starts = np.concatenate([found * sync.DECIMATION, starts]).astype(np.int64)
    cfos = np.concatenate([np.angle(corr[found]) / (2 * np.pi), cfos])
    check = _check(preset)
    ok = (starts >= 0) & (starts + check.needed() <= x.size)
    return x, starts[ok], cfos[ok]


@pytest.mark.parametrize("preset", ["narrow", "wide-7.68"])
def test_check_decides_alike_compiled_and_on_the_python_path(preset, monkeypatch):
    rng = np.random.default_rng(43)
    x, starts, cfo = _candidates(preset, rng)
    pick = np.sort(rng.choice(starts.size, min(starts.size, 300), replace=False))
    starts, cfo = starts[pick], cfo[pick]
    check = _check(preset)
    got = check(x, starts, cfo)
    for name in KERNELS:
        monkeypatch.setattr(pd, name, python_function(getattr(pd, name)))
    want = check(x, starts, cfo)
    np.testing.assert_array_equal(got.passed, want.passed)
    np.testing.assert_array_equal(got.sc_start, want.sc_start)
    np.testing.assert_allclose(got.score, want.score, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got.cfo, want.cfo, rtol=0, atol=1e-12)
    assert 50 <= got.passed.sum() <= starts.size - 50  # both outcomes are exercised


def _candidates_reference(metric: np.ndarray, threshold: float, min_gap: int, rounds: int = 3) -> np.ndarray:
    """The rounds of sync.candidates as sliding-window maxima over the whole metric (scipy)."""
    left = np.where(metric > threshold, metric, 0.0)
    keep = np.zeros(metric.size, bool)
    for _ in range(rounds):
        new = (left > 0) & (left >= scipy.ndimage.maximum_filter1d(left, 2 * min_gap + 1, mode="constant"))
        keep |= new
        left[scipy.ndimage.maximum_filter1d(new.view(np.uint8), 2 * min_gap + 1, mode="constant") > 0] = 0.0
    return np.flatnonzero(keep)


@pytest.mark.parametrize("compiled", [True, False])
def test_candidates_equal_the_sliding_maximum_rounds(compiled, monkeypatch):
    """On noise metrics (ties from quantised values included), a real stream's metric and chained peaks."""
    if not compiled:
        monkeypatch.setattr(sync, "greedy_peaks", python_function(sync.greedy_peaks))
    rng = np.random.default_rng(44)
    cfg = radio.FrameConfig(preset="narrow")
    x, _, _ = _candidates("narrow", rng)
    stream = sync.detection_metric(x, cfg.fft_size, cfg.cp_length, cfg.preamble_cp_length)[0]
    chained = np.array([0.1, 0.3, 0.2, 0.5, 0.4, 0.7, 0.6, 0.9, 0.0, 0.8])
    metrics = [rng.exponential(size=3000), np.round(rng.exponential(size=3000), 1), stream, chained]
    for metric, threshold, gap, rounds in [(metrics[0], 1.0, 29, 3), (metrics[1], 0.5, 7, 3), (metrics[1], 0.0, 3, 1),
                                           (metrics[2], 0.0, 29, 3), (metrics[2], 0.05, 29, 3), (metrics[3], 0.0, 1, 2),
                                           (metrics[3], 0.0, 1, 5), (metrics[0], 20.0, 29, 3)]:
        want = _candidates_reference(metric, threshold, gap, rounds)
        np.testing.assert_array_equal(sync.candidates(metric, threshold, gap, rounds), want)


def _detection_metric_reference(x: np.ndarray, n: int, cp: int, gp: int) -> tuple[np.ndarray, np.ndarray]:
    """sync.detection_metric's windows as differences of numpy cumsums of its block sums."""
    d, half = sync.DECIMATION, n // 2
    shift, lc, lag_b, hb = (n + cp) // d, (gp + n - 2 * cp) // d, n // d, half // d
    nb = x.size // d - (shift + lc + lag_b)
    used = (nb + shift + lc + lag_b) * d
    x = x[:used]
    energy = np.square(x.view(np.float32)).reshape(-1, 2 * d) @ np.ones(2 * d, np.float32)
    be = np.concatenate([[0.0], np.cumsum(energy, dtype=np.float64)])
    m1 = (used - half) // d * d
    ones = np.ones(d, np.complex64)
    p1 = np.concatenate([[0], np.cumsum((np.conj(x[:m1]) * x[half:half + m1]).reshape(-1, d) @ ones, dtype=complex)])
    p2 = np.concatenate([[0], np.cumsum((np.conj(x[:used - n]) * x[n:]).reshape(-1, d) @ ones, dtype=complex)])

    def span(c, first, length):
        return c[first + length:first + length + nb] - c[first:first + nb]

    p_lts = span(p2, shift, lc)
    r = 0.5 * span(be, 0, 2 * hb) + 0.5 * (span(be, shift, lc) + span(be, shift + lag_b, lc))
    return ((np.abs(span(p1, 0, hb)) + np.abs(p_lts)) / np.maximum(r, 1e-30)) ** 2, p_lts


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("preset", ["narrow", "wide-7.68"])
def test_detection_metric_equals_the_cumsum_formulation_exactly(preset, compiled, monkeypatch):
    """The prefix sums are accumulated in numpy.cumsum's order: the same values to the last bit."""
    if not compiled:
        monkeypatch.setattr(sync, "window_sums", python_function(sync.window_sums))
    cfg = radio.FrameConfig(preset=preset)
    x, _, _ = _candidates(preset, np.random.default_rng(45))
    metric, corr = sync.detection_metric(x, cfg.fft_size, cfg.cp_length, cfg.preamble_cp_length)
    want = _detection_metric_reference(x, cfg.fft_size, cfg.cp_length, cfg.preamble_cp_length)
    np.testing.assert_array_equal(metric, want[0])
    np.testing.assert_array_equal(corr, want[1])
    assert metric.max() > 0.25  # the frames' preambles are in it (noise alone stays below 0.1)
