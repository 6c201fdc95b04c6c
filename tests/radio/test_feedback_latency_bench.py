"""Smoke check of bench/feedback_latency.py (no timing assertion)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_feedback_latency_bench_smoke(tmp_path):
    out = tmp_path / "fl.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "feedback_latency.py"), "--smoke", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert [r["variant"] for r in result["rows"]] == ["conflate", "queue", "curve"]
    for row in result["rows"]:
        assert 0 < row["received"] <= row["sent"] == 50
        assert 0 < row["p50_us"] <= row["p99_us"] <= row["max_us"]
        assert row["counters"]["malformed"] == 0
    assert "git_revision" in result["provenance"]
    assert "| conflate |" in proc.stdout
