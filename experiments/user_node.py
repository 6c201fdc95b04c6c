"""The user node: radio backend → receiver → CSI published to the edge → JSCC decoder gated on its own
estimate (and, for comparison, on the header's condition) → VAE decoder → image and metrics.

:meth:`UserNode.process` takes any chunk of received samples (frames may straddle chunks);
:func:`run_user_node` reads the backend until the last frame arrived or the peer is gone. Every frame
the receiver finds writes one row to ``user.results.jsonl``, including frames it could not decode
(bad header CRC, another numerology, truncated) — those are counted, never decoded.
"""
from __future__ import annotations

import json
import time
from typing import Protocol

import numpy as np

from dekag.jscc.condition_domain import ConditionDomain
from experiments.config import TestbedConfig
from experiments.peer_watch import PeerLost, PeerWatch
from experiments.run_folder import RunFolder
from experiments.truth import TruthTable
from radio.backends.base import PeerTimeout, RadioBackend
from radio.emulator import used_subcarriers
from radio.feedback import CsiPublisher
from radio.receiver import ReceivedFrame, Receiver

FRAME_ID_MODULUS = 65536
"""Frame ids on the air are 16-bit; the edge numbers frames from 0 without limit."""


def unwrap_frame_id(wire_id: int, last: int | None) -> int:
    """The run's frame number of a header's 16-bit ``wire_id``: the one nearest after ``last`` (the newest
    decoded frame number, None before the first).

    >>> unwrap_frame_id(3, None), unwrap_frame_id(0, 65535), unwrap_frame_id(65535, 65536), unwrap_frame_id(5, 131075)
    (3, 65536, 65535, 131077)
    """
    if last is None:
        return wire_id
    half = FRAME_ID_MODULUS // 2
    unwrapped = last + 1 + (wire_id - (last + 1) + half) % FRAME_ID_MODULUS - half
    return unwrapped if unwrapped >= 0 else unwrapped + FRAME_ID_MODULUS


class UserKnowledge(Protocol):
    """What the user needs from ``dekag`` (see :mod:`experiments.knowledge`)."""

    num_symbols: int
    condition_domain: ConditionDomain

    def decode(self, symbols: np.ndarray, noise_var: np.ndarray, snr_db: float,
               delay_spread_s: float) -> tuple[object, list[float]]: ...
    def to_image(self, latent: object) -> np.ndarray: ...
    def measure(self, latent: object, image: np.ndarray, reference_path) -> dict: ...
    def save_image(self, image: np.ndarray, path) -> None: ...
    def save_latent(self, latent: object, path) -> None: ...


