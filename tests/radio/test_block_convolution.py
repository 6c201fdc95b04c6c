"""radio.block_convolution against analytic references: multipath and a drifting RX clock in one pass."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft

from radio.block_convolution import MAX_TAYLOR_DELAY, _spill, block_length_for, convolve_blocks

RNG = np.random.default_rng(7)
FREQS = RNG.uniform(-0.375, 0.375, 24)  # cycles/sample: tones spread over an OFDM band (75 % of fs)
AMPS = (RNG.standard_normal(24) + 1j * RNG.standard_normal(24)) / np.sqrt(48)


def _multitone(t: np.ndarray) -> np.ndarray:
    return (AMPS[None, :] * np.exp(2j * np.pi * np.outer(t, FREQS))).sum(axis=1)


@pytest.mark.parametrize("ppm", [0.0, 10.0, -10.0, 40.0])
def test_channel_and_clock_offset_match_the_analytic_output(ppm: float) -> None:
    """RX sample m = Σ_i a_i H(f_i) exp(j2π f_i m / ratio), H the DFT of the taps (column 0 at lag 0)."""
    n = 30_000
    taps = ((RNG.standard_normal(17) + 1j * RNG.standard_normal(17)) / 6).astype(np.complex64)[None, :]
    x = _multitone(np.arange(n)).astype(np.complex64)
    block = block_length_for(17, ppm)
    y = convolve_blocks(x, taps, block, ppm)
    ratio = 1 + ppm * 1e-6
    assert len(y) == math.floor((n + 15) * ratio) + 1
    h = np.exp(-2j * np.pi * np.outer(FREQS, np.arange(17))) @ taps[0].astype(np.complex128)
    m = np.arange(100, n - 100)  # away from the edges, where the input starts and stops
    ref = (AMPS * h)[None, :] * np.exp(2j * np.pi * np.outer(m / ratio, FREQS))
    err_db = 10 * np.log10(np.mean(np.abs(y[m] - ref.sum(axis=1)) ** 2) / np.mean(np.abs(y[m]) ** 2))
    assert err_db < -70


def test_block_lengths_fit_the_clock_budget_and_a_fast_fft() -> None:
    for ppm, lags in [(0.0, 17), (10.0, 40), (-40.0, 17), (100.0, 900), (1000.0, 5)]:
        block = block_length_for(lags, ppm)
        spill = _spill(lags, ppm)
        assert block >= 64
        assert scipy.fft.next_fast_len(block + spill) == block + spill or block == 64
        e = abs(1 - 1 / (1 + ppm * 1e-6))
        assert e * (block + spill) / 2 <= MAX_TAYLOR_DELAY * 1.0001 or block == 64
    assert block_length_for(40, 0.0, max_block=500) <= 500


def test_lead_zeros_and_rows_per_block() -> None:
    x = (RNG.standard_normal(3000) + 1j * RNG.standard_normal(3000)).astype(np.complex64)
    taps = (RNG.standard_normal((2, 5)) + 1j * RNG.standard_normal((2, 5))).astype(np.complex64)
    y = convolve_blocks(x, taps, 500, blocks_per_row=3, lead=7)
    assert len(y) == 7 + 3000 + 4 and not np.any(y[:7])
    ref = np.zeros(3004, np.complex128)
    for b in range(6):  # blocks 0-2 use row 0, blocks 3-5 row 1
        ref[b * 500: b * 500 + 504] += np.convolve(x[b * 500:(b + 1) * 500], taps[b // 3])
    np.testing.assert_allclose(y[7:], ref, atol=1e-4)
    with_clock = convolve_blocks(x, taps[:1], 256, 20.0, lead=11)
    assert not np.any(with_clock[:11])  # the interpolator's precursor does not leak into the lead
