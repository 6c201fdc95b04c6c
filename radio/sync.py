"""Frame detection, timing and carrier-frequency-offset (CFO) estimation.

CFO values are in subcarrier spacings (multiply by ``FrameConfig.subcarrier_spacing_hz`` for Hz);
a CFO ε rotates sample n by ``exp(j 2π ε n / N)``.
"""
from __future__ import annotations

import cmath
import math

import numpy as np
import scipy.fft

from radio.jit import njit
from radio.ofdm import phase_ramp
from radio.preamble import Preamble

DECIMATION = 8
"""The Schmidl-Cox metric is evaluated every DECIMATION samples (its plateau is cp+1 long)."""


@njit
def best_circular_window(taps: np.ndarray, window: int) -> tuple[int, int]:
    """(row, t) of the largest circular window energy ``Σ_{j=t+1}^{t+window} |taps[row, j mod N]|²`` of a
    (R, N) complex or real array (window < N), the first maximum in row-major order (as numpy's argmax of
    the (R, N) energies). |taps|² and the running sums in float64, the rows advanced together (R independent
    additions per step instead of one chain of dependent ones); loop-shaped, compiled by :func:`radio.jit.njit`."""
    rows, n = taps.shape
    power = np.empty((n, rows))  # transposed: one step reads R adjacent values
    for r in range(rows):
        for j in range(n):
            power[j, r] = taps[r, j].real ** 2 + taps[r, j].imag ** 2
    energy = np.zeros(rows)
    for j in range(1, window + 1):
        for r in range(rows):
            energy[r] += power[j, r]
    best = np.full(rows, -1.0)
    best_t = np.zeros(rows, np.int64)
    for t in range(n):
        add, drop = t + window + 1, t + 1
        add -= n if add >= n else 0
        drop -= n if drop >= n else 0
        for r in range(rows):
            if energy[r] > best[r]:
                best[r], best_t[r] = energy[r], t
            energy[r] += power[add, r] - power[drop, r]
    row = 0
    for r in range(rows):
        if best[r] > best[row]:
            row = r
    return row, best_t[row]


@njit
def timing_plateau(power: np.ndarray, window: int) -> tuple[int, int, float]:
    """Plateau of the window energies ``e[t] = Σ_{j=t}^{t+window-1} power[j]`` (t ≤ P − window) of a (P,)
    float array: (w, first, e[w]) with w the middle of the run of windows holding ≥ 90 % of the largest
    energy around its first maximum, and first the last window start, from that maximum on, before the
    energy falls below half of it (the last start if it never does). Loop-shaped: compiled by
    :func:`radio.jit.njit`."""
    count = power.size - window + 1
    energy = np.empty(count)
    acc = 0.0
    for j in range(window):
        acc += power[j]
    for t in range(count):
        energy[t] = acc
        if t + window < power.size:
            acc += power[t + window] - power[t]
    best = 0
    for t in range(count):
        if energy[t] > energy[best]:
            best = t
    left, right = best, best
    while left > 0 and not energy[left - 1] < 0.9 * energy[best]:
        left -= 1
    while right < count - 1 and not energy[right + 1] < 0.9 * energy[best]:
        right += 1
    first = best
    while first < count - 1 and not energy[first + 1] < 0.5 * energy[best]:
        first += 1
    w = (left + right) // 2
    return w, first, energy[w]


