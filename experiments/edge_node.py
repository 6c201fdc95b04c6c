"""The edge node: prompt → aligned edge model → latent → JSCC encoder with CALA gated on the latest
CSI → frame (header carries the encoder's condition) → radio backend.

One :meth:`EdgeNode.send_frame` call per image; :func:`run_edge_node` loops over the configured
frames. Each frame writes one row to ``edge.results.jsonl`` before the next starts: the condition
used and where it came from (feedback or fallback), its age in seconds and in frames, the CALA gate
weights, and the time spent in each stage.
"""
from __future__ import annotations

import time
from typing import Protocol

import numpy as np

from dekag.jscc.condition_domain import ConditionDomain
from experiments.config import TestbedConfig
from experiments.peer_watch import PeerWatch
from experiments.run_folder import RunFolder
from radio.backends.base import PeerTimeout, RadioBackend
from radio.feedback import ConditionResult, CsiSubscriber, FixedCondition
from radio.transmitter import Transmitter


class EdgeKnowledge(Protocol):
    """What the edge needs from ``dekag`` (see :mod:`experiments.knowledge`)."""

    def prompt(self, template: str) -> str: ...
    def generate(self, prompt: str, seed: int) -> object: ...
    def save_reference(self, path, prompt: str, seed: int, latent: object) -> dict: ...
    condition_domain: ConditionDomain

    def encode(self, latent: object, snr_db: float, delay_spread_s: float) -> tuple[np.ndarray, list[float]]: ...


class _Stopwatch:
    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = round((now - self._t) * 1e3, 3)
        self._t = now


class EdgeNode:
    """Args:
        config: the run's configuration (``edge``, ``frame``, ``link``, ``feedback`` sections).
        run: where rows and reference files go.
        knowledge: generator + encoder.
        backend: the radio (its ``transmit`` gets one burst per frame).
        conditions: a :class:`CsiSubscriber` (feedback) or :class:`FixedCondition`.
        on_first_contact: called once, after the first transmit attempt (taken or timed out: a peer that
            did not come up within the start-up timeout is not waited for that long again).
    """

    def __init__(self, config: TestbedConfig, run: RunFolder, knowledge: EdgeKnowledge, backend: RadioBackend,
                 conditions: CsiSubscriber | FixedCondition, on_first_contact=None):
        self.config = config
        self.run = run
        self.knowledge = knowledge
        self.backend = backend
        self.conditions = conditions
        self.tx = Transmitter(config.frame)
        self.guard = np.zeros(config.link.guard_samples, np.complex64)
        self.sent = 0
        self.lost = 0
        self.peer = PeerWatch(config.link.max_peer_timeouts)
        self._on_first_contact = on_first_contact
        (run.root / "refs").mkdir(exist_ok=True)

    def _condition(self, frame_id: int) -> ConditionResult:
        """Newest condition; with feedback, wait up to ``feedback_wait_s`` for the report on the previous frame."""
        subscriber = self.conditions
        if isinstance(subscriber, CsiSubscriber) and frame_id > 0:
            deadline = time.monotonic() + self.config.edge.feedback_wait_s
            while not (subscriber.latest is not None and subscriber.latest.frame_id >= frame_id - 1):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                subscriber.poll(min(left, 0.05))
        return self.conditions.condition()

    def send_frame(self, frame_id: int) -> dict:
        """Generate, encode and transmit image ``frame_id``; returns (and records) its row."""
        edge = self.config.edge
        watch = _Stopwatch()
        prompt = self.knowledge.prompt(edge.prompts[frame_id % len(edge.prompts)])
        seed = edge.seed + frame_id
        latent = self.knowledge.generate(prompt, seed)
        watch.lap("generate")
        self.knowledge.save_reference(self.run.root / "refs" / f"frame_{frame_id:06d}.safetensors", prompt, seed,
                                      latent)
        watch.lap("reference")
        cond = self._condition(frame_id)
        watch.lap("feedback_wait")
        mapped = self.knowledge.condition_domain.apply(cond.condition.snr_db, cond.condition.delay_spread_s,
                                                       cond.condition.delay_spread_below_resolution)
        snr_db, ds_s = mapped.as_tuple()
        symbols, gates = self.knowledge.encode(latent, snr_db, ds_s)
        watch.lap("encode")
        iq = self.tx.modulate(symbols, frame_id=frame_id % 65536, condition=(snr_db, ds_s))
        watch.lap("modulate")
        timeout = None
        try:
            self.backend.transmit(np.concatenate([iq, self.guard]))
            self.sent += 1
            self.peer.ok()
        except PeerTimeout as exc:
            timeout = exc
            self.lost += 1
            self.run.event("peer_lost", frame_id=frame_id, error=str(exc))
        transmitted = timeout is None
        if self.sent + self.lost == 1 and self._on_first_contact is not None:
            self._on_first_contact()
        watch.lap("transmit")
        row = dict(frame_id=frame_id, prompt=prompt, gen_seed=seed, transmitted=transmitted,
                   enc_snr_db=snr_db, enc_delay_spread_s=ds_s, condition_source=cond.source,
                   csi_snr_db=cond.condition.snr_db, csi_delay_spread_s=cond.condition.delay_spread_s,
                   csi_delay_spread_below_resolution=cond.condition.delay_spread_below_resolution,
                   enc_condition_applied=list(mapped.applied),
                   csi_age_s=cond.age_s, csi_frame_id=cond.frame_id,
                   csi_age_frames=(frame_id - cond.frame_id
                                   if cond.source == "feedback" and cond.frame_id is not None else None),
                   gates=gates, num_symbols=int(symbols.size), frame_samples=int(iq.size), latency_ms=watch.ms)
        if cond.source == "fallback":
            self.run.event("fallback_condition", frame_id=frame_id, snr_db=snr_db, delay_spread_s=ds_s)
        self.run.result(**row)
        if timeout is not None:
            self.peer.timed_out(timeout)  # PeerLost after link.max_peer_timeouts in a row
        return row


def run_edge_node(node: EdgeNode) -> dict[str, int]:
    """Send every configured frame; returns counters. A peer that times out now and then costs those frames;
    one that times out ``link.max_peer_timeouts`` times in a row ends the node (:class:`PeerLost`, after a
    ``stop`` event that counts the frames never attempted)."""
    node.run.event("start", num_frames=node.config.edge.num_frames)
    try:
        for frame_id in range(node.config.edge.num_frames):
            node.send_frame(frame_id)
    finally:
        counters = _counters(node)
        node.run.event("stop", **counters)
    return counters


def _counters(node: EdgeNode) -> dict[str, int]:
    counters = {"sent": node.sent, "lost": node.lost,
                "not_attempted": node.config.edge.num_frames - node.sent - node.lost}
    if isinstance(node.conditions, CsiSubscriber):
        counters.update({f"feedback_{k}": v for k, v in node.conditions.counters.as_dict().items()})
    return counters
