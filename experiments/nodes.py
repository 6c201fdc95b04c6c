"""Building and running the nodes from a :class:`TestbedConfig`: backends, feedback sockets, knowledge.

``run_node(role, config, out)`` is what ``dekag-testbed edge|user|channel`` runs; ``run_in_process``
runs edge and user in one process over the in-process emulator backend; ``replay`` runs the user side
over a SigMF recording.
"""
from __future__ import annotations

from pathlib import Path

from experiments import exit_codes
from experiments.config import TestbedConfig
from experiments.run_folder import RunFolder
from experiments.truth import TruthTable
from radio.backends.base import RadioBackend
from radio.backends.zmq_rf import ZmqRfBackend, ZmqRfConfig
from radio.feedback import CsiSubscriber, FixedCondition, publisher_from_config, subscriber_from_config


def _zmq(config: TestbedConfig, **endpoints: str) -> ZmqRfBackend:
    link = config.link
    # long timeouts until the peer has answered once (it may still be loading models), then link.timeout_s
    return ZmqRfBackend(ZmqRfConfig(sample_rate_hz=config.frame.sample_rate_hz,
                                    center_frequency_hz=config.channel.emulator.carrier_frequency_hz,
                                    timeout_s=link.startup_timeout_s, session_token=link.session_token,
                                    **endpoints))


def steady_timeouts(config: TestbedConfig, backend: RadioBackend):
    """A callable the nodes run after the first exchange with their peer: switch to ``link.timeout_s``."""
    if isinstance(backend, ZmqRfBackend):
        return lambda: backend.set_timeout(config.link.timeout_s)
    return None


def edge_backend(config: TestbedConfig) -> RadioBackend:
    if config.link.backend == "pluto":
        from radio.backends.pluto import PlutoBackend
        return PlutoBackend(config.link.edge_pluto)
    return _zmq(config, tx_endpoint=config.link.tx_endpoint)


def user_backend(config: TestbedConfig, run: RunFolder) -> RadioBackend:
    if config.link.backend == "pluto":
        from radio.backends.pluto import PlutoBackend
        backend: RadioBackend = PlutoBackend(config.link.user_pluto)
    else:
        backend = _zmq(config, rx_endpoint=config.link.rx_endpoint)
    if config.link.record_sigmf:
        from radio.backends.sigmf_io import RecordingBackend, SigMFRecorder
        recorder = SigMFRecorder.for_backend(run.root / "capture", backend, frame_config=config.frame.to_dict())
        backend = RecordingBackend(backend, recorder)
    return backend


def edge_conditions(config: TestbedConfig) -> CsiSubscriber | FixedCondition:
    if config.edge.condition == "fixed":
        return FixedCondition(config.feedback.fallback)
    return subscriber_from_config(config.feedback)


def _close(conditions: CsiSubscriber | FixedCondition) -> None:
    if isinstance(conditions, CsiSubscriber):
        conditions.close()


def _edge(config: TestbedConfig, run: RunFolder, backend: RadioBackend, knowledge=None):
    from experiments.edge_node import EdgeNode
    if knowledge is None:
        from experiments.knowledge import EdgeRuntime
        knowledge = EdgeRuntime.load(config, run.images)
    return EdgeNode(config, run, knowledge, backend, edge_conditions(config), steady_timeouts(config, backend))


def _user(config: TestbedConfig, run: RunFolder, knowledge=None):
    from experiments.user_node import UserNode
    if knowledge is None:
        from experiments.knowledge import UserRuntime
        knowledge = UserRuntime.load(config)
    truth = TruthTable(run.root / "channel.results.jsonl") if config.link.backend != "pluto" else None
    return UserNode(config, run, knowledge, publisher_from_config(config.feedback), truth)


