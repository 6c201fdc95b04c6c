"""The RX local oscillator against the TX one: carrier frequency offset plus Wiener phase noise, as a phasor.

``carrier_phasor(n, cfo_hz, linewidth_hz, fs, rng)[k] = exp(j θ[k])`` with
``θ[k] = 2π cfo_hz k / fs + φ[k]`` and ``φ`` a Wiener process (random walk, increments N(0, 2π·linewidth/fs)
per sample: the Lorentzian spectrum of a free-running oscillator with that 3-dB linewidth).

Speed: the phase is built per segment of ``S`` samples: the phase at each segment start is accumulated in
float64 and wrapped to [0, 2π); within a segment the phase is linear (the CFO slope plus the walk's
step to the next segment start), so the phasor is a segment-start phasor times powers of one rotation.
With phase noise the walk is thus sampled every ``S`` samples and linearly interpolated; ``S`` is the
largest power of two (≤ 64) whose left-out Brownian-bridge variance ``2π·linewidth·S / (6 fs)`` stays
below 1e-6 rad² (:func:`phase_noise_segment`); ``S = 1`` is the exact per-sample walk.

>>> import numpy as np
>>> p = carrier_phasor(1000, 1000.0, 0.0, 1e6, np.random.default_rng(0))
>>> bool(np.allclose(p, np.exp(2j * np.pi * 1e-3 * np.arange(1000)), atol=1e-5))
True
"""
from __future__ import annotations

import math

import numpy as np

MAX_BRIDGE_VARIANCE_RAD2 = 1e-6
"""Largest phase-noise variance (rad²) left out between two samples of the interpolated walk."""
MAX_SEGMENT = 64


def phase_noise_segment(linewidth_hz: float, sample_rate_hz: float) -> int:
    """Segment length (power of two, 1..64) for a Wiener walk of ``linewidth_hz`` at ``sample_rate_hz``."""
    if linewidth_hz <= 0:
        return MAX_SEGMENT
    bound = MAX_BRIDGE_VARIANCE_RAD2 * 6 * sample_rate_hz / (2 * math.pi * linewidth_hz)
    return int(min(MAX_SEGMENT, 2 ** max(0, math.floor(math.log2(max(bound, 1.0))))))


def carrier_phasor(num_samples: int, cfo_hz: float, linewidth_hz: float, sample_rate_hz: float,
                   rng: np.random.Generator, out: np.ndarray | None = None,
                   scratch: np.ndarray | None = None) -> np.ndarray:
    """``[num_samples]`` complex64 ``exp(jθ)``: CFO ramp plus Wiener phase noise (see the module docstring);
    written to ``out`` (complex64, ≥ ``num_samples + 64`` items) when given; ``scratch``: optional complex64
    array of as many items to work in.

    Per segment ``k`` of ``S`` samples the phasor is ``P_k·w_k^r`` (``r = 0 .. S-1``), ``P_k`` the phasor at
    the segment start and ``w_k`` one sample's rotation; the powers are filled by doubling
    (``w^(r + width) = w^r · w^width``) on an ``[S, segments]`` array (contiguous rows), about one complex
    multiply per sample, then transposed into sample order.
    """
    seg = phase_noise_segment(linewidth_hz, sample_rate_hz)
    num_segments = math.ceil(num_samples / seg)
    step = 2 * math.pi * cfo_hz / sample_rate_hz  # rad per sample
    start = step * seg * np.arange(num_segments + 1)  # CFO phase at the segment starts (float64)
    if linewidth_hz > 0:
        walk = rng.normal(0.0, math.sqrt(2 * math.pi * linewidth_hz * seg / sample_rate_hz), num_segments)
        start[1:] += np.cumsum(walk)
    rate = (start[1:] - start[:-1]) / seg  # rad per sample within each segment
    size = num_segments * seg
    powers = (np.empty(size, np.complex64) if scratch is None else scratch[:size]).reshape(seg, num_segments)
    powers[0] = _unit(np.remainder(start[:-1], 2 * math.pi))
    width = 1
    while width < seg:
        np.multiply(powers[:width], _unit(rate * width)[None, :], out=powers[width: 2 * width])
        width *= 2
    phasor = np.empty(size, np.complex64) if out is None else out[:size]
    phasor.reshape(num_segments, seg)[...] = powers.T
    return phasor[:num_samples]


def _unit(phase: np.ndarray) -> np.ndarray:
    """``exp(j phase)`` as complex64 through float32 cos/sin (numpy's complex ``exp`` is ~40× slower)."""
    phase = phase.astype(np.float32)
    out = np.empty(phase.shape, np.complex64)
    rails = out.view(np.float32).reshape(*phase.shape, 2)
    np.cos(phase, out=rails[..., 0])
    np.sin(phase, out=rails[..., 1])
    return out