class UserNode:
    """Args:
        config: the run's configuration.
        run: where rows, events and images go.
        knowledge: decoder + metrics.
        publisher: CSI feedback to the edge.
        truth: the emulator's truth, when there is one (emulated runs on one host).
    """

    def __init__(self, config: TestbedConfig, run: RunFolder, knowledge: UserKnowledge, publisher: CsiPublisher,
                 truth: TruthTable | None = None):
        self.config = config
        self.run = run
        self.knowledge = knowledge
        self.publisher = publisher
        self.truth = truth
        # a header may announce no longer a payload than the codec makes (a false one cannot stall the stream)
        self.receiver = Receiver(config.frame.replace(max_payload_symbols=knowledge.num_symbols), config.receiver)
        self.decoded: set[int] = set()
        self.last_frame_id: int | None = None
        self.counts = {"frames": 0, "decoded": 0, "not_decoded": 0, "repeats": 0}

    def process(self, chunk: np.ndarray) -> list[dict]:
        """Feed received samples; returns the rows of the frames completed in them."""
        t0 = time.perf_counter()
        frames = self.receiver.receive(chunk)
        receive_ms = (time.perf_counter() - t0) * 1e3
        return [self._handle(f, receive_ms) for f in frames]

    def _handle(self, f: ReceivedFrame, receive_ms: float) -> dict:
        self.counts["frames"] += 1
        row: dict = dict(status=f.status, crc_ok=f.crc_ok, start=f.start, snr_db_est=f.snr_db,
                         delay_spread_s_est=f.delay_spread_s,
                         delay_spread_below_resolution_est=f.delay_spread_below_resolution, cfo_hz_est=f.cfo_hz,
                         clipped=f.clipped)
        truth = self.truth.lookup(f.start) if self.truth is not None else None
        if truth is not None:
            row.update(snr_db_true=truth["true_snr_db"], delay_spread_s_true=truth["true_delay_spread_s"],
                       cfo_hz_true=truth["true_cfo_hz"], nominal_snr_db=truth["nominal_snr_db"],
                       nominal_delay_spread_s=truth["nominal_delay_spread_s"])
        if f.status != "ok" or f.header is None:
            self.counts["not_decoded"] += 1
            self.run.event("frame_not_decoded", status=f.status, start=f.start)
            self.run.result(frame_id=None, **row)
            return row
        frame_id = unwrap_frame_id(f.header.frame_id, self.last_frame_id)
        row["frame_id"] = frame_id
        if frame_id in self.decoded:  # a cyclic (Pluto) transmission repeats the same frame
            self.counts["repeats"] += 1
            return row
        latency = {"receive": round(receive_ms, 3)}
        if truth is not None and "channel_ms" in truth:
            latency["channel"] = truth["channel_ms"]
        t = time.perf_counter()
        self.publisher.publish(frame_id=frame_id, snr_db=f.snr_db, delay_spread_s=f.delay_spread_s,
                               cfo_hz=f.cfo_hz, noise_var=float(np.mean(f.noise_var)),
                               delay_spread_below_resolution=f.delay_spread_below_resolution)
        latency["feedback"] = round((time.perf_counter() - t) * 1e3, 3)
        if f.header.payload_len != self.knowledge.num_symbols:
            self.counts["not_decoded"] += 1
            self.run.event("wrong_payload_length", frame_id=frame_id, payload_len=f.header.payload_len,
                           expected=self.knowledge.num_symbols)
            self.run.result(**row, latency_ms=latency)
            return row
        header_cond = (f.header.snr_db, f.header.delay_spread_s)
        use_header = self.config.user.decoder_condition == "header" and None not in header_cond
        own = self.knowledge.condition_domain.apply(f.snr_db, f.delay_spread_s, f.delay_spread_below_resolution)
        t = time.perf_counter()
        lat_est, gates_est = self.knowledge.decode(f.symbols, f.noise_var, *own.as_tuple())
        latency["decode"] = round((time.perf_counter() - t) * 1e3, 3)
        lat_hdr = gates_hdr = None
        if None not in header_cond:
            header_mapped = self.knowledge.condition_domain.apply(*header_cond)
            lat_hdr, gates_hdr = self.knowledge.decode(f.symbols, f.noise_var, *header_mapped.as_tuple())
        chosen = lat_hdr if use_header else lat_est
        t = time.perf_counter()
        image = self.knowledge.to_image(chosen)
        latency["vae_decode"] = round((time.perf_counter() - t) * 1e3, 3)
        ref = self.run.root / "refs" / f"frame_{frame_id:06d}.safetensors"
        metrics = self.knowledge.measure(chosen, image, ref)
        if not metrics:  # no reference here (two hosts): keep the latent for `dekag-testbed report`
            (self.run.root / "rx").mkdir(exist_ok=True)
            self.knowledge.save_latent(chosen, self.run.root / "rx" / ref.name)
        if lat_hdr is not None:
            other = self.knowledge.measure(lat_est if use_header else lat_hdr, None, ref)
            key = "psnr_latent_estimate_db" if use_header else "psnr_latent_header_db"
            if "psnr_latent_db" in other:
                metrics[key] = other["psnr_latent_db"]
        if self.config.user.save_images:
            self.knowledge.save_image(image, self.run.images / f"frame_{frame_id:06d}_rx.png")
        self._save_link_snapshot(f)
        self.decoded.add(frame_id)
        self.last_frame_id = frame_id
        self.counts["decoded"] += 1
        row.update(enc_snr_db=f.header.snr_db, enc_delay_spread_s=f.header.delay_spread_s,
                   dec_snr_db=own.snr_db, dec_delay_spread_s=own.delay_spread_s,
                   dec_condition_applied=list(own.applied),
                   decoder_condition="header" if use_header else "estimate", gates=gates_hdr if use_header
                   else gates_est, noise_var_mean=float(np.mean(f.noise_var)), latency_ms=latency, **metrics)
        self.run.result(**row)
        return row

    def _save_link_snapshot(self, f: ReceivedFrame) -> None:
        """The latest decoded frame's equalised symbols and estimated impulse response, for the report's
        constellation and power-delay-profile figures."""
        cfg = self.config.frame
        grid = np.zeros(cfg.fft_size, np.complex64)
        grid[used_subcarriers(cfg) % cfg.fft_size] = f.channel
        cir = np.fft.ifft(grid)[: 2 * cfg.cp_length]
        for name, values, extra in (("constellation", f.symbols, {}),
                                    ("pdp", cir, {"sample_rate_hz": cfg.sample_rate_hz})):
            data = {"frame_id": f.header.frame_id, "re": values.real.tolist(), "im": values.imag.tolist(), **extra}
            (self.run.figures / f"{name}.json").write_text(json.dumps(data))

    def finish(self) -> list[dict]:
        """End of stream: handle what the receiver still holds (a frame cut short is counted)."""
        return [self._handle(f, 0.0) for f in self.receiver.flush()]

    @property
    def done(self) -> bool:
        last = self.config.edge.num_frames - 1
        return self.last_frame_id is not None and self.last_frame_id >= last


def run_user_node(node: UserNode, backend: RadioBackend, on_first_contact=None) -> dict[str, int]:
    """Read ``backend`` until the last configured frame is decoded; ``on_first_contact()`` runs once after the
    first read (samples or a timeout: e.g. shorten start-up timeouts). A peer that times out
    ``link.max_peer_timeouts`` times in a row ends the node with :class:`PeerLost` (after the ``stop`` event)."""
    node.run.event("start")
    chunk = node.config.link.chunk_samples
    peer = PeerWatch(node.config.link.max_peer_timeouts)
    first = True
    try:
        while not node.done:
            try:
                samples = backend.receive(chunk)
                peer.ok()
            except PeerTimeout as exc:
                node.run.event("peer_timeout", error=str(exc), **node.counts)
                samples = None
                peer.timed_out(exc)
            finally:
                if first and on_first_contact is not None:
                    on_first_contact()
                first = False
            if samples is not None:
                node.process(samples)
    except PeerLost as exc:
        node.run.event("peer_lost", error=str(exc), **node.counts)
        raise
    finally:
        node.finish()
        counters = {**node.counts, **{f"rx_{k}": v for k, v in node.receiver.stats.as_dict().items()}}
        node.run.event("stop", **counters)
    return counters
