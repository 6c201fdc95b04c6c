"""Every configuration value is checked when a config is built or loaded, with the key named; configs are
read-only once built and change only through a validating ``replace``."""
from __future__ import annotations

import pytest

from common import ConfigError
from experiments.cli import main
from experiments.config import TestbedConfig, default_config
from radio.backends.zmq_rf import ZmqRfConfig
from radio.config import FrameConfig
from radio.emulator import EmulatorConfig
from radio.feedback import FeedbackConfig

BAD_TOML = {
    "frame.sample_rate_hz = nan": ("[frame]\nsample_rate_hz = nan\n", "frame.sample_rate_hz must be finite"),
    "frame.sample_rate_hz = inf": ("[frame]\nsample_rate_hz = inf\n", "frame.sample_rate_hz must be finite"),
    "link.timeout_s = inf": ("[link]\ntimeout_s = inf\n", "link.timeout_s must be finite"),
    "link.timeout_s huge": ("[link]\ntimeout_s = 1e12\n", "LinkSection.timeout_s must be in"),
    "link.startup_timeout_s = 0": ("[link]\nstartup_timeout_s = 0\n", "LinkSection.startup_timeout_s must be in"),
    "feedback.timeout_s = -inf": ("[feedback]\ntimeout_s = -inf\n", "feedback.timeout_s must be finite"),
    "feedback.max_age_s huge": ("[feedback]\nmax_age_s = 1e300\n", "FeedbackConfig.max_age_s must be in"),
    "fallback SNR nan": ("[feedback]\nfallback_snr_db = nan\n", "feedback.fallback_snr_db must be finite"),
    "fallback SNR out of range": ("[feedback]\nfallback_snr_db = 1e9\n", "FeedbackConfig.fallback_snr_db"),
    "fallback delay spread negative": ("[feedback]\nfallback_delay_spread_s = -1e-7\n",
                                       "FeedbackConfig.fallback_delay_spread_s"),
    "1 s delay-spread schedule": ("[channel]\ndelay_spread_s_schedule = [1.0]\n", "delay_spread_s_schedule"),
    "schedule nan": ("[channel]\nsnr_db_schedule = [3.0, nan]\n", "channel.snr_db_schedule[1] must be finite"),
    "emulator delay spread 1 s": ("[channel.emulator]\ndelay_spread_s = 1.0\n", "EmulatorConfig.delay_spread_s"),
    "edge.feedback_wait_s = inf": ("[edge]\nfeedback_wait_s = inf\n", "edge.feedback_wait_s must be finite"),
    "edge.num_frames = 0": ("[edge]\nnum_frames = 0\n", "EdgeSection.num_frames"),
    "impairment nan": ("[channel.emulator.impairments]\ncfo_ppm = nan\n", "impairments.cfo_ppm must be finite"),
}


@pytest.mark.parametrize("name", BAD_TOML)
def test_bad_value_is_refused_at_load_with_the_key_named(tmp_path, name):
    text, message = BAD_TOML[name]
    path = tmp_path / "lab.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        TestbedConfig.load(path)


def test_direct_construction_is_checked_too():
    for build in (lambda: FrameConfig(sample_rate_hz=float("nan")), lambda: ZmqRfConfig(rx_endpoint="tcp://a:1",
                  timeout_s=float("inf")), lambda: EmulatorConfig(max_speed_mps=-1.0),
                  lambda: FeedbackConfig(fallback_snr_db=float("inf"))):
        with pytest.raises(ConfigError):
            build()


def test_binary_config_file_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "lab.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(ConfigError, match="not a TOML text file"):
        TestbedConfig.load(path)
    assert main(["config", "--config", str(path)]) == 2
    assert "not a TOML text file" in capsys.readouterr().err


def test_configs_are_read_only_and_replace_validates():
    cfg = default_config()
    with pytest.raises(ConfigError, match="read-only"):
        cfg.edge.num_frames = 0
    with pytest.raises(ConfigError, match="read-only"):
        cfg.link = None
    changed = cfg.replace(edge={"num_frames": 3}, link={"timeout_s": 2.0})
    assert (changed.edge.num_frames, changed.link.timeout_s) == (3, 2.0)
    assert cfg.edge.num_frames == 12  # the original is untouched
    with pytest.raises(ConfigError, match="num_frames"):
        cfg.replace(edge={"num_frames": -1})
    with pytest.raises(ConfigError, match="unknown key"):
        cfg.replace(edge={"num_frame": 3})


def test_command_line_overrides_are_validated(capsys):
    assert main(["edge", "--frames", "-5", "--out", "/nonexistent/never-written"]) == 2
    assert "num_frames" in capsys.readouterr().err


def test_documented_config_command_parses():
    import experiments.config
    assert "dekag-testbed config`" in experiments.config.__doc__
    assert "--dump" not in experiments.config.__doc__
    from experiments.cli import build_parser
    build_parser().parse_args(["config"])
