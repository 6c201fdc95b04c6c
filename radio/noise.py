"""Circular complex white Gaussian noise, fast: :func:`complex_awgn`.

Drawn in polar form (Box–Muller): ``|w|² = -var·ln(u₁)`` is exponential with mean ``var`` and the phase
``2π u₂`` uniform, with ``u₁ ∈ (0, 1]``, ``u₂ ∈ [0, 1)`` float32 uniforms. Real and imaginary parts are then
independent N(0, var/2). Float32 uniforms (24 bits) cap ``|w|²`` at ``16.6·var``: the tail beyond has
probability 6e-8 per sample, below anything a frame-level statistic sees. About 3× faster than
``Generator.standard_normal`` (float32 or float64) on the same machine.

>>> import numpy as np
>>> w = complex_awgn(200_000, 2.0, np.random.default_rng(0))
>>> w.dtype, round(float(np.mean(np.abs(w) ** 2)), 1), round(float(np.var(w.real)), 1)
(dtype('complex64'), 2.0, 1.0)
"""
from __future__ import annotations

import math

import numpy as np

from radio.carrier import unit_phasor


def complex_awgn(num_samples: int, variance: float, rng: np.random.Generator) -> np.ndarray:
    """``[num_samples]`` complex64 circular Gaussian noise of variance ``variance`` (``E|w|²``)."""
    u = rng.random(2 * num_samples, np.float32)
    magnitude, phase = u[:num_samples], u[num_samples:]
    np.subtract(np.float32(1.0), magnitude, out=magnitude)  # (0, 1]
    np.log(magnitude, out=magnitude)
    magnitude *= np.float32(-variance)
    np.sqrt(magnitude, out=magnitude)
    phase *= np.float32(2 * math.pi)
    return unit_phasor(phase, magnitude)
