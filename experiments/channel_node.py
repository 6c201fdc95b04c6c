"""The channel node: the Sionna emulator between two ZeroMQ virtual-RF ports, as its own process.

It pulls each frame burst the edge transmits, passes it through an :class:`radio.Emulator` whose
nominal condition follows the configured schedule, serves the result to the user, and writes one
truth row per burst (realised SNR, delay spread, CFO, and where the frame starts in the user's RX
stream) to ``channel.results.jsonl``.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import numpy as np

from experiments.config import TestbedConfig
from experiments.peer_watch import PeerLost, PeerWatch
from experiments.run_folder import RunFolder
from radio.backends.base import PeerTimeout
from radio.backends.zmq_rf import ZmqChannelRelay
from radio.emulator import Emulator


class ScheduledChannel:
    """``rx = channel(burst)``: one emulator per scheduled condition, each with its own seed stream.

    Attributes:
        truths: ``[(rx stream index of the frame start, nominal condition, ChannelTruth)]`` per burst.
    """

    def __init__(self, config: TestbedConfig, run: RunFolder | None = None):
        self.config = config
        self.run = run
        self._emulators: dict[tuple[float, float], Emulator] = {}
        self.bursts = 0
        self.out_index = 0  # stream index (user side) of the next output sample
        self.truths: list[tuple[int, tuple[float, float], Any]] = []

    def warm_up(self, num_bursts: int) -> None:
        """Build the emulators of the first ``num_bursts`` scheduled conditions now, so the first frames
        do not wait for Sionna's start-up."""
        for burst in range(num_bursts):
            self._emulator(self.config.channel.condition_at(burst))

    def _emulator(self, condition: tuple[float, float]) -> Emulator:
        if condition not in self._emulators:
            base = self.config.channel.emulator
            seed = base.seed * 1000 + len(self._emulators)
            cfg = dataclasses.replace(base, snr_db=condition[0], delay_spread_s=condition[1], seed=seed)
            self._emulators[condition] = Emulator(self.config.frame, cfg)
        return self._emulators[condition]

    def __call__(self, burst: np.ndarray) -> np.ndarray:
        condition = self.config.channel.condition_at(self.bursts)
        t0 = time.perf_counter()
        rx, truth = self._emulator(condition)(burst)
        channel_ms = (time.perf_counter() - t0) * 1e3
        frame_start = self.out_index + truth.start
        self.truths.append((frame_start, condition, truth))
        if self.run is not None:
            self.run.result(burst=self.bursts, rx_frame_start=frame_start, nominal_snr_db=condition[0],
                            nominal_delay_spread_s=condition[1], burst_samples=int(burst.size),
                            channel_ms=round(channel_ms, 3),
                            **{f"true_{k}": v for k, v in truth.to_dict().items()})
        self.bursts += 1
        self.out_index += rx.size
        return rx


def run_channel_node(config: TestbedConfig, run: RunFolder, stop: threading.Event | None = None) -> dict[str, int]:
    """Relay bursts until ``stop`` is set; a peer that times out ``link.max_peer_timeouts`` times in a row
    (``link.timeout_s`` each, after the start-up wait) ends the node with :class:`PeerLost`, after the
    ``stop`` event. Returns counters."""
    channel = ScheduledChannel(config, run)
    channel.warm_up(config.edge.num_frames)
    link = config.link
    run.event("start", tx_endpoint=link.tx_endpoint, rx_endpoint=link.rx_endpoint)
    peer = PeerWatch(link.max_peer_timeouts)
    with ZmqChannelRelay(link.tx_endpoint, link.rx_endpoint, channel, timeout_s=link.timeout_s,
                         token=link.session_token.encode()) as relay:
        try:
            startup_s = link.startup_timeout_s
            while True:
                bursts = channel.bursts
                try:
                    relay.run(stop, idle_timeout_s=link.timeout_s, startup_timeout_s=startup_s)
                    break  # stop was set
                except PeerTimeout as exc:
                    startup_s = None  # waited for start-up once
                    run.event("peer_timeout", error=str(exc), bursts=channel.bursts)
                    if channel.bursts > bursts:
                        peer.ok()
                    peer.timed_out(exc)
        except PeerLost as exc:
            run.event("peer_lost", error=str(exc), bursts=channel.bursts)
            raise
        finally:
            counters = relay.counters
            run.event("stop", **counters)
    return counters
