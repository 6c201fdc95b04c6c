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
:func:`clock_block_length` sizes blocks so ``|δ| ≤ 5e-3`` samples (error ≤ −82 dB at 0.375 fs); the
interpolator itself is good to −80 dB at 0.375 fs. Both terms overlap-add per block; the integer part of
the delay (a slip every ``1/e`` samples) moves where a block lands.

>>> import numpy as np
>>> x = np.exp(2j * np.pi * 0.05 * np.arange(4000)).astype(np.complex64)
>>> y = convolve_blocks(x, np.ones((1, 1), np.complex64), block_length=512, clock_offset_ppm=40.0)
>>> len(y), bool(np.abs(y[2000] - np.exp(2j * np.pi * 0.05 * 2000 / (1 + 40e-6))) < 1e-3)
(4000, True)
"""
from __future__ import annotations

import functools
import math

import numpy as np
import scipy.fft
import scipy.signal

FARROW_HALF_LENGTH = 16
"""The interpolator spans lags ``-15 .. 16`` around the fractional delay (32 taps)."""
MAX_TAYLOR_DELAY = 5e-3
"""Largest delay change (samples) left to the first-order Taylor term within one block."""
MIN_BLOCK_LENGTH = 64
FARROW_DEGREE = 6
"""Degree of the interpolator's polynomial in the fractional delay."""


def clock_block_length(clock_offset_ppm: float, num_lags: int) -> int:
    """Samples per block so the delay changes by at most ``2·MAX_TAYLOR_DELAY`` over a block's output span
    (``block + num_lags + 32`` samples); at least :data:`MIN_BLOCK_LENGTH` (beyond ~150 ppm the error
    then grows as ppm²)."""
    e = abs(1.0 - 1.0 / (1.0 + clock_offset_ppm * 1e-6))
    span = 2 * MAX_TAYLOR_DELAY / e if e > 0 else math.inf
    return int(max(MIN_BLOCK_LENGTH, min(1 << 20, span - num_lags - 2 * FARROW_HALF_LENGTH)))


def convolve_blocks(x: np.ndarray, taps: np.ndarray, block_length: int, clock_offset_ppm: float = 0.0) -> np.ndarray:
    """Convolve ``x`` with per-block taps and resample it onto an RX clock at ``fs (1 + ppm·1e-6)``.

    Args:
        x: ``[n]`` complex64 input (TX clock).
        taps: ``[rows, num_lags]`` complex64; input block ``b`` (samples ``b·block_length`` onwards) is
            convolved with row ``min(b, rows - 1)`` and the blocks overlap-add.
        block_length: samples per block (ignored for one row without clock offset).
        clock_offset_ppm: RX sample-clock offset; 0 keeps the TX clock.

    Returns:
        ``[n_out]`` complex64, column 0 of the taps at index 0 (as ``np.convolve``), on the RX clock:
        ``n_out = floor((n + num_lags - 2)·ratio) + 1`` (``n + num_lags - 1`` without clock offset).
    """
    rows, num_lags = taps.shape
    if rows == 1 and not clock_offset_ppm:
        return scipy.signal.oaconvolve(x, taps[0]).astype(np.complex64, copy=False)
    n, b_len = len(x), int(block_length)
    num_blocks = math.ceil(n / b_len)
    ratio = 1.0 + clock_offset_ppm * 1e-6
    e = 1.0 - 1.0 / ratio
    n_out = math.floor((n + num_lags - 2) * ratio) + 1 if clock_offset_ppm else n + num_lags - 1
    kernel = 2 * FARROW_HALF_LENGTH if clock_offset_ppm else 1
    n_fft = scipy.fft.next_fast_len(b_len + num_lags + kernel - 2)

    xb = np.zeros((num_blocks, b_len), np.complex64)
    xb.reshape(-1)[:n] = x
    spec = scipy.fft.fft(xb, n_fft, axis=1)
    spec *= scipy.fft.fft(taps[np.minimum(np.arange(num_blocks), rows - 1)] if rows > 1 else taps, n_fft, axis=1)
    if not clock_offset_ppm:
        return _overlap_add(scipy.fft.ifft(spec, axis=1), np.zeros(num_blocks, np.int64), b_len, n_out)

    # block centres on the RX clock, the delay there, its integer part q (≥ delay) and fraction mu = q - delay
    centre = np.arange(num_blocks) * b_len + (b_len + num_lags + kernel - 2) / 2
    delay = e * centre
    q = np.ceil(delay).astype(np.int64)
    mu = q - delay
    powers = mu[:, None] ** np.arange(FARROW_DEGREE + 1)  # [blocks, degree + 1]
    slopes = np.zeros_like(powers)
    slopes[:, 1:] = powers[:, :-1] * np.arange(1, FARROW_DEGREE + 1)  # d mu^p / d mu
    branches = _branch_spectra(n_fft)  # [degree + 1, n_fft]
    shifts = q - FARROW_HALF_LENGTH  # lag of the reversed interpolator's first tap
    # y(m - D(m)) ≈ Σ_b [y ⊛ (v_b + e c_b v'_b)](m) − e·m·Σ_b (y ⊛ v'_b)(m)
    main = _overlap_add(scipy.fft.ifft(spec * ((powers + (e * centre)[:, None] * slopes) @ branches).astype(
        np.complex64), axis=1), shifts, b_len, n_out)
    slope = _overlap_add(scipy.fft.ifft(spec * (slopes @ branches).astype(np.complex64), axis=1), shifts, b_len,
                         n_out)
    slope *= np.float32(e) * np.arange(n_out, dtype=np.float32)
    main -= slope
    return main


def _overlap_add(blocks: np.ndarray, shifts: np.ndarray, block_length: int, n_out: int) -> np.ndarray:
    """``[n_out]`` complex64: block ``b`` of ``blocks`` (``[num_blocks, n_fft]``) added at
    ``b·block_length + shifts[b]``; runs of equal shift are added as reshaped views."""
    num_blocks, n_fft = blocks.shape
    m = math.ceil(n_fft / block_length)
    pad = max(0, -int(shifts.min()))
    out = np.zeros(pad + (num_blocks + m) * block_length + int(shifts.max()) + pad, np.complex64)
    if m * block_length != n_fft:
        blocks = np.concatenate([blocks, np.zeros((num_blocks, m * block_length - n_fft), blocks.dtype)], axis=1)
    blocks = blocks.reshape(num_blocks, m, block_length)
    starts = np.flatnonzero(np.r_[True, shifts[1:] != shifts[:-1]])
    for first, last in zip(starts, np.r_[starts[1:], num_blocks], strict=True):
        offset = pad + first * block_length + int(shifts[first])
        view = out[offset: offset + (last - first + m - 1) * block_length].reshape(-1, block_length)
        for j in range(m):
            view[j: j + last - first] += blocks[first:last, j]
    return out[pad: pad + n_out]


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
