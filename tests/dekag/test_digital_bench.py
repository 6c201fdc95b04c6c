"""Smoke check of the digital-baseline bench (stand-in latents, 3 SNRs, 2 channels); no timing assertions."""
import json

import torch


def test_digital_baseline_bench_smoke(tmp_path, load_bench):
    torch.set_num_threads(1)
    mod = load_bench("digital_baseline")
    out = tmp_path / "digital.json"
    report = mod.main(["--smoke", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["rows"] == report["rows"] and out.with_suffix(".png").is_file()
    methods = {r["method"] for r in saved["rows"]}
    assert methods == {"digital", "digital_ceiling", "jscc", "jscc_ceiling", "chance"}
    digital = sorted((r for r in saved["rows"] if r["method"] == "digital" and r["channel"] == "awgn"),
                     key=lambda r: r["snr_db"])
    assert [r["mcs_index"] for r in digital] == sorted(r["mcs_index"] for r in digital)
    assert digital[0]["mcs_index"] < digital[-1]["mcs_index"]
    assert all(0.0 <= r["codeword_failure_rate"] <= 1.0 for r in digital)
    # at 20 dB over AWGN nothing fails, so the digital latent is its quantisation-only ceiling
    ceiling = next(r for r in saved["rows"] if r["method"] == "digital_ceiling" and r["channel"] == "awgn"
                   and r["snr_db"] == 20.0)
    assert digital[-1]["codeword_failure_rate"] == 0.0
    assert abs(digital[-1]["latent_psnr_db"] - ceiling["latent_psnr_db"]) < 1e-6
    chance = next(r for r in saved["rows"] if r["method"] == "chance")["latent_psnr_db"]
    assert ceiling["latent_psnr_db"] > chance
    assert "STAND-IN" in saved["latent_source"]
    assert set(saved["timing_cpu_1thread"]) >= {"jscc", "digital QPSK 1/5"}
