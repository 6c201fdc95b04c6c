"""A soak run: channel, user and edge as three processes (stub knowledge, AWGN emulator) under faults, and
the accounting that every frame the edge was asked to send is decoded or lost with a recorded reason.

Faults, all drawn from one seeded generator per process:

* user restarts: the harness SIGKILLs the user node at random moments and starts a new one at once;
* garbage on every socket: raw TCP bytes and malformed or token-less requests at both virtual-RF ports (from
  the harness), garbage, oversized and forged reports (huge sequence number, future timestamp) on the CSI
  feedback (from the user's publisher);
* broken buffers at the user: random chunks get a NaN, are clipped, or are scaled by 1e20 or 1e-30.

The user's buffer faults and the stream intervals each user process read are logged to ``soak.user.jsonl``
(harness files, beside the run's own). :func:`account` then names a reason for every frame.
"""
from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
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


class FaultyReceive:
    """Wraps the user's backend: some chunks are broken, and every chunk read is logged as
    ``{"pid", "start", "end", "fault"}`` (the interval is written once the *next* read starts, so a logged
    chunk was handed to the receiver)."""

    def __init__(self, inner, rng: random.Random, log_path: Path, p_fault: float):
        self._inner, self._rng, self._p = inner, rng, p_fault
        self._log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
        self._pending: dict | None = None

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._write_pending()
        self._log.close()
        self._inner.close()

    def _write_pending(self):
        if self._pending is not None:
            self._log.write(json.dumps(self._pending) + "\n")
            self._log.flush()
            self._pending = None

    def receive(self, num_samples: int) -> np.ndarray:
        self._write_pending()
        x = self._inner.receive(num_samples)
        end = self._inner.rx_time_samples
        fault = self._rng.choice(["nan", "clip", "huge", "tiny"]) if self._rng.random() < self._p else None
        if fault == "nan":
            x = x.copy()
            x[self._rng.randrange(x.size)] = np.nan
        elif fault == "clip":
            peak = 0.2 * float(np.abs(x).max() or 1.0)
            x = (np.clip(x.real, -peak, peak) + 1j * np.clip(x.imag, -peak, peak)).astype(np.complex64)
        elif fault in ("huge", "tiny"):
            x = (x * (1e20 if fault == "huge" else 1e-30)).astype(np.complex64)
        self._pending = {"pid": os.getpid(), "start": end - x.size, "end": end, "fault": fault}
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
    rng = random.Random(seed)
    real_backend, real_publisher = nodes.user_backend, nodes.publisher_from_config
    nodes.user_backend = lambda config, run: FaultyReceive(real_backend(config, run), rng, out / FAULT_LOG, p_fault)
    nodes.publisher_from_config = lambda fb, **kw: NoisyPublisher(real_publisher(fb, **kw), rng, p_garbage)
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


def run_soak(out: Path, num_frames: int, restarts: int, seed: int = 0, p_fault: float = 0.05,
             p_garbage: float = 0.1, limit_s: float = 600.0) -> dict:
    """Run the three processes with faults; returns ``{"restarts", "garbage", "exit"}``."""
    from radio.emulator import Emulator

    rng = random.Random(seed)
    cfg = soak_config(num_frames)
    Emulator(cfg.frame, cfg.channel.emulator)  # imports the emulator's dependencies once, before the forks
    ctx = mp.get_context("fork")

    def start(target, *args):
        return ctx.Process(target=target, args=args, daemon=True)
    procs = {role: start(_node_process, role, cfg, out) for role in ("channel", "edge")}
    user_seeds = iter(range(seed * 1000, seed * 1000 + restarts + 1))
    procs["user"] = start(_user_process, cfg, out, next(user_seeds), p_fault, p_garbage)
    for p in procs.values():
        p.start()
    stop = threading.Event()
    garbage: dict[str, int] = {}
    thread = threading.Thread(target=lambda: garbage.update(_garbage(cfg, random.Random(seed + 1), stop)))
    thread.start()
    kill_after = sorted(rng.sample(range(2, max(num_frames - 2, restarts + 3)), restarts))
    done_restarts = 0
    deadline = time.monotonic() + limit_s
    try:
        while procs["edge"].is_alive() and time.monotonic() < deadline:
            decoded = sum(1 for r in read_jsonl(out / "user.results.jsonl") if r.get("status") == "ok")
            if done_restarts < restarts and decoded >= kill_after[done_restarts]:
                procs["user"].kill()
                procs["user"].join()
                procs["user"] = start(_user_process, cfg, out, next(user_seeds), p_fault, p_garbage)
                procs["user"].start()
                done_restarts += 1
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
    return {"restarts": done_restarts, "garbage": garbage,
            "exit": {role: p.exitcode for role, p in procs.items()}}


def _overlaps(lo: int, hi: int, intervals: list[tuple[int, int]]) -> bool:
    return any(a < hi and lo < b for a, b in intervals)


def account(out: Path, num_frames: int) -> dict[int, str]:
    """The reason of every frame 0..num_frames-1: ``decoded``, ``edge_peer_lost`` (the edge's transmit timed
    out), ``edge_not_attempted`` (the edge stopped first), ``buffer_fault`` (a broken buffer overlapped it),
    ``user_restart`` (a user process died with it in flight), or ``UNEXPLAINED``."""
    edge_rows = read_jsonl(out / "edge.results.jsonl")
    user_rows = read_jsonl(out / "user.results.jsonl")
    bursts = sorted(read_jsonl(out / "channel.results.jsonl"), key=lambda r: r["burst"])
    chunks = read_jsonl(out / FAULT_LOG)
    guard = soak_config(1).link.guard_samples
    decoded = {r["frame_id"] for r in user_rows if r.get("status") == "ok" and "decoder_condition" in r}
    faults = [(c["start"], c["end"]) for c in chunks if c["fault"]]
    # per user process, the end of what it read; a frame near the end of a process that was replaced was in flight
    pids = list(dict.fromkeys(c["pid"] for c in chunks))
    last_end = {pid: max(c["end"] for c in chunks if c["pid"] == pid) for pid in pids}
    first_start = {pid: min(c["start"] for c in chunks if c["pid"] == pid) for pid in pids}
    in_flight = [(last_end[a] - 3 * guard, first_start[b] + guard) for a, b in itertools.pairwise(pids)]
    transmitted = [r["frame_id"] for r in edge_rows if r["transmitted"]]
    interval = {fid: (b["rx_frame_start"], b["rx_frame_start"] + b["burst_samples"] - guard)
                for fid, b in zip(transmitted, bursts)}
    reasons = {}
    sent_rows = {r["frame_id"]: r for r in edge_rows}
    for fid in range(num_frames):
        if fid in decoded:
            reasons[fid] = "decoded"
        elif fid not in sent_rows:
            reasons[fid] = "edge_not_attempted"
        elif not sent_rows[fid]["transmitted"]:
            reasons[fid] = "edge_peer_lost"
        elif fid in interval and _overlaps(*interval[fid], faults):
            reasons[fid] = "buffer_fault"
        elif fid not in interval or _overlaps(*interval[fid], in_flight) or interval[fid][1] > max(last_end.values()):
            reasons[fid] = "user_restart"
        else:
            reasons[fid] = "UNEXPLAINED"
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
