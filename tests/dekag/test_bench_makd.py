"""Smoke check of bench/makd.py (tiny sizes; no timing assertions)."""
import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "makd.py"


@pytest.mark.slow
def test_bench_makd_smoke(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_makd", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--smoke", "--out", str(tmp_path / "makd.json"), "--run-dir", str(tmp_path / "run")])
    assert (tmp_path / "makd.json").is_file()
    assert set(res["variants"]) == {"none", "metaword", "lora", "makd"}
    assert set(res["rank_sweep"]) == {"1", "2"} and set(res["precision_sweep"]) == {"16", "2"}
    assert "| makd |" in capsys.readouterr().out
