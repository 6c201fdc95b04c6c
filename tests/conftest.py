"""Shared pytest configuration: the ``hardware`` tier runs only with a Pluto URI; the backends the calibration
tests run their routines on (here rather than in ``tests/calibration/conftest.py``: with ``--doctest-modules``
two ``conftest`` modules in package-less folders collide); tiny real-architecture model folders (session)."""
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


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Tiny random-weight folders of the real architectures (:mod:`dekag.tiny_folders`): ``sd21_edge``
    (UNet), ``pixart_cloud`` and ``pixart_edge`` (transformer), ``vit_features``. Built once per session."""
    import torch

    from dekag.ldm import quiet_library_output
    from dekag.tiny_folders import build_tiny_folders

    torch.set_num_threads(1)
    quiet_library_output()
    return build_tiny_folders(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="session")
def tiny_package(tiny_folders: dict, tmp_path_factory: pytest.TempPathFactory):
    """A downlink package for the tiny SD-2.1-like edge: a MAKD run of a few steps against the PixArt-like
    cloud, with the shipped JSCC codec (both make 4×8×8 latents). Returns its folder."""
    from dekag.downlink import SHIPPED, build_downlink
    from dekag.makd.align import run_makd
    from dekag.tiny_folders import tiny_makd_config

    root = tmp_path_factory.mktemp("tiny_package")
    run_makd(tiny_makd_config(tiny_folders, variants=["makd"]), root / "makd")
    return build_downlink(root / "package", root / "makd", None, jscc_from=SHIPPED).folder
