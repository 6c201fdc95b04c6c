"""Smoke check of bench/sweep_scaling.py (no timing assertion; slow: workers import torch and Sionna)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sweep_scaling_bench_smoke(tmp_path):
    out = tmp_path / "ss.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "sweep_scaling.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["modes"]) == {"processes", "dask"} and result["tasks"] == 4
    for mode in result["modes"].values():
        assert mode["cold_s"] > 0 and mode["warm_s"] > 0 and mode["overhead_ms_per_task"] > 0
    assert "git_revision" in result["provenance"] and "| dask (2 workers) |" in proc.stdout
