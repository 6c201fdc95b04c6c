"""A soak run: channel, user and edge as three processes (stub knowledge, AWGN emulator) under faults, and
the accounting that every frame the edge was asked to send is decoded or lost with a recorded reason.

Faults, all drawn from seeded generators:

* peer restarts: the harness SIGKILLs the user or the channel node at random moments and starts a new one;
* garbage on every socket: raw TCP bytes and malformed or token-less requests at both virtual-RF ports (from
  the harness), garbage, oversized and forged reports (huge sequence number, future timestamp) on the CSI
  feedback (from the user's publisher);
* broken buffers: some chunks the user receives get a NaN, are clipped, or are scaled by 1e20 or 1e-30
  (logged to ``soak.user.jsonl``, a harness file beside the run's own).

:func:`account` then names a reason for every frame.
"""
from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import random
import socket
import threading
import time
from pathlib import Path

import numpy as np
import zmq
from knowledge_stub import StubKnowledge

from experiments import nodes
from experiments.config import ChannelSection, EdgeSection, LinkSection, TestbedConfig, UserSection
from experiments.run_folder import read_jsonl
from radio.emulator import EmulatorConfig
from radio.feedback import CsiPublisher, CsiReport, FeedbackConfig, encode_report, free_tcp_endpoint

FAULT_LOG = "soak.user.jsonl"


def soak_config(num_frames: int) -> TestbedConfig:
    return TestbedConfig(
        channel=ChannelSection(emulator=EmulatorConfig(profile="AWGN", snr_db=30.0, seed=5)),
        edge=EdgeSection(num_frames=num_frames, feedback_wait_s=0.5),
        user=UserSection(save_images=False),
        link=LinkSection(timeout_s=2.0, startup_timeout_s=60.0, max_peer_timeouts=4, session_token="soak-token",
                         tx_endpoint=free_tcp_endpoint(), rx_endpoint=free_tcp_endpoint()),
        feedback=FeedbackConfig(endpoint=free_tcp_endpoint(), max_age_s=0.5))


class BrokenBuffers:
    """Wraps the user's backend: some received chunks get a NaN, are clipped, or are scaled by 1e20 or 1e-30.
    Each is logged as ``{"after", "fault"}`` with the newest frame id decoded so far: the frame it can cost is
    one of the next :data:`IN_FLIGHT_FRAMES` (a chunk is shorter than the guard between two frames)."""

    def __init__(self, inner, out: Path, rng: random.Random, p_fault: float):
        self._inner, self._out, self._rng, self._p = inner, out, rng, p_fault

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._inner.close()

    def receive(self, num_samples: int) -> np.ndarray:
        x = self._inner.receive(num_samples)
        if self._rng.random() >= self._p:
            return x
        fault = self._rng.choice(["nan", "clip", "huge", "tiny"])
        if fault == "nan":
            x = x.copy()
            x[self._rng.randrange(x.size)] = np.nan
        elif fault == "clip":
            peak = 0.2 * float(np.abs(x).max() or 1.0)
            x = (np.clip(x.real, -peak, peak) + 1j * np.clip(x.imag, -peak, peak)).astype(np.complex64)
        else:
            x = (x * (1e20 if fault == "huge" else 1e-30)).astype(np.complex64)
        with open(self._out / FAULT_LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps({"after": max(_decoded(self._out), default=-1), "fault": fault}) + "\n")
        return x


