"""Numerology presets: named OFDM numerologies, keyed by the 4-bit id the frame header carries.

The table is data (``numerology_presets.json``, like Sionna's TDL tables): each entry gives
``sample_rate_hz``, ``fft_size``, ``cp_length``, ``num_used_subcarriers``, ``pilot_spacing`` and
``preamble_cp_length``. ``narrow`` (id 0) fits a Pluto streaming continuously over USB 2.0; the
``wide-*`` presets (15 kHz spacing, 29.2 µs CP for 3000 ns RMS delay spread on TDL-A) need burst
capture over USB or a continuous Ethernet link (``docs/frame_format.md``).

>>> PRESETS["wide-30.72"]["fft_size"], PRESETS["narrow"]["numerology_id"]
(2048, 0)
"""
from __future__ import annotations

import json
from pathlib import Path

NUMEROLOGY_FIELDS = ("sample_rate_hz", "fft_size", "cp_length", "num_used_subcarriers", "pilot_spacing",
                     "preamble_cp_length")
CUSTOM = "custom"
"""Preset name of a numerology given field by field (its id must not be one of the table's)."""


def _load() -> dict[str, dict]:
    table = json.loads(Path(__file__).with_name("numerology_presets.json").read_text())["presets"]
    return {entry["name"]: {"numerology_id": int(key), **{f: entry[f] for f in NUMEROLOGY_FIELDS}}
            for key, entry in table.items()}


PRESETS: dict[str, dict] = _load()
"""name → {"numerology_id": int, and every field of NUMEROLOGY_FIELDS}."""
