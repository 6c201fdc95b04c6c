"""Circular complex white Gaussian noise, fast, added in place: :func:`add_complex_awgn`.

Drawn in polar form (Box–Muller): ``|w|² = -var·ln(u₁)`` is exponential with mean ``var`` and the phase
``2π u₂`` uniform, with ``u₁ ∈ (0, 1]``, ``u₂ ∈ [0, 1)`` float32 uniforms. Real and imaginary parts are then
independent N(0, var/2). Float32 uniforms (24 bits) cap ``|w|²`` at ``16.6·var``: the tail beyond has
probability 6e-8 per sample, below anything a frame-level statistic sees. About 3× faster than
``Generator.standard_normal`` (float32 or float64) on the same machine.

>>> import numpy as np
>>> w = add_complex_awgn(np.zeros(200_000, np.complex64), 2.0, np.random.default_rng(0))
>>> w.dtype, round(float(np.mean(np.abs(w) ** 2)), 1), round(float(np.var(w.real)), 1)
(dtype('complex64'), 2.0, 1.0)
"""
from __future__ import annotations

import math

import numpy as np


def add_complex_awgn(y: np.ndarray, variance: float, rng: np.random.Generator,
                     scratch: np.ndarray | None = None) -> np.ndarray:
    """Add circular Gaussian noise of variance ``variance`` (``E|w|²``) to ``y`` (``[n]`` complex64) in place
    and return ``y``. ``scratch``: optional float32 array of ≥ ``3n`` items to work in (else allocated)."""
    n = len(y)
    work = np.empty(3 * n, np.float32) if scratch is None else scratch[: 3 * n]
    u, sine = work[: 2 * n], work[2 * n:]
    rng.random(out=u, dtype=np.float32)
    magnitude, phase = u[:n], u[n:]
    np.subtract(np.float32(1.0), magnitude, out=magnitude)  # (0, 1]
    np.log(magnitude, out=magnitude)
    magnitude *= np.float32(-variance)
    np.sqrt(magnitude, out=magnitude)
    phase *= np.float32(2 * math.pi)
    np.sin(phase, out=sine)
    sine *= magnitude
    np.cos(phase, out=phase)
    phase *= magnitude
    rails = y.view(np.float32).reshape(n, 2)
    rails[:, 0] += phase
    rails[:, 1] += sine
    return y
