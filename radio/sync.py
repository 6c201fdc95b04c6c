"""Frame detection, timing and carrier-frequency-offset (CFO) estimation.

CFO values are in subcarrier spacings (multiply by ``FrameConfig.subcarrier_spacing_hz`` for Hz);
a CFO ε rotates sample n by ``exp(j 2π ε n / N)``.
"""
from __future__ import annotations

import numpy as np

from radio.preamble import Preamble

DECIMATION = 8
"""The Schmidl-Cox metric is evaluated every DECIMATION samples (its plateau is cp+1 long)."""


def _window_sums(x: np.ndarray, width: int) -> np.ndarray:
    c = np.concatenate([[0], np.cumsum(x)])
    return c[width:] - c[:-width]


def schmidl_cox(samples: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Schmidl-Cox metric every ``DECIMATION`` samples.

    Args:
        samples: complex IQ, shape (n,).
        half: half-symbol length L = N/2 (a multiple of DECIMATION).

    Returns:
        (metric, corr): shape (m,) each, at sample positions ``DECIMATION * arange(m)``;
        metric = |P|² / R² in [0, 1] with R the energy of both halves / 2 (GNU Radio's
        normalisation), corr = P (its angle gives the fractional CFO).
    """
    d = DECIMATION
    nb = (samples.size - 2 * half) // d
    if nb <= 0:
        return np.zeros(0), np.zeros(0, complex)
    prod = np.conj(samples[:nb * d + half]) * samples[half:nb * d + 2 * half]
    bp = prod.reshape(-1, d).sum(axis=1)
    energy = (samples[:nb * d + 2 * half].real ** 2 + samples[:nb * d + 2 * half].imag ** 2)
    be = energy.reshape(-1, d).sum(axis=1)
    p = _window_sums(bp.astype(np.complex128), half // d)[:nb]
    r = 0.5 * _window_sums(be.astype(np.float64), 2 * half // d)[:nb]
    metric = (p.real ** 2 + p.imag ** 2) / np.maximum(r, 1e-30) ** 2
    return metric, p


def candidates(metric: np.ndarray, threshold: float, min_gap: int) -> np.ndarray:
    """Indices (into ``metric``) of the peak of each run above ``threshold``; runs closer than
    ``min_gap`` indices are merged."""
    above = np.flatnonzero(metric > threshold)
    if above.size == 0:
        return above
    breaks = np.flatnonzero(np.diff(above) > min_gap)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks + 1, [above.size]])
    return np.array([above[s] + np.argmax(metric[above[s]:above[e - 1] + 1]) for s, e in zip(starts, ends)])


def derotate(samples: np.ndarray, cfo: float, fft_size: int, ref: int = 0) -> np.ndarray:
    """Remove a CFO of ``cfo`` subcarriers; sample i is treated as time index i - ref."""
    n = np.arange(samples.size) - ref
    return samples * np.exp(-2j * np.pi * cfo * n / fft_size)


def integer_cfo(sc_spec: np.ndarray, lts_spec: np.ndarray, pre: Preamble, subcarriers: np.ndarray,
                max_shift: int) -> int:
    """Integer CFO (even number of subcarriers) from the SC → LTS differential on even subcarriers.

    Args:
        sc_spec, lts_spec: full N-point spectra (FFT bin order) of the SC and first LTS windows
            taken at the same offset within their symbols, fractional CFO already removed.
        pre: the preamble (known values).
        subcarriers: signed index of each used subcarrier.
        max_shift: search ± this many subcarriers.

    Returns:
        the integer CFO in subcarriers (a multiple of 2).
    """
    n = sc_spec.size
    even = pre.sc_even
    ref = pre.sc_values[even] * np.conj(pre.lts_values[even])  # X_sc X_lts*
    shifts = 2 * np.arange(-(max_shift // 2), max_shift // 2 + 1)
    bins = (subcarriers[even][None, :] + shifts[:, None]) % n
    diff = np.conj(sc_spec[bins]) * lts_spec[bins]
    metric = np.abs((diff * ref[None, :]).sum(axis=1))
    return int(shifts[np.argmax(metric)])


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
        maximal ISI-free energy, the first-path position (end of that plateau), the fraction
        (0..1) of the received LTS energy in that window (≈ SNR/(1+SNR); noise alone ≈ window/2N),
        and the matched-filter output (both LTS copies summed) at positions lo .. hi+window.
    """
    n = template.size
    pos = np.arange(lo, hi + window + 1)
    idx = pos[:, None] + np.arange(n)[None, :]
    seg = samples[idx] + samples[idx + n]
    taps = seg @ np.conj(template)
    power = taps.real ** 2 + taps.imag ** 2
    energy = _window_sums(power, window + 1)
    best = int(np.argmax(energy))
    plateau = energy >= 0.9 * energy[best]
    left = best - np.argmin(plateau[best::-1]) + 1 if not plateau[:best + 1].all() else 0
    right = best + np.argmin(plateau[best:]) - 1 if not plateau[best:].all() else energy.size - 1
    w = (left + right) // 2
    rx = samples[lo + w:lo + w + window + 2 * n]  # every sample the window's taps saw
    rx_energy = float(np.vdot(rx, rx).real)
    rx_energy *= 2 * n / (2 * n + window)
    fraction = energy[w] * float(np.vdot(template, template).real) / max(2.0 * self_energy * rx_energy, 1e-30)
    return lo + w, lo + right, float(fraction), taps


def residual_cfo(samples: np.ndarray, start: int, fft_size: int) -> float:
    """CFO (subcarriers, ±0.5) between the two LTS copies at ``start`` and ``start + N``."""
    a = samples[start:start + fft_size]
    b = samples[start + fft_size:start + 2 * fft_size]
    return float(np.angle(np.vdot(a, b)) / (2 * np.pi))
