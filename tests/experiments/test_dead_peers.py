"""Dead peers: a node stops after link.max_peer_timeouts timeouts in a row; `run` stops the others when one
dies, says which and why, and exits with the shell's status (128 + n for signal n), never 0 after a loss."""
from __future__ import annotations

import sys

from knowledge_stub import StubKnowledge

from experiments import cli, exit_codes, nodes
from experiments.config import EdgeSection, LinkSection, TestbedConfig
from experiments.run_folder import read_jsonl
from radio.feedback import FeedbackConfig, free_tcp_endpoint


def _config(num_frames=12) -> TestbedConfig:
    return TestbedConfig(edge=EdgeSection(num_frames=num_frames, condition="fixed"),
                         link=LinkSection(timeout_s=0.3, startup_timeout_s=0.6, max_peer_timeouts=2,
                                          tx_endpoint=free_tcp_endpoint(), rx_endpoint=free_tcp_endpoint()),
                         feedback=FeedbackConfig(endpoint=free_tcp_endpoint()))


def test_edge_whose_peers_never_come_up_stops_after_the_configured_timeouts(tmp_path):
    cfg = _config()
    assert nodes.run_node("edge", cfg, tmp_path, knowledge=StubKnowledge()) == exit_codes.PEER_LOST
    rows = read_jsonl(tmp_path / "edge.results.jsonl")
    assert [r["transmitted"] for r in rows] == [False, False]  # not 12 frames × the start-up timeout
    stop = [e for e in read_jsonl(tmp_path / "edge.events.jsonl") if e["event"] == "stop"][-1]
    assert (stop["lost"], stop["not_attempted"]) == (2, 10)


def test_user_whose_peer_never_comes_up_is_peer_lost(tmp_path):
    assert nodes.run_node("user", _config(), tmp_path, knowledge=StubKnowledge()) == exit_codes.PEER_LOST
    events = [e["event"] for e in read_jsonl(tmp_path / "user.events.jsonl")]
    assert events.count("peer_timeout") == 2 and "stop" in events


def _scripted(behaviour: dict[str, str]):
    """Node commands that run a line of Python instead of a node (the parent's logic alone)."""
    def command(role, out):
        return [sys.executable, "-c", behaviour[role]]
    return command


SLEEP = "import time; time.sleep(60)"
SELF_KILL = "import os, signal, time; time.sleep(0.3); os.kill(os.getpid(), signal.SIGKILL)"


def _run(tmp_path, behaviour):
    cfg = _config()
    cfg.save(tmp_path / "config.toml")
    return cli._run_processes(cfg, tmp_path, with_channel=True, command=_scripted(behaviour))


def test_killed_node_stops_the_others_and_is_named(tmp_path, capsys):
    status = _run(tmp_path, {"channel": SLEEP, "user": SELF_KILL, "edge": SLEEP})
    assert status == 128 + 9
    out = capsys.readouterr().out
    assert "the user node exited with status 137 (killed by signal 9 (SIGKILL))" in out
    assert "stopping the others" in out


def test_channel_that_stops_early_fails_the_run(tmp_path, capsys):
    status = _run(tmp_path, {"channel": "import sys; sys.exit(0)", "user": SLEEP, "edge": SLEEP})
    assert status == exit_codes.NODE_STOPPED
    assert "the channel node exited with status 0" in capsys.readouterr().out


def test_node_that_lost_its_peer_gives_the_run_its_status(tmp_path, capsys):
    status = _run(tmp_path, {"channel": SLEEP, "user": SLEEP, "edge": "import sys; sys.exit(3)"})
    assert status == exit_codes.PEER_LOST
    assert "the edge node exited with status 3 (peer lost" in capsys.readouterr().out


def test_clean_run_is_zero(tmp_path):
    assert _run(tmp_path, {"channel": SLEEP, "user": "pass", "edge": "pass"}) == exit_codes.OK


def test_sigterm_is_128_plus_15():
    import signal
    assert exit_codes.status_of(exit_codes.Stopped(signal.SIGTERM)) == 143
    assert exit_codes.status_of(KeyboardInterrupt()) == 130
