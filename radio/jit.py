"""Optional compiled kernels: ``njit`` is numba's when numba is installed, the identity otherwise.

The receiver keeps one readable implementation of each hot loop. Decorated with :func:`njit`, it runs
compiled (numba, cached under ``__pycache__``; ``numpy.fft`` inside a kernel through rocket-fft, which
registers pocketfft with numba); without numba or rocket-fft, or with ``DEKAG_NO_JIT=1`` in the
environment, the same Python/numpy function runs as written. Every kernel's pure path is tested
against its compiled one, so the two never drift.

    >>> from radio.jit import njit
    >>> @njit
    ... def total(x):
    ...     s = 0.0
    ...     for v in x:
    ...         s += v
    ...     return s
    >>> float(total(np.arange(4.0)))
    6.0
    >>> float(python_function(total)(np.arange(4.0)))   # the uncompiled original, whichever path is active
    6.0
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

import numpy as np  # noqa: F401  (used by the docstring example)

try:
    import numba
except ImportError:  # numba is a listed dependency; this keeps a bare numpy install working
    numba = None

ENABLED = (numba is not None and importlib.util.find_spec("rocket_fft") is not None
           and os.environ.get("DEKAG_NO_JIT", "") not in ("1", "true", "yes"))


def njit(fn: Callable) -> Callable:
    """Compile ``fn`` in nopython mode (cached, no fast-math: results match numpy's to rounding)
    when numba and rocket-fft are available and enabled; otherwise return ``fn`` unchanged."""
    if not ENABLED:
        return fn
    from_file = os.path.isfile(fn.__code__.co_filename)  # numba can only cache functions defined in a file
    return numba.njit(cache=from_file, nogil=True)(fn)


def python_function(fn: Callable) -> Callable:
    """The plain Python function behind ``fn`` (``fn`` itself when it was not compiled)."""
    return getattr(fn, "py_func", fn)
