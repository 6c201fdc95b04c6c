"""Smoke check of the T-KA benchmarks (tiny training and grid); no timing assertions."""
import importlib.util
import json
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tka_bench_smoke(tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "tka.json"
    report = _load("tka").main(["--smoke", "--source", "standin", "--run-dir", str(tmp_path / "run"),
                                "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["rows"] == report["rows"] and out.with_suffix(".png").is_file()
    methods = {r["method"] for r in saved["rows"]}
    assert methods == {"base", "mismatch", "oracle", "adjscc", "adjscc_frozen", "base_longer",
                       "cala_on_longer", "cala_softmax", "cala_sigmoid"}
    assert saved["parameters"]["cala_added"] > 0
    assert "STAND-IN" in saved["latent_source"]
    assert all(r["latent_psnr_db"] > 0 for r in saved["rows"])


def test_cala_impl_bench_smoke(tmp_path):
    torch.set_num_threads(1)
    rows = _load("cala_impl").main(["--smoke", "--out", str(tmp_path / "c.json")])["rows"]
    assert all(r["max_abs_output_difference"] < 1e-4 for r in rows)
    assert all(r["trainable_params_plain"] == r["trainable_params_peft"] for r in rows)
