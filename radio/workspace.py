"""Scratch arrays reused from call to call: :class:`Workspace`.

A fresh megabyte-sized numpy array costs a page fault per 4 KiB page the first time it is written (glibc
returns freed large blocks to the system), which on a virtual machine can cost as much as the arithmetic
done on it. The emulator keeps its per-sample scratch buffers here instead.

>>> ws = Workspace()
>>> a = ws.array("phase", 1000, np.float32)
>>> ws.array("phase", 500, np.float32).base is a.base
True
"""
from __future__ import annotations

import numpy as np


class Workspace:
    """Named 1-D scratch arrays that grow as needed; a request returns a view of the first ``size`` items.

    Not thread-safe; contents are undefined between requests (callers overwrite what they use).
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def array(self, name: str, size: int, dtype: type) -> np.ndarray:
        """``[size]`` array of ``dtype`` named ``name`` (reallocated only when it must grow)."""
        buffer = self._arrays.get(name)
        if buffer is None or buffer.dtype != dtype or buffer.size < size:
            buffer = np.empty(max(size, 1), dtype)
            self._arrays[name] = buffer
        return buffer[:size]
