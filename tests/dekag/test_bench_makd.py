"""Smoke check of bench/makd.py (tiny sizes; no timing assertions)."""
import pytest


@pytest.mark.slow
def test_bench_makd_smoke(tmp_path, capsys, load_bench):
    mod = load_bench("makd")
    res = mod.main(["--smoke", "--out", str(tmp_path / "makd.json"), "--run-dir", str(tmp_path / "run")])
    assert (tmp_path / "makd.json").is_file()
    assert set(res["variants"]) == {"none", "metaword", "lora", "makd"}
    assert set(res["rank_sweep"]) == {"1", "2"} and set(res["precision_sweep"]) == {"16", "2"}
    assert "| makd |" in capsys.readouterr().out
