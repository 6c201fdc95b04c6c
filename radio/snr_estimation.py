"""Data-aided SNR estimation: the realised average per-used-subcarrier Es/N0 of a frame.

SNR = mean_k |H_k|² · Es / N0 over the used subcarriers, with Es = 1 (every resource element has
unit power) — the same definition the emulator reports as truth.

Noise N0 comes only from known signals, never from decisions on the (continuous-valued) payload:

1. the difference of the two identical long training symbols: ``|Y1 − Y2|² / 2`` (U degrees of
   freedom, immune to ISI up to the preamble guard);
2. the part of the LS channel outside the delay window: ``2 ‖(I − P_W) H_ls‖²`` (U − W degrees of
   freedom; P_W projects onto channels with impulse response inside the delay window, W here being the
   window's rank: :meth:`radio.channel_estimation.ChannelEstimator.rank`, at most its tap count);
3. optionally (when the channel fits the data CP) the residuals of pilots and other known resource
   elements after channel and phase correction.

Signal: ``mean |P_W H_ls|² − (N0/2)·W/U`` (the projection keeps W/U of the N0/2 LS noise).
"""
from __future__ import annotations

import numpy as np


def _energy(x: np.ndarray) -> float:
    """‖x‖², accumulated in float64."""
    x = np.asarray(x, np.complex128)
    return float(np.vdot(x, x).real)


def preamble_noise(h_ls: np.ndarray, coef: np.ndarray, rank: int, diff_energy: float) -> tuple[float, int]:
    """Noise energy (sum over degrees of freedom) and degrees of freedom from the preamble.

    Args:
        h_ls: LS channel (mean of the two LTS), shape (U,), noise variance N0/2.
        coef: coordinates of ``h_ls`` in an orthonormal basis of the delay window, shape (W,)
            (:meth:`radio.channel_estimation.ChannelEstimator.coefficients`).
        rank: W.
        diff_energy: ``Σ |Y1 − Y2|² / 2`` (expectation U·N0).

    The energy outside the window, ``‖(I − P_W) H_ls‖²``, is ``‖H_ls‖² − ‖coef‖²`` (Pythagoras).
    """
    u = h_ls.size
    outside = max(_energy(h_ls) - _energy(coef), 0.0)
    return diff_energy + 2.0 * outside, u + (u - rank)


def signal_power(coef: np.ndarray, num_subcarriers: int, rank: int, noise: float) -> float:
    """Mean |H|² over the U = ``num_subcarriers`` used subcarriers from the coordinates (W,) of the LS
    channel in the delay window's orthonormal basis (the projection's energy), debiased for the W/U of
    the N0/2 LS noise the projection keeps (may be ≤ 0)."""
    u = num_subcarriers
    return _energy(coef) / u - 0.5 * noise * rank / u


def snr_db(signal: float, noise: float) -> float:
    """10·log10(signal / noise), floored at −30 dB when the signal estimate is not positive."""
    if noise <= 0:
        return float("inf")
    return float(10 * np.log10(max(signal / noise, 1e-3)))
