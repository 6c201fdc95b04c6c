"""Block-wise convolution with taps that change per block, sampled by a receiver whose clock drifts.

One function, :func:`convolve_blocks`, does the emulator's whole linear part in the frequency domain: the
multipath taps of each input block (time-varying with Doppler) and the receiver's sample-clock offset.

Sample-clock offset: the RX clock runs at ``fs (1 + ppm·1e-6)``, so RX sample ``m`` reads the channel
output ``y`` at TX time ``m / ratio = m - D(m)``, with the delay ``D(m) = e·m``, ``e = 1 - 1/ratio``
(≈ ppm·1e-6), growing by ``e`` per sample. Per block ``b`` the delay is expanded to first order around
its value ``D_b`` at the block centre ``c_b``::

    y(m - D(m)) ≈ (y ⊛ v_b)[m] - e (m - c_b) (y ⊛ v'_b)[m]

where ``v_b`` is a 32-tap Kaiser-windowed sinc interpolator at the fractional part of ``D_b`` and ``v'_b``
its derivative in the fractional delay. Both are polynomials in that fraction (Farrow structure,
:func:`farrow_coefficients`), so their spectra are a small matrix product with the fixed spectra of
the polynomial branches. The truncated Taylor term costs ``(δ²/2)(2πf)²`` with ``|δ| ≤ e·span/2``:
:func:`block_length_for` sizes blocks so ``|δ| ≤ 1e-2`` samples (error ≤ −71 dB at 0.375 fs at the block
edges, below 12-bit quantisation); the interpolator itself is good to −80 dB at 0.375 fs. Both terms
overlap-add per block; the integer part of the delay (a slip every ``1/e`` samples) moves where a block
lands. What depends only on the buffer's shape (the per-block interpolator spectra) is cached.

>>> import numpy as np
>>> x = np.exp(2j * np.pi * 0.05 * np.arange(4000)).astype(np.complex64)
>>> y = convolve_blocks(x, np.ones((1, 1), np.complex64), block_length_for(1, 40.0), clock_offset_ppm=40.0)
>>> len(y), bool(np.abs(y[2000] - np.exp(2j * np.pi * 0.05 * 2000 / (1 + 40e-6))) < 1e-3)
(4000, True)
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft

from radio.workspace import Workspace

FARROW_HALF_LENGTH = 16
"""The interpolator spans lags ``-15 .. 16`` around the fractional delay (32 taps)."""
MAX_TAYLOR_DELAY = 1e-2
"""Largest delay change (samples) left to the first-order Taylor term within one block."""
MIN_BLOCK_LENGTH = 64
"""Shortest block (very large clock offsets would otherwise ask for tiny, inefficient blocks)."""
DEFAULT_BLOCK_LENGTH = 1024
"""Block length without another constraint (measured fastest at 3.84 and 30.72 MS/s, ~1000–2000)."""
FARROW_DEGREE = 6
"""Degree of the interpolator's polynomial in the fractional delay."""


