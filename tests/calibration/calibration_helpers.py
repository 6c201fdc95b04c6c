"""Shared by the calibration tests."""
from __future__ import annotations

import numpy as np

FS = 3.84e6


def tone_offset_air(cfo_hz: float, burst_length: int):
    """A fake-Pluto air channel adding a carrier offset rounded to whole cycles per burst (the fake replays the
    burst it was handed through the channel once, cyclically)."""
    cfo = round(cfo_hz * burst_length / FS) * FS / burst_length

    def air(x: np.ndarray) -> np.ndarray:
        return x * np.exp(2j * np.pi * cfo / FS * np.arange(x.size))
    return air, cfo
