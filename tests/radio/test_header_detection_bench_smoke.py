"""Smoke checks of bench/header_code.py and bench/detection.py (tiny sizes; no timing assertion)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_header_code_bench_smoke(tmp_path: Path) -> None:
    report = _load("header_code").main(["--smoke", "--out-dir", str(tmp_path)])
    rows = report["bler"]["rows"]
    awgn = {r["es_n0_db"]: r for r in rows if r["channel"] == "awgn"}
    assert awgn[4.0]["polar_bler"] == 0 and awgn[4.0]["repetition_bler"] == 0
    assert awgn[-10.0]["repetition_bler"] == 1.0  # far below both codes' thresholds
    assert report["false_accept"]["crc16_also_passed_false_accepts"] == 0
    assert json.loads((tmp_path / "header_code_timing.json").read_text())["smoke"]


def test_detection_bench_smoke(tmp_path: Path) -> None:
    report = _load("detection").main(["--smoke", "--out-dir", str(tmp_path)])
    loss = report["loss"]
    assert sum(r["sent"] for r in loss["rows"]) == 4
    assert all(r["not_detected"] + r["header_failed"] <= r["sent"] for r in loss["rows"])
    fa = report["false_alarm"]
    assert fa["noise_samples"] >= 0.5 * 3.84e6 and fa["false_detections"] == 0
    assert json.loads((tmp_path / "detection_false_alarm_narrow.json").read_text())["smoke"]
