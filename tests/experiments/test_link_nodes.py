"""Edge, channel and user nodes over real ZeroMQ sockets and the Sionna emulator, with a light
stand-in for the dekag models (tests/experiments/knowledge_stub.py)."""
from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
from knowledge_stub import StubKnowledge

import radio
from experiments import nodes
from experiments.config import ChannelSection, EdgeSection, LinkSection, TestbedConfig
from experiments.report import build_report, join_frames
from experiments.run_folder import read_jsonl
from radio.emulator import EmulatorConfig
from radio.feedback import FeedbackConfig, free_tcp_endpoint


def _config(num_frames=4, timeout_s=3.0, snr_schedule=(25.0, 15.0), backend="zmq", max_age_s=1.5) -> TestbedConfig:
    return TestbedConfig(
        channel=ChannelSection(emulator=EmulatorConfig(profile="TDL-C", seed=3), snr_db_schedule=list(snr_schedule)),
        edge=EdgeSection(num_frames=num_frames, feedback_wait_s=1.0),
        link=LinkSection(backend=backend, timeout_s=timeout_s, tx_endpoint=free_tcp_endpoint(),
                         rx_endpoint=free_tcp_endpoint()),
        feedback=FeedbackConfig(endpoint=free_tcp_endpoint(), max_age_s=max_age_s))


def _node(role, cfg, out, generate_delay_s):
    rc = nodes.run_node(role, cfg, out, knowledge=None if role == "channel" else StubKnowledge(generate_delay_s))
    raise SystemExit(rc)


def _start(role, cfg, out, generate_delay_s=0.0):
    p = mp.get_context("fork").Process(target=_node, args=(role, cfg, out, generate_delay_s), daemon=True)
    p.start()
    return p


def test_in_process_run_decodes_every_frame_with_fresh_feedback(tmp_path):
    # a generous feedback wait (it ends when the report arrives): a loaded machine must not turn feedback into fallback
    cfg = _config(num_frames=5, backend="emulator").replace(edge={"feedback_wait_s": 30.0})
    assert nodes.run_in_process(cfg, tmp_path, StubKnowledge(), StubKnowledge()) == 0
    rows = join_frames(tmp_path)
    assert [r["frame_id"] for r in rows] == list(range(5))
    assert all(r["received"] for r in rows)
    # the encoder used the report on the previous frame from frame 1 on
    assert [r["csi_age_frames"] for r in rows[1:]] == [1, 1, 1, 1]
    assert all(r["condition_source"] == "feedback" for r in rows[1:])
    # estimates joined with the emulator's truth; SNR schedule 25/15 dB visible in the estimates
    assert all(abs(r["snr_db_est"] - r["snr_db_true"]) < 2.0 for r in rows)
    assert rows[0]["psnr_latent_db"] > rows[1]["psnr_latent_db"] > 8
    summary = build_report(tmp_path).read_text()
    assert "decoded at the user: 5" in summary
    assert (tmp_path / "figures" / "psnr_over_time.png").exists()


def test_three_processes_over_zmq(tmp_path):
    cfg = _config(num_frames=4)
    procs = {r: _start(r, cfg, tmp_path) for r in ("channel", "user", "edge")}
    procs["edge"].join(60)
    procs["user"].join(30)
    procs["channel"].terminate()
    assert procs["edge"].exitcode == 0 and procs["user"].exitcode == 0
    rows = join_frames(tmp_path)
    assert [r["frame_id"] for r in rows if r["received"]] == [0, 1, 2, 3]
    assert all(r["csi_age_frames"] == 1 for r in rows[1:])
    truth = read_jsonl(tmp_path / "channel.results.jsonl")
    assert [t["nominal_snr_db"] for t in truth] == [25.0, 15.0, 25.0, 15.0]


def test_user_killed_mid_run_edge_falls_back_and_records_it(tmp_path):
    cfg = _config(num_frames=8, timeout_s=1.5, max_age_s=0.5)
    # a 0.3 s "diffusion model" at the edge, so several frames are still to come when the user dies
    procs = {r: _start(r, cfg, tmp_path, generate_delay_s=0.3) for r in ("channel", "user", "edge")}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len([r for r in read_jsonl(tmp_path / "user.results.jsonl") if r.get("frame_id") is not None]) >= 2:
            break
        time.sleep(0.05)
    procs["user"].kill()
    procs["edge"].join(60)
    procs["channel"].terminate()
    assert procs["edge"].exitcode == 3, "the edge keeps going when the user is gone, then says frames were lost"
    edge_rows = read_jsonl(tmp_path / "edge.results.jsonl")
    # it stops after link.max_peer_timeouts frames in a row were not taken, and counts the frames never tried
    limit = cfg.link.max_peer_timeouts
    assert [r["transmitted"] for r in edge_rows[-limit - 1:]] == [True] + [False] * limit
    stop = [e for e in read_jsonl(tmp_path / "edge.events.jsonl") if e["event"] == "stop"][-1]
    assert len(edge_rows) + stop["not_attempted"] == 8 and stop["not_attempted"] > 0
    # the edge is at most a frame ahead of the user (lock-step RF), so the last frames had no fresh report
    assert edge_rows[-1]["condition_source"] == "fallback" and not edge_rows[-1]["transmitted"]
    assert edge_rows[-1]["enc_snr_db"] == cfg.feedback.fallback_snr_db
    events = read_jsonl(tmp_path / "edge.events.jsonl")
    assert any(e["event"] == "fallback_condition" for e in events)
    assert any(e["event"] == "peer_lost" for e in events)


