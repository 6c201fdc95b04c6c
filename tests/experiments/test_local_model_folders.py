"""The nodes on local model folders named in the TOML alone: tiny random-weight SD-2.1-like UNet edge and
PixArt-Σ-like transformer cloud (``tiny_folders``), their own knowledge package (``tiny_package``)."""
from __future__ import annotations

import pytest

from common import ConfigError
from experiments.cli import main
from experiments.config import TestbedConfig, default_config
from experiments.run_folder import read_jsonl
from radio.feedback import free_tcp_endpoint


def _config(folders, package, **changes) -> TestbedConfig:
    return default_config().replace(
        models={"edge_dir": str(folders["sd21_edge"]), "cloud_dir": str(folders["pixart_cloud"]),
                "feature_model_dir": str(folders["vit_features"])},
        edge={"knowledge_package": str(package), "num_frames": 3}, **changes)


def test_models_section_is_validated():
    with pytest.raises(ConfigError, match="feature_model_dir"):
        default_config().replace(models={"edge_dir": "e", "cloud_dir": "c"})
    with pytest.raises(ConfigError, match="knowledge_package"):
        default_config().replace(models={"edge_dir": "e", "cloud_dir": "c", "feature_model_dir": "f"})
    with pytest.raises(ConfigError, match="device"):
        default_config().replace(models={"device": "tpu"})


def test_in_process_run_on_local_folders(tiny_folders, tiny_package, tmp_path):
    _config(tiny_folders, tiny_package, feedback={"endpoint": free_tcp_endpoint()}).save(tmp_path / "lab.toml")
    out = tmp_path / "run"
    assert main(["run", "--config", str(tmp_path / "lab.toml"), "--backend", "emulator", "--out", str(out)]) == 0
    rows = read_jsonl(out / "frames.jsonl")
    decoded = [r for r in rows if r["received"]]
    assert len(rows) == 3 and len(decoded) >= 2
    for r in decoded:
        assert r["psnr_latent_db"] > 5 and "consistency_cos" in r and "label_agree" not in r
        assert (out / "images" / f"frame_{r['frame_id']:06d}_rx.png").exists()


def test_a_package_for_another_edge_is_refused(tiny_folders, tmp_path):
    from dekag.knowledge_package import PackageMismatchError
    from experiments.knowledge import UserRuntime

    with pytest.raises(PackageMismatchError):  # the shipped package was made for the miniature edge
        UserRuntime.load(_config(tiny_folders, "dekag/miniature/checkpoints/downlink"))


@pytest.mark.slow
def test_three_process_run_on_local_folders(tiny_folders, tiny_package, tmp_path):
    cfg = _config(tiny_folders, tiny_package,
                  link={"tx_endpoint": free_tcp_endpoint(), "rx_endpoint": free_tcp_endpoint()},
                  feedback={"endpoint": free_tcp_endpoint()})
    cfg.save(tmp_path / "cfg.toml")
    out = tmp_path / "run"
    assert main(["run", "--config", str(tmp_path / "cfg.toml"), "--out", str(out)]) == 0
    assert sum(r["received"] for r in read_jsonl(out / "frames.jsonl")) >= 2
