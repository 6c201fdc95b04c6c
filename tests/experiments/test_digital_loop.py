"""The digital baseline as the live loop's codec, chosen in the TOML (edge.codec = "digital")."""
from __future__ import annotations

import pytest

from common.tomlconfig import ConfigError
from experiments.cli import main
from experiments.config import default_config
from experiments.run_folder import read_jsonl
from radio.feedback import free_tcp_endpoint


def test_digital_codec_needs_the_header_condition_at_the_user():
    with pytest.raises(ConfigError, match="decoder_condition = 'header'"):
        default_config().replace(edge={"codec": "digital"})


def test_in_process_run_with_the_digital_codec_reads_its_mcs_from_the_header(tmp_path):
    cfg = default_config().replace(
        edge={"codec": "digital", "num_frames": 3}, user={"decoder_condition": "header"},
        link={"tx_endpoint": free_tcp_endpoint(), "rx_endpoint": free_tcp_endpoint()},
        feedback={"endpoint": free_tcp_endpoint()},
        channel={"emulator": {"profile": "AWGN"}, "snr_db_schedule": [20.0], "delay_spread_s_schedule": [100e-9]})
    cfg.save(tmp_path / "cfg.toml")
    out = tmp_path / "run"
    assert main(["run", "--backend", "emulator", "--config", str(tmp_path / "cfg.toml"), "--out", str(out)]) == 0
    edge = read_jsonl(out / "edge.results.jsonl")
    user = [r for r in read_jsonl(out / "user.results.jsonl") if r.get("status") == "ok"]
    assert len(user) == 3 and all(r["decoder_condition"] == "header" for r in user)
    assert all(len(r["gates"]) == 1 for r in edge)                    # the MCS index, not CALA's gates
    assert max(r["gates"][0] for r in edge) >= 5                      # 20 dB picks a 16-QAM or higher row
    assert min(r["psnr_latent_db"] for r in user) > 27                # error-free codewords at 20 dB, no fading
