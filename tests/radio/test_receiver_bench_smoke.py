"""Smoke check of bench/receiver_throughput.py (tiny sizes; no timing assertion)."""
import json


def test_receiver_throughput_bench_smoke(tmp_path, load_bench):
    bench = load_bench("receiver_throughput")
    out = tmp_path / "rt.json"
    rows = bench.main(["--smoke", "--out", str(out)])
    assert rows[0]["frames_decoded"] >= 1 and rows[0]["receiver_msps"] > 0
    data = json.loads(out.read_text())
    assert data["rows"] and "provenance" in data
