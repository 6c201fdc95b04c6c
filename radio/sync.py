"""Frame detection, timing and carrier-frequency-offset (CFO) estimation.

CFO values are in subcarrier spacings (multiply by ``FrameConfig.subcarrier_spacing_hz`` for Hz);
a CFO ε rotates sample n by ``exp(j 2π ε n / N)``.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal

from radio.preamble import Preamble

DECIMATION = 8
"""The Schmidl-Cox metric is evaluated every DECIMATION samples (its plateau is cp+1 long)."""


def _window_sums(x: np.ndarray, width: int) -> np.ndarray:
    c = np.concatenate([[0], np.cumsum(x)])
    return c[width:] - c[:-width]


def detection_metric(samples: np.ndarray, fft_size: int, cp_length: int, preamble_cp_length: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Preamble detection metric every ``DECIMATION`` samples (vectorised, block sums + cumsum).

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
    be = np.concatenate([[0.0], np.cumsum(energy, dtype=np.float64)])
    m1 = (used - half) // d * d
    p1 = np.concatenate([[0], np.cumsum((np.conj(x[:m1]) * x[half:half + m1]).reshape(-1, d) @ ones_c,
                                        dtype=np.complex128)])
    m2 = used - fft_size
    p2 = np.concatenate([[0], np.cumsum((np.conj(x[:m2]) * x[fft_size:]).reshape(-1, d) @ ones_c,
                                        dtype=np.complex128)])
    hb = half // d

    def span(c: np.ndarray, first: int, length: int) -> np.ndarray:  # c[j + first + length] - c[j + first]
        return c[first + length:first + length + nb] - c[first:first + nb]

    p_sc = span(p1, 0, hb)
    r_sc = 0.5 * span(be, 0, 2 * hb)
    p_lts = span(p2, shift, lc)
    r_lts = 0.5 * (span(be, shift, lc) + span(be, shift + lag_b, lc))
    metric = ((np.abs(p_sc) + np.abs(p_lts)) / np.maximum(r_sc + r_lts, 1e-30)) ** 2
    return metric, p_lts


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
    left = np.where(metric > threshold, metric, 0.0)
    keep = np.zeros(metric.size, bool)
    width = 2 * min_gap + 1
    for _ in range(rounds):
        local = scipy.ndimage.maximum_filter1d(left, width, mode="constant")
        new = (left > 0) & (left >= local)
        if not new.any():
            break
        keep |= new
        left[scipy.ndimage.maximum_filter1d(new.view(np.uint8), width, mode="constant") > 0] = 0.0
    return np.flatnonzero(keep)


def fractional_cfo(corr_lts: complex) -> float:
    """Fractional CFO (subcarriers, ± 0.5) from the LTS pair's lag-N correlation of :func:`detection_metric`
    (2.5× the samples of the SC halves and twice their lag: a quarter of their phase noise; the integer
    part is left to :class:`IntegerCfo`)."""
    return math.atan2(corr_lts.imag, corr_lts.real) / (2 * math.pi)


def derotate(samples: np.ndarray, cfo: float, fft_size: int, ref: int = 0) -> np.ndarray:
    """Remove a CFO of ``cfo`` subcarriers; sample i is treated as time index i - ref."""
    n = np.arange(samples.size) - ref
    return samples * np.exp(-2j * np.pi * cfo * n / fft_size)


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
        self.bins = (subcarriers[None, :] + self.shifts[:, None]) % fft_size
        self.ref = np.conj(pre.lts_values).astype(np.complex64)
        self.slots = subcarriers % fft_size
        self.fft_size = fft_size
        self.window = window

    def __call__(self, lts_spec: np.ndarray) -> tuple[int, int]:
        """(shift, tap): the most likely integer CFO (subcarriers) and the CIR tap where its best window
        starts (the LTS body starts ``tap`` samples after the analysed window's start, modulo N).

        Args:
            lts_spec: full N-point spectrum (FFT bin order) of an N-sample window inside the LTS's periodic
                part, fractional CFO already removed.
        """
        spec = np.zeros((self.shifts.size, self.fft_size), np.complex64)
        spec[:, self.slots] = lts_spec[self.bins] * self.ref
        cir = scipy.fft.ifft(spec, axis=1)
        power = cir.real ** 2 + cir.imag ** 2
        c = np.cumsum(np.concatenate([power, power[:, :self.window]], axis=1), axis=1)
        energy = c[:, self.window:] - c[:, :-self.window]  # (shifts, N): window starting at each tap
        best, tap = np.unravel_index(int(np.argmax(energy)), energy.shape)
        return int(self.shifts[best]), int(tap)


def fine_timing(samples: np.ndarray, template: np.ndarray, lo: int, hi: int, window: int,
                self_energy: float) -> tuple[int, int, float, np.ndarray]:
    """Fine timing on the LTS pair by matched filtering.

    Args:
        samples: CFO-corrected samples covering ``[lo, hi + 2N + window)``.
        template: one LTS body in time, shape (N,).
        lo, hi: candidate range for the first LTS body start (FFT window start).
        window: cyclic-prefix length: energy of the matched-filter taps in ``[w, w + window]`` is
            the ISI-free energy for an FFT window starting at w.
        self_energy: the window energy of a noiseless unit path
            (:meth:`radio.preamble.Preamble.matched_filter_energy`).

    Returns:
        (w, first_path, fraction, taps): the FFT window start in the middle of the plateau of
        maximal ISI-free energy, the first-path position (the last window start that still holds
        half of the maximal energy), the fraction
        (0..1) of the received LTS energy in that window (≈ SNR/(1+SNR); noise alone ≈ window/2N),
        and the matched-filter output (both LTS copies summed) at positions lo .. hi+window.
    """
    n = template.size
    pair = samples[lo:hi + window + 1 + n] + samples[lo + n:hi + window + 1 + 2 * n]
    # Σ_m conj(t[m]) pair[d + m]; by FFT from N = 256 (N = 2048: 0.2 ms instead of 1.7 ms; scipy's own
    # "auto" choice stayed direct there)
    taps = scipy.signal.correlate(pair, template, mode="valid", method="fft" if n >= 256 else "direct")
    power = taps.real ** 2 + taps.imag ** 2
    energy = _window_sums(power, window + 1)
    best = int(np.argmax(energy))
    off = np.flatnonzero(energy < 0.9 * energy[best])  # outside the plateau (never holds best)
    i = int(np.searchsorted(off, best))
    left = int(off[i - 1]) + 1 if i > 0 else 0
    right = int(off[i]) - 1 if i < off.size else energy.size - 1
    w = (left + right) // 2
    # first path: where the window energy falls below half (a window starting past the first
    # path loses it; the LTS autocorrelation sidelobes alone make the 90 % edge one sample early)
    below = np.flatnonzero(energy[best:] < 0.5 * energy[best])
    first = best + int(below[0]) - 1 if below.size else energy.size - 1
    rx = samples[lo + w:lo + w + window + 2 * n]  # every sample the window's taps saw
    rx_energy = float(np.vdot(rx, rx).real)
    rx_energy *= 2 * n / (2 * n + window)
    fraction = energy[w] * float(np.vdot(template, template).real) / max(2.0 * self_energy * rx_energy, 1e-30)
    return lo + w, lo + first, float(fraction), taps


def residual_cfo(samples: np.ndarray, start: int, fft_size: int) -> float:
    """CFO (subcarriers, ±0.5) between the two LTS copies at ``start`` and ``start + N``."""
    a = samples[start:start + fft_size]
    b = samples[start + fft_size:start + 2 * fft_size]
    return float(np.angle(np.vdot(a, b)) / (2 * np.pi))
