"""Shared pytest configuration: the ``hardware`` tier runs only with a Pluto URI."""
from __future__ import annotations

import os

import pytest


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
