"""The `dekag-testbed` command as users call it, with the shipped miniature models."""
from __future__ import annotations

import pytest

from experiments.cli import main
from experiments.config import TestbedConfig, default_config
from experiments.run_folder import read_jsonl
from radio.feedback import free_tcp_endpoint


def test_config_prints_the_embedded_default(capsys):
    assert main(["config"]) == 0
    assert TestbedConfig.from_toml_str(capsys.readouterr().out) == default_config()


def test_bad_config_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "lab.toml"
    bad.write_text("[link]\nbackend = 'usrp'\n")
    assert main(["run", "--config", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "link.backend must be one of" in capsys.readouterr().err


def test_in_process_run_with_the_shipped_models(tmp_path):
    # the edge waits for the report on the previous frame; a generous wait keeps a loaded CI machine from turning
    # "encoded on feedback" into a fallback (the wait ends as soon as the report arrives)
    default_config().replace(edge={"feedback_wait_s": 60.0}).save(tmp_path / "cfg.toml")
    out = tmp_path / "run"
    assert main(["run", "--config", str(tmp_path / "cfg.toml"), "--backend", "emulator", "--frames", "3",
                 "--out", str(out)]) == 0
    rows = read_jsonl(out / "frames.jsonl")
    decoded = [r for r in rows if r["received"]]
    assert len(rows) == 3 and len(decoded) >= 2
    for r in decoded:
        assert r["psnr_latent_db"] > 10 and len(r["gates"]) == 8
        assert (out / "images" / f"frame_{r['frame_id']:06d}_rx.png").exists()
    # the decoded images resemble the cloud's: real digits of different classes score about -0.06 centred
    assert sum(r["consistency_centred"] for r in decoded) / len(decoded) > 0.3
    assert rows[1]["condition_source"] == "feedback" and rows[1]["csi_age_frames"] == 1
    assert (out / "figures" / "image_grid.png").exists() and "decoded at the user" in (out / "summary.md").read_text()


@pytest.mark.slow
def test_three_process_run_with_the_shipped_models(tmp_path):
    cfg = default_config().replace(link={"tx_endpoint": free_tcp_endpoint(), "rx_endpoint": free_tcp_endpoint()},
                                   feedback={"endpoint": free_tcp_endpoint()}, edge={"num_frames": 4})
    cfg.save(tmp_path / "cfg.toml")
    out = tmp_path / "run"
    assert main(["run", "--config", str(tmp_path / "cfg.toml"), "--out", str(out)]) == 0
    rows = read_jsonl(out / "frames.jsonl")
    assert sum(r["received"] for r in rows) >= 3
    assert all(r["csi_age_frames"] == 1 for r in rows[1:] if r["condition_source"] == "feedback")


@pytest.mark.slow
def test_testbed_loop_bench_smoke(tmp_path):
    import json
    import runpy
    import sys

    out = tmp_path / "loop.json"
    sys.argv = ["testbed_loop.py", "--smoke", "--out", str(out)]
    with pytest.raises(SystemExit) as done:
        runpy.run_path("bench/testbed_loop.py", run_name="__main__")
    assert done.value.code == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["backend"] for r in rows] == ["emulator", "zmq"] and all(r["decoded"] >= 2 for r in rows)