def run_node(role: str, config: TestbedConfig, out: Path, knowledge=None) -> int:
    """Run one node until it is done, its peer is lost, or it is interrupted. Returns an exit status
    (:mod:`experiments.exit_codes`): non-zero whenever frames were lost to a peer that stopped answering.

    ``knowledge`` replaces the ``dekag`` runtime (tests pass a light stand-in; see ``UserKnowledge``)."""
    from radio.backends.base import PeerTimeout

    run = RunFolder(out, config, role=role, seed=config.seed)
    status = exit_codes.OK
    try:
        if role == "channel":
            from experiments.channel_node import run_channel_node
            run_channel_node(config, run)
        elif role == "edge":
            from experiments.edge_node import run_edge_node
            with edge_backend(config) as backend:
                edge = _edge(config, run, backend, knowledge)
                try:
                    counters = run_edge_node(edge)
                finally:
                    _close(edge.conditions)
            status = exit_codes.PEER_LOST if counters["lost"] else exit_codes.OK
        elif role == "user":
            from experiments.user_node import run_user_node
            node = _user(config, run, knowledge)
            try:
                with user_backend(config, run) as backend:
                    run_user_node(node, backend, steady_timeouts(config, backend))
            finally:
                node.publisher.close()
        else:
            raise ValueError(f"unknown role {role!r}")
    except PeerTimeout as exc:
        run.event("error", error=str(exc), exit_status=exit_codes.PEER_LOST)
        print(f"{role}: {exc}", flush=True)
        return exit_codes.PEER_LOST
    except KeyboardInterrupt as exc:
        status = exit_codes.status_of(exc)
        run.event("interrupted", exit_status=status)
        return status
    finally:
        run.close()
    return status


def run_in_process(config: TestbedConfig, out: Path, edge_knowledge=None, user_knowledge=None) -> int:
    """Edge and user in this process over the in-process emulator backend (no channel process)."""
    from experiments.channel_node import ScheduledChannel
    from radio.backends.emulated import EmulatedBackend

    channel_run = RunFolder(out, config, role="channel", seed=config.seed)
    channel = ScheduledChannel(config, channel_run)
    backend = EmulatedBackend(lambda iq: (channel(iq), channel.truths[-1][2]),
                              sample_rate_hz=config.frame.sample_rate_hz,
                              center_frequency_hz=config.channel.emulator.carrier_frequency_hz)
    try:
        return run_over_backend(config, out, backend, lambda row: max(backend.pending_samples, 1), edge_knowledge,
                                user_knowledge)
    finally:
        channel_run.close()


def run_over_backend(config: TestbedConfig, out: Path, backend: RadioBackend, capture_samples,
                     edge_knowledge=None, user_knowledge=None) -> int:
    """Edge and user in this process over one ``backend`` that both transmits and receives (the in-process
    emulator, or one radio in cabled loopback); after each frame the user reads ``capture_samples(row)``
    samples, ``row`` being the edge's row of that frame."""
    edge_run = RunFolder(out, config, role="edge", seed=config.seed)
    user_run = RunFolder(out, config, role="user", seed=config.seed)
    user = _user(config, user_run, user_knowledge)
    edge = _edge(config, edge_run, backend, edge_knowledge)
    if isinstance(edge.conditions, CsiSubscriber):
        user.publisher.publish_until_received(edge.conditions, frame_id=0, snr_db=config.feedback.fallback_snr_db,
                                              delay_spread_s=config.feedback.fallback_delay_spread_s)
        edge.conditions.latest = None  # that was only the handshake, not a measurement
    try:
        for frame_id in range(config.edge.num_frames):
            row = edge.send_frame(frame_id)
            user.process(backend.receive(capture_samples(row)))
        user.finish()
    except KeyboardInterrupt as exc:
        edge_run.event("interrupted")
        return exit_codes.status_of(exc)
    finally:
        user.publisher.close()
        _close(edge.conditions)
        for r in (edge_run, user_run):
            r.close()
    return 0


def replay(config: TestbedConfig, recording: Path, out: Path, knowledge=None) -> int:
    """The user node over a SigMF recording: every frame in it is received, decoded and measured (against
    the references in ``out/refs`` when the edge's run folder is there) and its CSI published as live."""
    from radio.backends.sigmf_io import ReplayExhausted, SigMFReplayBackend

    run = RunFolder(out, config, role="user", seed=config.seed)
    node = _user(config, run, knowledge)
    node.truth = None
    with SigMFReplayBackend(recording, expected_sample_rate_hz=config.frame.sample_rate_hz,
                            expected_frame_config=config.frame.to_dict()) as backend:
        try:
            while True:
                node.process(backend.receive(config.link.chunk_samples))
        except ReplayExhausted:
            pass
    node.finish()
    run.event("stop", **node.counts)
    node.publisher.close()
    run.close()
    return 0
