"""Shared pytest configuration: the ``hardware`` tier runs only with a Pluto URI; the backends the calibration
tests run their routines on (here rather than in ``tests/calibration/conftest.py``: with ``--doctest-modules``
two ``conftest`` modules in package-less folders collide)."""
from __future__ import annotations

import os

import pytest

import radio
from radio.backends import EmulatedBackend, FakePluto, PlutoBackend, PlutoConfig


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--pluto-uri", default=os.environ.get("PLUTO_URI"),
                     help="libiio URI of a real ADALM-Pluto (e.g. ip:192.168.2.1); enables 'hardware' tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--pluto-uri"):
        return
    skip = pytest.mark.skip(reason="hardware test: give --pluto-uri or PLUTO_URI")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def pluto_uri(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--pluto-uri")


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
        backend = PlutoBackend(PlutoConfig(sample_rate_hz=radio.FrameConfig().sample_rate_hz, **cfg),
                               device=FakePluto(channel=air, seed=2))
        opened.append(backend)
        return backend
    yield make
    for backend in opened:
        backend.close()
