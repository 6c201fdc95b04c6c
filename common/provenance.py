"""Provenance stamped into every result row: package versions, git revision, host, time."""
from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path

_PACKAGES = ("numpy", "scipy", "torch", "sionna-no-rt", "diffusers", "peft", "transformers", "pyzmq",
             "pyadi-iio", "dekag-testbed")


@functools.cache
def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


@functools.cache
def _git_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if rev.returncode != 0:
        return "unknown"
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def provenance() -> dict[str, object]:
    """``{"versions": {...}, "git_revision": str, "host": str}`` for a result row or JSON report."""
    return {"versions": dict(_versions()), "git_revision": _git_revision(), "host": platform.node()}
