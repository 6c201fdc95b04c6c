"""OFDM resource grid and modulation: which subcarriers carry pilots and data, IFFT/FFT with CP.

Conventions: subcarrier index ``k`` runs over ``-N/2 .. N/2-1`` (0 = DC, never used); the used
subcarriers are ``-U/2 .. -1, 1 .. U/2`` (U = ``num_used_subcarriers``). Frequency-domain arrays in
this package are indexed by *used* subcarrier (length U, lowest frequency first). FFTs are unitary
(``norm="ortho"``), so a resource element of power 1 has power 1 after the FFT and the noise variance
per resource element equals the time-domain noise variance per sample.
"""
from __future__ import annotations

import cmath

import numpy as np
import scipy.fft

from radio.config import FrameConfig
from radio.jit import njit

_PILOT_SEED = 0x5EED_0001
_FILLER_SEED = 0x5EED_0002


@njit
def phase_ramp(cfo: float, fft_size: int, length: int, start: int = 0) -> np.ndarray:
    """The derotation of a CFO of ``cfo`` subcarriers, ``exp(-j 2π cfo (start + i) / N)`` for i < ``length``,
    complex128 (length,).

    Built as the outer product of two short ramps (about √length complex exponentials instead of
    ``length``: the exponential, not the multiply, is what costs); the product's error is a few 1e-16.
    Compiled (:func:`radio.jit.njit`): callable from the receiver's kernels, ~1 µs from Python.
    """
    step = -2 * np.pi * cfo / fft_size
    cols = int(np.sqrt(max(length - 1, 0))) + 1
    rows = -(-length // cols)
    coarse = np.exp(1j * step * (start + cols * np.arange(rows)))
    fine = np.exp(1j * step * np.arange(cols))
    return np.outer(coarse, fine).reshape(-1)[:length]


def qpsk_sequence(n: int, seed: int) -> np.ndarray:
    """Deterministic unit-power QPSK sequence of length ``n`` (complex128)."""
    bits = np.random.default_rng(seed).integers(0, 2, size=(n, 2))
    return ((1 - 2 * bits[:, 0]) + 1j * (1 - 2 * bits[:, 1])) / np.sqrt(2)


class ResourceGrid:
    """Pilot/data layout of header and payload symbols for one :class:`FrameConfig`.

    Attributes:
        used_bins: FFT bin (0..N-1) of each used subcarrier, shape (U,).
        subcarriers: signed subcarrier index of each used subcarrier, shape (U,).
        pilot_idx: positions (into the U used subcarriers) of the pilots, shape (P,).
        data_idx: positions of the data subcarriers, shape (D,).
    """

    def __init__(self, cfg: FrameConfig):
        self.cfg = cfg
        n, u = cfg.fft_size, cfg.num_used_subcarriers
        self.subcarriers = np.concatenate([np.arange(-u // 2, 0), np.arange(1, u // 2 + 1)])
        self.used_bins = self.subcarriers % n
        is_pilot = np.zeros(u, bool)
        is_pilot[cfg.pilot_spacing // 2::cfg.pilot_spacing] = True
        self.pilot_idx = np.flatnonzero(is_pilot)
        self.data_idx = np.flatnonzero(~is_pilot)
        # Time scale that makes an OFDM symbol with unit-power resource elements unit power.
        self.scale = np.sqrt(n / u)
        self._pilots = np.zeros((0, self.pilot_idx.size), complex)
        self._filler = np.zeros(0, complex)

    @property
    def num_data(self) -> int:
        """Data resource elements per OFDM symbol."""
        return self.data_idx.size

    def pilots(self, first_symbol: int, num_symbols: int) -> np.ndarray:
        """Pilot values for symbols ``first_symbol..`` of the header+payload part, shape (S, P)."""
        end = first_symbol + num_symbols
        if self._pilots.shape[0] < end:
            self._pilots = qpsk_sequence(2 * end * self.pilot_idx.size, _PILOT_SEED).reshape(2 * end, -1)
        return self._pilots[first_symbol:end]

    def filler(self, n: int) -> np.ndarray:
        """Known unit-power values that pad the last payload symbol (also usable as pilots)."""
        if self._filler.size < n:
            self._filler = qpsk_sequence(max(n, 4 * self.num_data), _FILLER_SEED)
        return self._filler[:n]

    def map(self, data: np.ndarray, pilots: np.ndarray) -> np.ndarray:
        """Place data (S, D) and pilots (S, P) into used subcarriers, shape (S, U)."""
        grid = np.empty((data.shape[0], self.cfg.num_used_subcarriers), np.complex128)
        grid[:, self.data_idx] = data
        grid[:, self.pilot_idx] = pilots
        return grid

    def modulate(self, grid: np.ndarray, cp_length: int | None = None) -> np.ndarray:
        """Used-subcarrier grid (S, U) → time samples (S·(N+cp),), unit power per resource element."""
        n = self.cfg.fft_size
        cp = self.cfg.cp_length if cp_length is None else cp_length
        full = np.zeros((grid.shape[0], n), np.complex128)
        full[:, self.used_bins] = grid
        t = scipy.fft.ifft(full, axis=1, norm="ortho") * self.scale
        return np.concatenate([t[:, n - cp:], t], axis=1).reshape(-1)

    def demodulate(self, samples: np.ndarray, starts: np.ndarray, cfo: float = 0.0,
                   dc: complex = 0.0, phase_ref: int | None = None) -> np.ndarray:
        """FFT windows of N samples starting at ``starts`` (S,) → used subcarriers (S, U), complex64 for
        complex64 ``samples``.

        ``dc`` is subtracted from the samples first; ``cfo`` (subcarriers) is then removed inside
        each window. The phase it accumulates between windows is removed too when ``phase_ref`` is given:
        window i is multiplied by ``exp(-j 2π cfo (starts[i] - phase_ref) / N)`` (else the caller applies it).
        The result is scaled back by the transmitter's time scale, so a unit-gain channel gives the transmitted
        resource elements.
        """
        return _demodulate(samples, np.asarray(starts, np.int64), self.cfg.fft_size, self.cfg.num_used_subcarriers // 2,
                           1 / self.scale, cfo, samples.dtype.type(dc), phase_ref is not None, phase_ref or 0)


@njit
def _demodulate(samples: np.ndarray, starts: np.ndarray, n: int, half: int, gain: float, cfo: float, dc: complex,
                between: bool, phase_ref: int) -> np.ndarray:
    """Windows ``samples[starts[i]:starts[i] + n]``, less ``dc``, times the in-window CFO derotation
    ``gain · exp(-j 2π cfo t / n)`` (t < n; a running product, rounding n · 1e-16, then rounded to the samples'
    dtype), unitary FFT, the 2·``half`` used bins (negative frequencies first, DC left out), and, when
    ``between``, times the window's CFO phase ``exp(-j 2π cfo (starts[i] − phase_ref) / n)``: shape (S, 2·half),
    the samples' dtype. One compiled call for a frame's windows."""
    turn = cmath.exp(-2j * np.pi * cfo / n)
    ramp = np.empty(n, np.complex128)
    ramp[0] = gain
    for t in range(1, n):
        ramp[t] = ramp[t - 1] * turn
    derotation = ramp.astype(samples.dtype)
    win = np.empty((starts.size, n), samples.dtype)
    for i in range(starts.size):
        win[i] = (samples[starts[i]:starts[i] + n] - dc) * derotation
    spec = np.fft.fft(win, norm="ortho")
    out = np.empty((starts.size, 2 * half), samples.dtype)
    step = -2 * np.pi * cfo / n if between else 0.0
    for i in range(starts.size):
        rot = np.exp(1j * step * (starts[i] - phase_ref))
        out[i, :half] = spec[i, n - half:] * rot
        out[i, half:] = spec[i, 1:half + 1] * rot
    return out
