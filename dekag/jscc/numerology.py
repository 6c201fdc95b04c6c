"""The radio's numerology presets, copied by value, for building the training channel of a preset.

``dekag`` never imports ``radio`` (docs/DESIGN.md): the table below mirrors ``radio/numerology_presets.json``
and ``tests/test_numerology_mirror.py`` checks that the two agree for every preset.

>>> channel_config_for_preset("wide-30.72").fft_size
2048
"""
from __future__ import annotations

from dekag.jscc.config import ChannelConfig

PRESETS: dict[str, dict[str, float | int]] = {
    "narrow": {"sample_rate_hz": 3.84e6, "fft_size": 128, "cp_length": 16, "num_used_subcarriers": 96},
    "wide-7.68": {"sample_rate_hz": 7.68e6, "fft_size": 512, "cp_length": 224, "num_used_subcarriers": 300},
    "wide-15.36": {"sample_rate_hz": 15.36e6, "fft_size": 1024, "cp_length": 448, "num_used_subcarriers": 600},
    "wide-30.72": {"sample_rate_hz": 30.72e6, "fft_size": 2048, "cp_length": 896, "num_used_subcarriers": 1200},
}
"""preset name → the ChannelConfig numerology fields (sample_rate_hz, fft_size, cp_length, num_used_subcarriers)."""


def channel_config_for_preset(name: str, **overrides) -> ChannelConfig:
    """A :class:`ChannelConfig` with the numerology of radio preset ``name``; other fields from ``overrides``.

    Raises:
        KeyError: unknown preset.
    """
    if name not in PRESETS:
        raise KeyError(f"unknown numerology preset {name!r}; known: {sorted(PRESETS)}")
    return ChannelConfig(**{**overrides, **PRESETS[name]})
