"""Data-aided SNR estimation: the realised average per-used-subcarrier Es/N0 of a frame.

SNR = mean_k |H_k|² · Es / N0 over the used subcarriers, with Es = 1 (every resource element has
unit power) — the same definition the emulator reports as truth.

Noise N0 comes only from known signals, never from decisions on the (continuous-valued) payload:

1. the difference of the two identical long training symbols: ``|Y1 − Y2|² / 2`` (U degrees of
   freedom, immune to ISI up to the preamble guard);
2. the part of the LS channel outside the delay window: ``2 ‖(I − P_W) H_ls‖²`` (U − W degrees of
   freedom; P_W projects onto channels with impulse response inside the W-tap window);
3. optionally (when the channel fits the data CP) the residuals of pilots and other known resource
   elements after channel and phase correction.

Signal: ``mean |P_W H_ls|² − (N0/2)·W/U`` (the projection keeps W/U of the N0/2 LS noise).
"""
from __future__ import annotations

import numpy as np


def preamble_noise(h_ls: np.ndarray, h_proj: np.ndarray, rank: int, diff_energy: float) -> tuple[float, int]:
    """Noise energy (sum over degrees of freedom) and degrees of freedom from the preamble.

    Args:
        h_ls: LS channel (mean of the two LTS), shape (U,), noise variance N0/2.
        h_proj: ``h_ls`` projected onto the delay window (rank W).
        rank: W.
        diff_energy: ``Σ |Y1 − Y2|² / 2`` (expectation U·N0).
    """
    u = h_ls.size
    out = h_ls - h_proj
    return diff_energy + 2.0 * float(np.vdot(out, out).real), u + (u - rank)


def signal_power(h_proj: np.ndarray, rank: int, noise: float) -> float:
    """Mean |H|² over used subcarriers from the projected LS channel, debiased for the W/U of the
    N0/2 LS noise the projection keeps (may be ≤ 0)."""
    u = h_proj.size
    return float(np.vdot(h_proj, h_proj).real) / u - 0.5 * noise * rank / u


def snr_db(signal: float, noise: float) -> float:
    """10·log10(signal / noise), floored at −30 dB when the signal estimate is not positive."""
    if noise <= 0:
        return float("inf")
    return float(10 * np.log10(max(signal / noise, 1e-3)))