class NoisyPublisher:
    """Wraps the user's publisher: before some reports it also sends garbage, an oversized message or a
    forged report (the edge must keep its feedback)."""

    def __init__(self, inner: CsiPublisher, rng: random.Random, p_garbage: float):
        self._inner, self._rng, self._p = inner, rng, p_garbage

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def publish(self, **fields):
        if self._rng.random() < self._p:
            kind = self._rng.choice(["bytes", "oversized", "huge_seq", "future", "other_session"])
            base = {"frame_id": 0, "snr_db": 0.0, "delay_spread_s": 1e-7}
            payload = {
                "bytes": lambda: self._rng.randbytes(self._rng.randrange(1, 100)),
                "oversized": lambda: b"\0" * 5000,
                "huge_seq": lambda: encode_report(CsiReport(seq=2**62, timestamp_s=time.monotonic(),
                                                            session_id=self._inner.session_id, **base)),
                "future": lambda: encode_report(CsiReport(seq=1, timestamp_s=1e12, session_id=12345, **base)),
                "other_session": lambda: encode_report(CsiReport(seq=7, timestamp_s=1.0, session_id=777, **base)),
            }[kind]()
            self._inner.send_raw(payload)
        return self._inner.publish(**fields)


def _user_process(cfg: TestbedConfig, out: Path, seed: int, p_fault: float, p_garbage: float) -> None:
    real_publisher, real_backend = nodes.publisher_from_config, nodes.user_backend
    rng = random.Random(seed)
    nodes.publisher_from_config = lambda fb, **kw: NoisyPublisher(real_publisher(fb, **kw), rng, p_garbage)
    nodes.user_backend = lambda config, run: BrokenBuffers(real_backend(config, run), out, rng, p_fault)
    nodes.steady_timeouts = lambda config, backend: lambda: backend.set_timeout(config.link.timeout_s)
    raise SystemExit(nodes.run_node("user", cfg, out, knowledge=StubKnowledge()))


def _node_process(role: str, cfg: TestbedConfig, out: Path) -> None:
    raise SystemExit(nodes.run_node(role, cfg, out, knowledge=None if role == "channel" else StubKnowledge()))


def _garbage(cfg: TestbedConfig, rng: random.Random, stop: threading.Event) -> dict[str, int]:
    """Raw TCP bytes and malformed / token-less ZeroMQ requests at both virtual-RF ports until ``stop``."""
    sent = {"tcp": 0, "request": 0}
    ports = [cfg.link.tx_endpoint, cfg.link.rx_endpoint]
    while not stop.wait(rng.uniform(0.02, 0.1)):
        endpoint = rng.choice(ports)
        if rng.random() < 0.5:
            host, port = endpoint.removeprefix("tcp://").split(":")
            try:
                with socket.create_connection((host, int(port)), timeout=0.5) as s:
                    s.sendall(rng.randbytes(rng.randrange(1, 300)))
                sent["tcp"] += 1
            except OSError:
                pass
            continue
        sock = zmq.Context.instance().socket(zmq.REQ)
        sock.linger, sock.rcvtimeo = 0, 300
        sock.connect(endpoint)
        sock.send(rng.randbytes(rng.choice([0, 3, 8, 8, 12])))  # 8 bytes: well-formed, without the token
        try:
            sock.recv_multipart()
        except zmq.Again:
            pass
        sock.close()
        sent["request"] += 1
    return sent


def _decoded(out: Path) -> set[int]:
    return {r["frame_id"] for r in read_jsonl(out / "user.results.jsonl")
            if r.get("status") == "ok" and "decoder_condition" in r}


