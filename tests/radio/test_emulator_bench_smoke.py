"""Smoke check of bench/emulator_throughput.py (tiny sizes; no timing assertion)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_emulator_throughput_bench_smoke(tmp_path: Path, load_bench) -> None:
    module = load_bench("emulator_throughput")
    out = tmp_path / "et.json"
    rows = module.main(["--smoke", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["smoke"] and len(rows) == 6 and "git_revision" in report
    assert {r["sample_rate_hz"] for r in rows} == {3.84e6, 30.72e6}
    assert all(r["cpu_msps"] > 0 and r["wall_msps"] > 0 and r["realtime_factor"] > 0 for r in rows)
    assert rows[0]["case"] == "static" and rows[0]["sionna_timechannel_b1_cpu_msps"] > 0


def test_estimator_grid_bench_smoke(tmp_path: Path, load_bench) -> None:
    module = load_bench("estimator_grid")
    out = tmp_path / "eg.json"
    rows = module.main(["--smoke", "--out", str(out)])
    report = json.loads(out.read_text())
    assert len(rows) == 2 and len(report["rows"]) == 2 and out.with_suffix(".jsonl").read_text().count("\n") == 2
    for r in rows:
        assert r["detection_rate"] >= 0.75 and r["frames"] == 4      # 10 and 20 dB cells: at most one frame lost
        assert r["nmse_db"] is not None
        # every estimator on every detected frame, against the realised and the nominal spread; the
        # receiver's own estimate is the "pdp" one (the bench feeds the frame's final noise estimate, the
        # receiver its preamble-only one, hence not exactly equal)
        assert set(r["ds_estimators"]) == {"pdp", "coherence"}
        assert r["ds_estimators"]["pdp"]["mean_s"] == pytest.approx(r["ds_est_mean_s"], rel=0.05)
        assert all(v["rel_rmse"] >= 0 and v["rel_rmse_nominal"] >= 0 for v in r["ds_estimators"].values())
