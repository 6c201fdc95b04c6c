"""Docstring examples are documentation only while they run: the default test run collects them from every
package, and an example is skipped only where it cannot run (a real-scale model folder)."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("radio", "dekag", "common", "calibration", "experiments")
MAY_SKIP = {"dekag/ldm.py"}  # needs a real diffusers folder


def test_the_default_run_collects_every_package_s_doctests():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in options["addopts"].split()
    assert set(PACKAGES) <= set(options["testpaths"])


def test_examples_are_skipped_only_where_they_cannot_run():
    skipping = {str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
                if "doctest: +SKIP" in p.read_text(encoding="utf-8")}
    assert skipping <= MAY_SKIP, skipping - MAY_SKIP