def run_soak(out: Path, num_frames: int, restarts: int, seed: int = 0, p_fault: float = 0.05,
             p_garbage: float = 0.1, limit_s: float = 600.0) -> dict:
    """Run the three processes with faults; returns ``{"restarts": [(role, last decoded frame id)], "garbage",
    "exit"}``."""
    from radio.emulator import Emulator

    rng = random.Random(seed)
    cfg = soak_config(num_frames)
    Emulator(cfg.frame, cfg.channel.emulator)  # imports the emulator's dependencies once, before the forks
    ctx = mp.get_context("fork")
    seeds = itertools.count(seed * 1000)

    def spawn(role):
        target, args = ((_user_process, (cfg, out, next(seeds), p_fault, p_garbage)) if role == "user"
                        else (_node_process, (role, cfg, out)))
        p = ctx.Process(target=target, args=args, daemon=True)
        p.start()
        return p

    procs = {role: spawn(role) for role in ("channel", "user", "edge")}
    stop = threading.Event()
    garbage: dict[str, int] = {}
    thread = threading.Thread(target=lambda: garbage.update(_garbage(cfg, random.Random(seed + 1), stop)))
    thread.start()
    kill_after = sorted(rng.sample(range(2, max(num_frames - 2, restarts + 3)), restarts))
    done: list[tuple[str, int]] = []
    deadline = time.monotonic() + limit_s
    try:
        while procs["edge"].is_alive() and time.monotonic() < deadline:
            decoded = _decoded(out)
            if len(done) < restarts and len(decoded) >= kill_after[len(done)]:
                role = rng.choice(["user", "channel"])
                procs[role].kill()
                procs[role].join()
                done.append((role, max(_decoded(out), default=-1)))
                procs[role] = spawn(role)
            time.sleep(rng.uniform(0.01, 0.2))
        procs["edge"].join(max(deadline - time.monotonic(), 1))
        procs["user"].join(max(deadline - time.monotonic(), 1))
    finally:
        stop.set()
        thread.join()
        for p in procs.values():
            if p.is_alive():
                p.kill()
                p.join()
    (out / "soak.restarts.json").write_text(json.dumps(done))
    return {"restarts": done, "garbage": garbage, "exit": {role: p.exitcode for role, p in procs.items()}}


IN_FLIGHT_FRAMES = 4
"""Frames after the last one decoded before a restart that the restart may take with it."""


def account(out: Path, num_frames: int) -> dict[int, str]:
    """The reason of every frame 0..num_frames-1: ``decoded``, ``edge_peer_lost`` (the edge's transmit timed
    out), ``edge_not_attempted`` (the edge stopped first), ``buffer_fault`` (a broken buffer came just before it),
    ``user_restart`` / ``channel_restart`` (in flight when that node was killed), or ``UNEXPLAINED``."""
    edge_rows = {r["frame_id"]: r for r in read_jsonl(out / "edge.results.jsonl")}
    decoded = _decoded(out)
    faults = {fid for r in read_jsonl(out / FAULT_LOG) for fid in range(r["after"] + 1, r["after"] + 1 + IN_FLIGHT_FRAMES)}
    in_flight = {}
    for role, last in json.loads((out / "soak.restarts.json").read_text()):
        for fid in range(last + 1, last + 1 + IN_FLIGHT_FRAMES):
            in_flight.setdefault(fid, f"{role}_restart")
    reasons = {}
    for fid in range(num_frames):
        if fid in decoded:
            reasons[fid] = "decoded"
        elif fid not in edge_rows:
            reasons[fid] = "edge_not_attempted"
        elif not edge_rows[fid]["transmitted"]:
            reasons[fid] = "edge_peer_lost"
        elif fid in faults:
            reasons[fid] = "buffer_fault"
        else:
            reasons[fid] = in_flight.get(fid, "UNEXPLAINED")
    return reasons


def check_run_folder(out: Path, num_frames: int) -> None:
    """The run folder is consistent: every line of every JSON-lines file parses, the edge wrote each frame once
    and in order, its stop event counts the frames it never attempted, and no frame was decoded twice."""
    for path in out.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            json.loads(line)
    edge_rows = read_jsonl(out / "edge.results.jsonl")
    assert [r["frame_id"] for r in edge_rows] == list(range(len(edge_rows)))
    stop = [e for e in read_jsonl(out / "edge.events.jsonl") if e["event"] == "stop"][-1]
    assert stop["not_attempted"] == num_frames - len(edge_rows)
    assert stop["lost"] == sum(not r["transmitted"] for r in edge_rows)
    decoded = [r["frame_id"] for r in read_jsonl(out / "user.results.jsonl")
               if r.get("status") == "ok" and "decoder_condition" in r]
    assert len(decoded) == len(set(decoded))
    assert (out / "config.toml").is_file()
