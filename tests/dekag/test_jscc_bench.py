"""Smoke check of the T-KA benchmarks (tiny training and grid); no timing assertions."""
import json

import torch


def test_tka_bench_smoke(tmp_path, load_bench):
    torch.set_num_threads(1)
    out = tmp_path / "tka.json"
    report = load_bench("tka").main(["--smoke", "--source", "standin", "--run-dir", str(tmp_path / "run"),
                                "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["rows"] == report["rows"] and out.with_suffix(".png").is_file()
    steps = saved["training_steps"]
    assert steps["mismatch"] == steps["base"] and steps["oracle_0dB_3000ns"] == steps["cala_softmax"] > steps["base"]
    methods = {r["method"] for r in saved["rows"]}
    assert methods == {"base", "mismatch", "oracle", "adjscc", "adjscc_frozen", "base_longer",
                       "cala_on_longer", "cala_softmax", "cala_sigmoid", "blind_base", "blind_cala"}
    from dekag.jscc import CalaConfig, CodecConfig, JsccCodec, apply_cala
    codec = JsccCodec(CodecConfig.from_dict(saved["config"]["codec"]))
    before = sum(p.numel() for p in codec.parameters())
    apply_cala(codec, CalaConfig.from_dict(saved["config"]["cala"]))
    assert saved["parameters"]["cala_added"] == sum(p.numel() for p in codec.parameters()) - before
    assert "STAND-IN" in saved["latent_source"]
    assert all(r["latent_psnr_db"] > 0 for r in saved["rows"])


def test_cala_impl_bench_smoke(tmp_path, load_bench):
    torch.set_num_threads(1)
    rows = load_bench("cala_impl").main(["--smoke", "--out", str(tmp_path / "c.json")])["rows"]
    assert all(r["max_abs_output_difference"] < 1e-4 for r in rows)
    assert all(r["trainable_params_plain"] == r["trainable_params_peft"] for r in rows)


def test_closed_loop_bench_smoke(tmp_path, load_bench):
    """The real-pipeline evaluation runs end to end: every method measured on the same frames, lost frames
    counted (their PSNR is never above the no-data chance level), gate sweeps and a figure written."""
    out = tmp_path / "cl.json"
    report = load_bench("closed_loop").main(["--smoke", "--out", str(out)])
    lat = report["latent"]
    assert {"cala_estimated", "cala_genie", "cala_fixed@10", "enc_only@10", "dec_only@10"} <= set(lat)
    assert len({v["frames"] for v in lat.values()}) == 1                   # same frames for every method
    assert report["chance_latent_psnr_db"] < lat["cala_estimated"]["per_snr_db"]["20"] \
        <= report["ceiling_latent_psnr_db"] + 0.5
    assert lat["cala_estimated"]["per_snr_db"]["0"] < lat["cala_estimated"]["per_snr_db"]["20"]
    assert set(report["gate_sweep"]) == {"0dB|300ns", "20dB|300ns"} and out.with_suffix(".png").is_file()
    rows = [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]
    assert len(rows) == sum(v["frames"] for v in lat.values())
    # a rerun with the same set-up resumes; rows of another set-up (here: other codecs) are not reused
    assert load_bench("closed_loop").main(["--smoke", "--out", str(out)])["latent"] == lat
    stale = [{**r, "setup": "another"} for r in rows[:3]]
    out.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in stale))
    load_bench("closed_loop").main(["--smoke", "--out", str(out)])
    rerun = [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]
    assert len(rerun) == len(rows) and {r["setup"] for r in rerun} == {rows[0]["setup"]} != {"another"}