def block_length_for(num_lags: int, clock_offset_ppm: float = 0.0, max_block: int | None = None) -> int:
    """Samples per block for :func:`convolve_blocks`: at most ``max_block`` (default: the larger of
    :data:`DEFAULT_BLOCK_LENGTH` and 4× the spill) and, with a clock offset, small
    enough that the delay changes by at most ``2·MAX_TAYLOR_DELAY`` over a block's output span; then
    shortened so the block plus its spill (``num_lags`` and the interpolator) is a fast FFT length.
    At least :data:`MIN_BLOCK_LENGTH` (beyond ~150 ppm the clock error then grows as ppm²)."""
    spill = _spill(num_lags, clock_offset_ppm)
    e = abs(_delay_rate(clock_offset_ppm))
    bound = max_block or max(DEFAULT_BLOCK_LENGTH, 4 * spill)
    if e > 0:
        bound = min(bound, 2 * MAX_TAYLOR_DELAY / e - spill)
    block = int(max(MIN_BLOCK_LENGTH, bound))
    fast = scipy.fft.prev_fast_len(block + spill) - spill
    return fast if fast >= max(MIN_BLOCK_LENGTH, block // 2) else block


def convolve_blocks(x: np.ndarray, taps: np.ndarray, block_length: int, clock_offset_ppm: float = 0.0,
                    blocks_per_row: int = 1, lead: int = 0, scratch: Workspace | None = None) -> np.ndarray:
    """Convolve ``x`` with per-block taps and resample it onto an RX clock at ``fs (1 + ppm·1e-6)``.

    Args:
        x: ``[n]`` complex64 input (TX clock).
        taps: ``[rows, num_lags]`` complex64; input block ``b`` (samples ``b·block_length`` onwards) is
            convolved with row ``min(b // blocks_per_row, rows - 1)`` and the blocks overlap-add.
        block_length: samples per block (:func:`block_length_for`; any length works, the FFT size follows).
        clock_offset_ppm: RX sample-clock offset; 0 keeps the TX clock.
        blocks_per_row: consecutive blocks sharing one row of taps.
        lead: zeros put before the result (the emulator's leading noise-only samples), at no extra pass.
        scratch: reusable work buffers (see :mod:`radio.workspace`); the result is always a fresh array.

    Returns:
        ``[lead + n_out]`` complex64, column 0 of the taps at index ``lead`` (as ``np.convolve``), on the RX
        clock: ``n_out = floor((n + num_lags - 2)·ratio) + 1`` (``n + num_lags - 1`` without clock offset).
    """
    ws = scratch if scratch is not None else Workspace()
    rows, num_lags = taps.shape
    n, b_len = len(x), int(block_length)
    num_blocks, full = math.ceil(n / b_len), n // b_len
    n_fft = scipy.fft.next_fast_len(b_len + _spill(num_lags, clock_offset_ppm))
    spec = ws.array("blocks", num_blocks * n_fft, np.complex64).reshape(num_blocks, n_fft)
    spec[:full, :b_len] = x[: full * b_len].reshape(full, b_len)
    spec[full:, : n - full * b_len] = x[full * b_len:]
    spec[full:, n - full * b_len:] = 0
    spec[:full, b_len:] = 0
    scipy.fft.fft(spec, axis=1, overwrite_x=True)  # in place (complex64, contiguous)
    # each row's spectrum once, broadcast over its blocks (the last row also covers any blocks beyond)
    num_rows = min(rows, math.ceil(num_blocks / blocks_per_row))
    taps_spec = scipy.fft.fft(taps[:num_rows], n_fft, axis=1)
    covered = min(num_blocks, (num_rows - 1) * blocks_per_row)
    spec[:covered].reshape(-1, blocks_per_row, n_fft)[...] *= taps_spec[:num_rows - 1, None]
    spec[covered:] *= taps_spec[num_rows - 1]
    if not clock_offset_ppm:
        scipy.fft.ifft(spec, axis=1, overwrite_x=True)
        return _overlap_add(spec, np.zeros(num_blocks, np.int64), b_len, lead, n + num_lags - 1)
    plan = _clock_plan(num_blocks, b_len, num_lags, n_fft, clock_offset_ppm)
    # y(m - D(m)) ≈ Σ_b [y ⊛ (v_b + e c_b v'_b)](m) − e·m·Σ_b (y ⊛ v'_b)(m): two inverse FFTs, one overlap-add
    main = np.multiply(spec, plan.main, out=ws.array("main", num_blocks * n_fft, np.complex64).reshape(spec.shape))
    scipy.fft.ifft(main, axis=1, overwrite_x=True)
    spec *= plan.slope
    scipy.fft.ifft(spec, axis=1, overwrite_x=True)
    spec *= plan.ramp
    main -= spec
    n_out = math.floor((n + num_lags - 2) * (1.0 + clock_offset_ppm * 1e-6)) + 1
    return _overlap_add(main, plan.shifts, b_len, lead, n_out)


def _spill(num_lags: int, clock_offset_ppm: float) -> int:
    """Samples a block's output runs past the block: the channel's lags and, with a clock offset, the
    interpolator's."""
    return num_lags - 1 + (2 * FARROW_HALF_LENGTH - 1 if clock_offset_ppm else 0)


def _delay_rate(clock_offset_ppm: float) -> float:
    """``e = 1 - 1/ratio``: the RX clock's delay grows by ``e`` samples per RX sample."""
    return 1.0 - 1.0 / (1.0 + clock_offset_ppm * 1e-6)


@dataclass(frozen=True)
class _ClockPlan:
    """What the clock offset does to each block, fixed by the buffer's shape (cached):

    Attributes:
        shifts: ``[blocks]`` lag of each block's first output sample (integer delay - half the interpolator).
        main: ``[blocks, n_fft]`` complex64 spectrum of ``v_b + e·c_b·v'_b``.
        slope: ``[blocks, n_fft]`` complex64 spectrum of ``v'_b``.
        ramp: ``[blocks, n_fft]`` float32 ``e·m`` at each block's output samples ``m``.
    """

    shifts: np.ndarray
    main: np.ndarray
    slope: np.ndarray
    ramp: np.ndarray


@functools.lru_cache(maxsize=4)
def _clock_plan(num_blocks: int, block_length: int, num_lags: int, n_fft: int,
                clock_offset_ppm: float) -> _ClockPlan:
    e = _delay_rate(clock_offset_ppm)
    # block centres on the RX clock, the delay there, its integer part q (≥ delay) and fraction mu = q - delay
    centre = np.arange(num_blocks) * block_length + (block_length + _spill(num_lags, clock_offset_ppm)) / 2
    delay = e * centre
    q = np.ceil(delay).astype(np.int64)
    mu = q - delay
    powers = mu[:, None] ** np.arange(FARROW_DEGREE + 1)  # [blocks, degree + 1]
    slopes = np.zeros_like(powers)
    slopes[:, 1:] = powers[:, :-1] * np.arange(1, FARROW_DEGREE + 1)  # d mu^p / d mu
    branches = _branch_spectra(n_fft)  # [degree + 1, n_fft]
    shifts = q - FARROW_HALF_LENGTH  # the reversed interpolator's first tap sits at lag q - half
    first = np.arange(num_blocks) * block_length + shifts
    plan = _ClockPlan(shifts=shifts,
                      main=((powers + (e * centre)[:, None] * slopes) @ branches).astype(np.complex64),
                      slope=(slopes @ branches).astype(np.complex64),
                      ramp=(e * (first[:, None] + np.arange(n_fft))).astype(np.float32))
    for array in (plan.shifts, plan.main, plan.slope, plan.ramp):
        array.flags.writeable = False  # shared through the cache
    return plan


def _overlap_add(blocks: np.ndarray, shifts: np.ndarray, block_length: int, lead: int, n_out: int) -> np.ndarray:
    """``[lead + n_out]`` complex64, fresh: ``lead`` zeros, then block ``b`` of ``blocks``
    (``[num_blocks, n_fft]``) added at ``b·block_length + shifts[b]``; runs of equal shift are added as
    reshaped views. Output before index 0 (an interpolator's precursor) is dropped."""
    num_blocks, n_fft = blocks.shape
    m = math.ceil(n_fft / block_length)
    pad = lead + max(0, -int(shifts.min()))
    out = np.zeros(pad + (num_blocks + m) * block_length + max(0, int(shifts.max())), np.complex64)
    starts = np.flatnonzero(np.r_[True, shifts[1:] != shifts[:-1]])
    for first, last in zip(starts, np.r_[starts[1:], num_blocks], strict=True):
        offset = pad + first * block_length + int(shifts[first])
        view = out[offset: offset + (last - first + m) * block_length].reshape(-1, block_length)
        for j in range(m):
            width = min(block_length, n_fft - j * block_length)
            view[j: j + last - first, :width] += blocks[first:last, j * block_length: j * block_length + width]
    out[pad - lead: pad] = 0
    return out[pad - lead: pad + n_out]


@functools.cache
def _branch_spectra(n_fft: int) -> np.ndarray:
    """``[degree + 1, n_fft]`` complex128: FFT of each Farrow branch, taps reversed (so the interpolator is
    a convolution), tap ``j`` at lag ``j`` relative to the block's shift."""
    return scipy.fft.fft(farrow_coefficients()[:, ::-1].astype(np.float64), n_fft, axis=1)


@functools.cache
def farrow_coefficients(half_length: int = FARROW_HALF_LENGTH, degree: int = FARROW_DEGREE,
                        beta: float = 8.0) -> np.ndarray:
    """``[degree + 1, 2·half_length]`` float32: least-squares polynomial (in the fractional delay μ ∈ [0, 1))
    of the Kaiser-windowed sinc taps at lags ``-half_length+1 .. half_length``, each normalised to unit DC
    gain (tap fit error 2e-5): ``x(i + μ) ≈ Σ_j x[i + j - half_length + 1] Σ_p μ^p c[p, j]``."""
    mu = np.arange(4096) / 4096
    u = np.arange(-half_length + 1, half_length + 1)[None, :] - mu[:, None]
    w = np.sinc(u) * np.i0(beta * np.sqrt(1.0 - np.clip(u / half_length, -1.0, 1.0) ** 2)) / np.i0(beta)
    w /= w.sum(axis=1, keepdims=True)
    coeffs, *_ = np.linalg.lstsq(np.vander(mu, degree + 1, increasing=True), w, rcond=None)
    return coeffs.astype(np.float32)
