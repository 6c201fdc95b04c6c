"""Shared pytest configuration: the ``hardware`` tier runs only with a Pluto URI; tiny real-architecture model
folders (session); the benchmark scripts of ``bench/`` as modules."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


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


@pytest.fixture(scope="session")
def load_bench():
    """``load_bench(name)`` → the module of ``bench/<name>.py`` (the scripts are not a package)."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


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
