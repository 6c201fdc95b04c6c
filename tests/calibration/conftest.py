"""Backends the calibration tests run their routines on: the emulator with injected impairments, and the
fake Pluto whose air is any callable."""
from __future__ import annotations

import pytest
from calibration_helpers import FS

import radio
from radio.backends import EmulatedBackend, FakePluto, PlutoBackend, PlutoConfig


@pytest.fixture
def emulated():
    """``emulated(snr_db, profile="AWGN", **impairments)`` → an EmulatedBackend at 2.4 GHz, 3.84 MS/s."""
    def make(snr_db: float, profile: str = "AWGN", delay_spread_s: float = 100e-9, seed: int = 3,
             **impairments) -> EmulatedBackend:
        return EmulatedBackend.from_frame_config(radio.FrameConfig(), profile=profile, snr_db=snr_db,
                                                 delay_spread_s=delay_spread_s, seed=seed,
                                                 impairments=radio.Impairments(**impairments))
    return make


@pytest.fixture
def fake_pluto():
    """``fake_pluto(air=None, **PlutoConfig fields)`` → a PlutoBackend over a FakePluto (closed after the test)."""
    opened = []

    def make(air=None, **cfg) -> PlutoBackend:
        backend = PlutoBackend(PlutoConfig(sample_rate_hz=FS, **cfg), device=FakePluto(channel=air, seed=2))
        opened.append(backend)
        return backend
    yield make
    for backend in opened:
        backend.close()
