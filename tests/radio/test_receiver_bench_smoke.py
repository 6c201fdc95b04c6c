"""Smoke check of bench/receiver_throughput.py (tiny sizes; no timing assertion)."""
import importlib.util
import json
from pathlib import Path


def test_receiver_throughput_bench_smoke(tmp_path):
    path = Path(__file__).resolve().parents[2] / "bench" / "receiver_throughput.py"
    spec = importlib.util.spec_from_file_location("receiver_throughput_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "rt.json"
    rows = bench.main(["--smoke", "--out", str(out)])
    assert rows[0]["frames_decoded"] >= 1 and rows[0]["receiver_msps"] > 0
    data = json.loads(out.read_text())
    assert data["rows"] and "provenance" in data