def detection_metric(samples: np.ndarray, fft_size: int, cp_length: int, preamble_cp_length: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Preamble detection metric every ``DECIMATION`` samples (block sums, then prefix sums).

    Two repetitions are correlated at once: the Schmidl-Cox halves (lag N/2 over N/2 samples) and
    the long-training pair (lag N over ``Gp + N − 2·cp`` samples of its periodic part, which
    starts ``N + cp`` after the SC window). Both are CFO-magnitude-invariant; together they
    correlate ~3.5× more samples than Schmidl-Cox alone, which separates a 0 dB preamble from
    noise far better.

    Args:
        samples: complex IQ, shape (n,).
        fft_size, cp_length, preamble_cp_length: the numerology (N, cp, Gp).

    Returns:
        (metric, corr_lts): shape (m,) each, for SC window starts ``DECIMATION * arange(m)``;
        metric = ((|P_sc| + |P_lts|) / (R_sc + R_lts))² in [0, 1] with R the mean energy of the two
        correlated segments (GNU Radio's normalisation); corr_lts = P_lts (see :func:`fractional_cfo`).
    """
    d = DECIMATION
    half = fft_size // 2
    shift = (fft_size + cp_length) // d          # SC window → LTS correlation start, blocks
    lc = (preamble_cp_length + fft_size - 2 * cp_length) // d  # LTS correlation length, blocks
    lag_b = fft_size // d
    nb = samples.size // d - (shift + lc + lag_b)
    if nb <= 0:
        return np.zeros(0), np.zeros(0, complex)
    used = (nb + shift + lc + lag_b) * d
    x = np.asarray(samples[:used], np.complex64)
    ones_c, ones_r = np.ones(d, np.complex64), np.ones(2 * d, np.float32)
    # block sums as small matrix-vector products (much faster than .sum(axis=1) on short rows)
    energy = np.square(x.view(np.float32)).reshape(-1, 2 * d) @ ones_r
    m1 = (used - half) // d * d
    p1 = (np.conj(x[:m1]) * x[half:half + m1]).reshape(-1, d) @ ones_c
    p2 = (np.conj(x[:used - fft_size]) * x[fft_size:]).reshape(-1, d) @ ones_c
    p_sc, p_lts, r = window_sums(energy, p1, p2, nb, half // d, shift, lc, lag_b)
    metric = ((np.abs(p_sc) + np.abs(p_lts)) / np.maximum(r, 1e-30)) ** 2
    return metric, p_lts


@njit
def window_sums(energy: np.ndarray, p1: np.ndarray, p2: np.ndarray, nb: int, hb: int, shift: int, lc: int,
                lag_b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P_sc, P_lts, R_sc + R_lts) (nb,) each of :func:`detection_metric` from its block sums (blocks of
    ``DECIMATION`` samples): energies (B,) float32, lag-N/2 products (≥ nb + hb,) and lag-N products
    (≥ nb + shift + lc,) complex64 (``hb``, ``shift``, ``lc``, ``lag_b`` in blocks). Each window is the
    difference of two prefix sums (float64 / complex128, accumulated in order, as ``numpy.cumsum``).
    Loop-shaped: compiled by :func:`radio.jit.njit`."""
    be = np.zeros(energy.size + 1)
    for b in range(energy.size):
        be[b + 1] = be[b] + np.float64(energy[b])
    c1, c2 = np.zeros(p1.size + 1, np.complex128), np.zeros(p2.size + 1, np.complex128)
    for b in range(p1.size):
        c1[b + 1] = c1[b] + np.complex128(p1[b])
    for b in range(p2.size):
        c2[b + 1] = c2[b] + np.complex128(p2[b])
    p_sc, p_lts, r = np.empty(nb, np.complex128), np.empty(nb, np.complex128), np.empty(nb)
    for j in range(nb):
        p_sc[j] = c1[j + hb] - c1[j]
        p_lts[j] = c2[j + shift + lc] - c2[j + shift]
        r[j] = 0.5 * (be[j + 2 * hb] - be[j]) + 0.5 * ((be[j + shift + lc] - be[j + shift])
                                                      + (be[j + shift + lag_b + lc] - be[j + shift + lag_b]))
    return p_sc, p_lts, r


def candidates(metric: np.ndarray, threshold: float, min_gap: int, rounds: int = 3) -> np.ndarray:
    """Indices (into ``metric``, ascending) of values above ``threshold``, by greedy non-maximum suppression:
    the largest value is a candidate and suppresses every other within ± ``min_gap`` indices, then the
    largest value left, and so on (done as ``rounds`` rounds of "largest within ± min_gap of what is left",
    which is the greedy result when the values' peaks are not chained longer than that).

    Non-maximum suppression rather than one candidate per run above the threshold: at the wide presets the
    data symbols' cyclic prefixes keep the LTS-pair term above the threshold from one frame to the next when
    guards are short (one run spanned several frames, of which only the strongest was examined), and at low
    SNR noise just before a frame can join its run and hold the run's peak. Greedy rather than "largest within
    ± min_gap": a frame's peak beside a larger value that is itself suppressed by a still larger one further
    away stays a candidate (at -5 dB the plain rule lost frames to noise peaks 250-600 samples away).
    """
    above = np.flatnonzero(metric > max(threshold, 0.0))
    return above[greedy_peaks(above, metric[above], min_gap, rounds)]


@njit
def greedy_peaks(index: np.ndarray, value: np.ndarray, min_gap: int, rounds: int) -> np.ndarray:
    """The rounds of :func:`candidates` on the values above its threshold (ascending metric indices (P,), values
    (P,)): which of them (bool (P,)) are candidates. A round takes every value left that no value left within
    ± ``min_gap`` indices exceeds (a sliding maximum over the values left, monotone queue), then drops every
    value within ± ``min_gap`` of those (nearest taken one on either side): O(P) per round, also where most of
    the metric is above the threshold (a wide preset's frame: its data symbols' CPs). Loop-shaped: compiled by
    :func:`radio.jit.njit`."""
    p = index.size
    left, keep = np.ones(p, np.bool_), np.zeros(p, np.bool_)
    queue = np.empty(p, np.int64)  # positions of the values left, their values decreasing from head to tail
    for _ in range(rounds):
        new = np.zeros(p, np.bool_)
        head, tail, r = 0, 0, 0
        for j in range(p):
            if not left[j]:
                continue
            while r < p and index[r] - index[j] <= min_gap:  # values left up to index[j] + min_gap join
                if left[r]:
                    while tail > head and value[queue[tail - 1]] <= value[r]:
                        tail -= 1
                    queue[tail] = r
                    tail += 1
                r += 1
            while index[j] - index[queue[head]] > min_gap:  # and those before index[j] - min_gap leave
                head += 1
            new[j] = value[j] >= value[queue[head]]
        if not new.any():
            break
        last = -1  # nearest taken value at or before j, then at or after j
        for j in range(p):
            if new[j]:
                keep[j] = True
                last = j
            if last >= 0 and index[j] - index[last] <= min_gap:
                left[j] = False
        last = -1
        for j in range(p - 1, -1, -1):
            if new[j]:
                last = j
            if last >= 0 and index[last] - index[j] <= min_gap:
                left[j] = False
    return keep


def fractional_cfo(corr_lts: complex) -> float:
    """Fractional CFO (subcarriers, ± 0.5) from the LTS pair's lag-N correlation of :func:`detection_metric`
    (2.5× the samples of the SC halves and twice their lag: a quarter of their phase noise; the integer
    part is left to :class:`IntegerCfo`)."""
    return math.atan2(corr_lts.imag, corr_lts.real) / (2 * math.pi)


@njit
def _cir_search(ref: np.ndarray, lts_window: np.ndarray, window: int) -> tuple[int, int]:
    """:func:`best_circular_window` of the CIRs ``IFFT(ref[r] · FFT(lts_window))`` (ref (R, N) complex64,
    lts_window (N,) complex): :class:`IntegerCfo`'s search in one compiled call."""
    return best_circular_window(np.fft.ifft(ref * np.fft.fft(lts_window).astype(np.complex64)), window)


class IntegerCfo:
    """Integer CFO and timing (modulo N) by channel-impulse-response energy: for each shift ``s`` the LTS
    spectrum shifted back by ``s`` and multiplied by the known LTS's conjugate is an LS channel; its inverse
    FFT (the CIR) puts the channel's energy into a CP-long window only for the right shift (a wrong one
    spreads noise-like energy over all N taps). Coherent over every used subcarrier, unlike the differential
    SC → LTS metric it replaced, which picked wrong shifts in several of the frames missed at −5 dB.

    The tables (searched FFT bins, reference) depend only on the numerology and are built once.

    Args:
        pre: the preamble (known values).
        subcarriers: signed index of each used subcarrier.
        fft_size: N.
        max_shift: search ± this many subcarriers.
        window: taps of the CIR window (the data CP + 1).
    """

    def __init__(self, pre: Preamble, subcarriers: np.ndarray, fft_size: int, max_shift: int, window: int):
        self.shifts = np.arange(-max_shift, max_shift + 1)
        # row r: the known LTS's conjugate on the bins its subcarriers occupy under a CFO of shifts[r]. The
        # received spectrum times row r is shift r's LS channel moved up by shifts[r] bins: its CIR times
        # e^{j2π·shift·t/N}, so the same |CIR|², with one broadcast product instead of a gather and a scatter
        self._ref = np.zeros((self.shifts.size, fft_size), np.complex64)
        self._ref[np.arange(self.shifts.size)[:, None], (subcarriers[None, :] + self.shifts[:, None]) % fft_size] = (
            np.conj(pre.lts_values))
        self.window = window

    def __call__(self, lts_window: np.ndarray) -> tuple[int, int]:
        """(shift, tap): the most likely integer CFO (subcarriers) and the CIR tap where its best window
        starts (the LTS body starts ``tap`` samples after the window's start, modulo N).

        Args:
            lts_window: N complex samples inside the LTS's periodic part, fractional CFO already removed.
        """
        best, tap = _cir_search(self._ref, np.ascontiguousarray(lts_window), self.window)
        return int(self.shifts[best]), int(tap)


@njit
def summed_pair(samples: np.ndarray, lo: int, n: int, length: int, cfo: float) -> np.ndarray:
    """The LTS pair summed and derotated: ``(x[lo + i] + e^{−j2π·cfo}·x[lo + n + i]) · e^{−j2π·cfo·i/n}`` for
    i < ``length``, complex64 (length,), ``x = samples`` (the two copies one N apart, CFO ``cfo`` subcarriers
    still on them; the sum adds them coherently)."""
    rot = np.complex64(cmath.exp(-2j * math.pi * cfo))
    return (samples[lo:lo + length] + samples[lo + n:lo + n + length] * rot) * phase_ramp(cfo, n, length).astype(
        np.complex64)


@njit
def matched_filter(samples: np.ndarray, lo: int, n: int, length: int, cfo: float, template_spec: np.ndarray
                   ) -> np.ndarray:
    """Matched-filter output of the :func:`summed_pair` at lags ``0 .. length − n`` after ``lo``: complex64
    (length − n + 1,), the pair correlated with the template whose conjugate spectrum is ``template_spec``
    (nfft ≥ length,) by FFT (circular, free of wrap-around for lags up to length − n). Compiled by
    :func:`radio.jit.njit` (numpy's FFT inside through rocket-fft)."""
    pair = summed_pair(samples, lo, n, length, cfo)
    return np.fft.ifft(np.fft.fft(pair, template_spec.size) * template_spec)[:length - n + 1]


@njit
def fine_timing(samples: np.ndarray, lo: int, n: int, length: int, cfo: float, template_spec: np.ndarray,
                window: int) -> tuple[int, int, float, float]:
    """(w, first, window energy, received energy): :func:`timing_plateau` of the :func:`matched_filter` taps
    (arguments as there; offsets from ``lo``) and the energy of the ``window + 2n`` samples the plateau
    window's taps saw. One compiled call for :class:`FineTiming`."""
    taps = matched_filter(samples, lo, n, length, cfo, template_spec)
    w, first, energy_w = timing_plateau(taps.real.astype(np.float64) ** 2 + taps.imag.astype(np.float64) ** 2,
                                        window + 1)
    rx = samples[lo + w:lo + w + window + 2 * n]
    return w, first, energy_w, float(np.sum(rx.real.astype(np.float64) ** 2 + rx.imag.astype(np.float64) ** 2))


class FineTiming:
    """Fine timing on the LTS pair by matched filtering, on samples whose CFO is not yet removed.

    The pair (both LTS copies summed, the second's CFO rotation undone) is derotated and correlated with
    the LTS body by FFT (:func:`fine_timing`, one compiled call); the template's spectrum is built once, since
    the pair's length is fixed by the numerology. The window energies depend only on |taps|, and the received
    energy only on |samples|, so neither needs the whole segment derotated. Single precision: the taps feed a
    window-energy search with 0.9 / 0.5 thresholds, far coarser than float32's rounding.

    Args:
        template: one LTS body in time, shape (N,).
        span: how far past ``lo`` (see :meth:`__call__`) the first LTS body start is searched, samples.
        window: cyclic-prefix length: energy of the matched-filter taps in ``[w, w + window]`` is
            the ISI-free energy for an FFT window starting at w.
        self_energy: the window energy of a noiseless unit path
            (:meth:`radio.preamble.Preamble.matched_filter_energy`).
    """

    def __init__(self, template: np.ndarray, span: int, window: int, self_energy: float):
        self.n = template.size
        self.window = window
        self.pair_length = span + window + 1 + self.n
        nfft = scipy.fft.next_fast_len(self.pair_length)
        self._template_spec = np.conj(scipy.fft.fft(template.astype(np.complex128), nfft)).astype(np.complex64)
        self._template_energy = float(np.vdot(template, template).real)
        self._self_energy = self_energy

    def taps(self, samples: np.ndarray, lo: int, cfo: float) -> np.ndarray:
        """Matched-filter output of the pair (both LTS copies summed) at lags ``0 .. span + window + 1`` after
        ``lo``, complex64 (span + window + 2,), up to a common phase.

        Args:
            samples: complex IQ with the CFO still on it, covering ``[lo, lo + span + window + 1 + 2N)``.
            cfo: CFO to remove (subcarriers).
        """
        return matched_filter(samples, lo, self.n, self.pair_length, cfo, self._template_spec)

    def __call__(self, samples: np.ndarray, lo: int, cfo: float) -> tuple[int, int, float]:
        """(w, first_path, fraction): the FFT window start in the middle of the plateau of maximal ISI-free
        energy, the first-path position (the last window start that still holds half of the maximal
        energy), both absolute indices into ``samples``, and the fraction (0..1) of the received LTS energy
        in that window (≈ SNR/(1+SNR); noise alone ≈ window/2N). Arguments as in :meth:`taps`."""
        n, window = self.n, self.window
        # first path: where the window energy falls below half (a window starting past the first
        # path loses it; the LTS autocorrelation sidelobes alone make the 90 % edge one sample early)
        w, first, energy_w, rx = fine_timing(samples, lo, n, self.pair_length, cfo, self._template_spec, window)
        rx_energy = rx * 2 * n / (2 * n + window)  # of every sample the window's taps saw
        fraction = energy_w * self._template_energy / max(2.0 * self._self_energy * rx_energy, 1e-30)
        return lo + w, lo + first, float(fraction)


def residual_cfo(samples: np.ndarray, start: int, fft_size: int, cfo: float) -> float:
    """CFO (subcarriers, ±0.5) left between the two LTS copies at ``start`` and ``start + N`` after
    removing ``cfo``."""
    a = samples[start:start + fft_size]
    b = samples[start + fft_size:start + 2 * fft_size]
    return float(np.angle(complex(np.vdot(a, b)) * cmath.exp(-2j * math.pi * cfo)) / (2 * np.pi))