def test_channel_killed_both_sides_time_out_and_keep_their_rows(tmp_path):
    cfg = _config(num_frames=50, timeout_s=1.5)
    procs = {r: _start(r, cfg, tmp_path) for r in ("channel", "user", "edge")}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(read_jsonl(tmp_path / "user.results.jsonl")) < 2:
        time.sleep(0.05)
    procs["channel"].kill()
    procs["user"].join(30)
    assert procs["user"].exitcode == 3  # frames were lost to the dead channel: peer lost, after a stop event
    user_events = [e["event"] for e in read_jsonl(tmp_path / "user.events.jsonl")]
    assert "peer_lost" in user_events and user_events[-2:] == ["stop", "error"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(
            e["event"] == "peer_lost" for e in read_jsonl(tmp_path / "edge.events.jsonl")):
        time.sleep(0.1)
    procs["edge"].kill()  # it would go on (falling back) for 50 frames × timeout
    assert any(e["event"] == "peer_lost" for e in read_jsonl(tmp_path / "edge.events.jsonl"))
    kept = [r for r in read_jsonl(tmp_path / "user.results.jsonl") if r.get("frame_id") is not None]
    assert len(kept) >= 2 and all("psnr_latent_db" in r for r in kept)


def test_bad_header_crc_is_counted_not_decoded(tmp_path, monkeypatch):
    cfg = _config(num_frames=3, backend="emulator")
    good_bits = radio.FrameHeader.to_bits

    def corrupt_frame_1(self):
        bits = good_bits(self).copy()
        if self.frame_id == 1:
            bits[5] ^= 1
        return bits

    monkeypatch.setattr(radio.FrameHeader, "to_bits", corrupt_frame_1)
    nodes.run_in_process(cfg, tmp_path, StubKnowledge(), StubKnowledge())
    user_rows = read_jsonl(tmp_path / "user.results.jsonl")
    assert [r["frame_id"] for r in user_rows if r["status"] == "ok"] == [0, 2]
    bad = [r for r in user_rows if r["status"] == "header_crc"]
    assert len(bad) == 1 and "psnr_latent_db" not in bad[0]
    assert any(e["event"] == "frame_not_decoded" for e in read_jsonl(tmp_path / "user.events.jsonl"))


def test_sigmf_recording_replays_through_the_user_node(tmp_path):
    from radio.backends.sigmf_io import SigMFRecorder

    cfg = _config(num_frames=3)
    stub, tx = StubKnowledge(), radio.Transmitter(cfg.frame)
    emulator = radio.Emulator(cfg.frame, profile="TDL-C", snr_db=20.0, delay_spread_s=100e-9, seed=5)
    with SigMFRecorder(tmp_path / "capture", sample_rate_hz=cfg.frame.sample_rate_hz, center_frequency_hz=915e6,
                       device={"device": "emulator"}, frame_config=cfg.frame.to_dict()) as rec:
        for k in range(3):
            symbols, _ = stub.encode(stub.generate("p", k), 20.0, 1e-7)
            rx, truth = emulator(np.concatenate([tx.modulate(symbols, frame_id=k), np.zeros(3000, np.complex64)]))
            rec.append(rx, truth=truth, frame_id=k)
    out = tmp_path / "replay"
    assert nodes.replay(cfg, tmp_path / "capture", out, knowledge=StubKnowledge()) == 0
    rows = read_jsonl(out / "user.results.jsonl")
    assert [r["frame_id"] for r in rows if r["status"] == "ok"] == [0, 1, 2]
    assert all(abs(r["snr_db_est"] - 20.0) < 6 for r in rows)


def test_user_node_bounds_the_length_by_the_codec(tmp_path):
    from experiments.run_folder import RunFolder
    from experiments.user_node import UserNode
    node = UserNode(TestbedConfig(), RunFolder(tmp_path), StubKnowledge(), publisher=None)
    assert node.receiver.cfg.max_payload_symbols == StubKnowledge.num_symbols


def test_frame_ids_past_65536_are_unwrapped_and_the_user_finishes(tmp_path):
    from experiments.run_folder import RunFolder
    from experiments.user_node import UserNode
    from radio.feedback import CsiPublisher
    cfg = _config(num_frames=65538)
    knowledge = StubKnowledge()
    tx = radio.Transmitter(cfg.frame)
    with CsiPublisher(free_tcp_endpoint()) as pub:
        node = UserNode(cfg, RunFolder(tmp_path), knowledge, pub)
        node.last_frame_id = 65534  # as after 65 535 frames
        for frame_id in (65535, 65536, 65537):
            symbols, _ = knowledge.encode(knowledge.generate("", frame_id), 10.0, 1e-7)
            iq = tx.modulate(symbols, frame_id=frame_id % 65536)
            node.process(np.concatenate([np.zeros(300, np.complex64), iq, np.zeros(300, np.complex64)]))
    assert {65535, 65536, 65537} <= node.decoded and node.counts["repeats"] == 0
    assert node.done
