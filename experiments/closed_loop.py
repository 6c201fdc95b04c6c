"""The closed-loop evaluation: JSCC codecs over the real frame pipeline with the CSI the loop really has.

Each frame is ``radio.Transmitter`` → ``radio.Emulator`` (Sionna TDL, every Pluto-like impairment) →
``radio.Receiver`` → unbiasing → the codec's decoder. For one grid cell (nominal SNR, delay spread,
TDL profile) and frame ``j`` every method sees the *same* channel realisation and noise (one emulator
seed per cell and frame), so methods differ only in what they send and how they decode:

* ``cala_estimated``: CALA with the encoder gated on the receiver's estimate of the previous frame, carried
  by the real ZeroMQ feedback (:class:`radio.feedback.CsiPublisher` → :class:`~radio.feedback.CsiSubscriber`,
  one frame old), the decoder on its own estimate of this frame — the testbed's loop;
* ``cala_genie``: both ends gated on this frame's true realised condition;
* ``cala_fixed@S``: both ends held at one gate (SNR ``S`` dB, the below-resolution delay spread);
* ``enc_only@S`` / ``dec_only@S``: only the encoder (resp. decoder) follows the CSI, the other end at gate S;
* ``base`` (a), ``mismatch`` (b), ``oracle`` (c, the oracle trained at this cell's SNR, where there is one);
* ``blind_estimated`` / ``blind_fixed@S``: the same with a decoder that does not read the noise variance;
* ``reference_estimated``: a reference codec (e.g. one trained through the Sionna channel) in the same loop;
* ``digital_estimated`` / ``digital_genie``: the digital baseline (:mod:`dekag.digital`: quantised latent,
  CRC, 5G LDPC, QAM) with its MCS chosen from the fed-back estimate (resp. the true realised SNR) and read back
  by the decoder from the frame header's condition — the same frames, the same number of channel uses.

``groups`` selects what runs: "estimated", "genie", "fixed", "ablations" (encoder-/decoder-only), "baselines"
((a), (b), (c)), "blind", "reference", "digital" (default: all that have a codec).

Every condition passes the codec's :class:`~dekag.jscc.condition_domain.ConditionDomain`. A lost frame
(not detected, header failed) is *counted*: its reconstruction is the latent mean (what a user without
the frame can best guess), so loss shows up as error, not as a smaller sample.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dekag.jscc.codec import JsccCodec, symbols_from_numpy, symbols_to_numpy
from dekag.jscc.condition_domain import ConditionDomain
from experiments.frame_link import FrameLink, FramePipeline, unbiased
from radio.feedback import Condition as FeedbackCondition
from radio.feedback import CsiPublisher, CsiSubscriber, free_tcp_endpoint

FIXED_GATES_DB = (0.0, 5.0, 10.0, 15.0, 20.0)


@dataclass
class CodecSet:
    """The codecs one evaluation compares (each in eval mode; optional ones may be None).

    Attributes:
        cala: the CALA codec under test (trained through the link the loop uses).
        domain: its condition domain (all codecs here share it).
        base, mismatch, blind_base, blind_cala, reference: baselines and ablations.
        oracles: SNR dB → codec trained at that SNR only.
    """

    cala: JsccCodec
    domain: ConditionDomain
    base: JsccCodec | None = None
    mismatch: JsccCodec | None = None
    blind_base: JsccCodec | None = None
    blind_cala: JsccCodec | None = None
    reference: JsccCodec | None = None
    digital: object | None = None
    oracles: dict[float, JsccCodec] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    """One grid point: nominal SNR (dB), RMS delay spread (s) and TDL profile ("TDL-A" …)."""

    snr_db: float
    delay_spread_s: float
    profile: str

    @property
    def key(self) -> str:
        return f"{self.profile}|{self.snr_db:g}dB|{self.delay_spread_s * 1e9:g}ns"


def frame_seed(cell: Cell, index: int, seed: int = 0) -> int:
    """Emulator seed of frame ``index`` of ``cell``: the same realisation for every method."""
    return zlib.crc32(f"{seed}|{cell.key}|{index}".encode())


class FeedbackPath:
    """The real ZeroMQ CSI path on loopback: the user publishes its estimate, the edge reads the newest."""

    def __init__(self, fallback: tuple[float, float]):
        endpoint = free_tcp_endpoint()
        self.publisher = CsiPublisher(endpoint)
        self.subscriber = CsiSubscriber(endpoint, max_age_s=60.0, fallback=FeedbackCondition(*fallback))
        self.publisher.publish_until_received(self.subscriber, frame_id=0, snr_db=fallback[0],
                                              delay_spread_s=fallback[1])
        self._frame_id = 0

    def report(self, snr_db: float, delay_spread_s: float, below_resolution: bool) -> None:
        """Publish one estimate (with the receiver's below-resolution flag) and wait (≤ 2 s) until the edge side
        holds it."""
        self._frame_id += 1
        self.publisher.publish(frame_id=self._frame_id, snr_db=snr_db, delay_spread_s=delay_spread_s,
                               delay_spread_below_resolution=below_resolution)
        for _ in range(200):
            self.subscriber.poll(0.01)
            if self.subscriber.latest is not None and self.subscriber.latest.frame_id == self._frame_id:
                return
        raise TimeoutError("CSI report not delivered over loopback within 2 s")

    def condition(self) -> tuple[float, float, bool]:
        """The newest report's SNR (dB), delay spread (s) and below-resolution flag."""
        c = self.subscriber.condition().condition
        return (c.snr_db, c.delay_spread_s, c.delay_spread_below_resolution)

    def close(self) -> None:
        self.publisher.close()
        self.subscriber.close()


class ClosedLoop:
    """Runs cells of the evaluation; rows are plain dicts (one per method and frame).

    Args:
        pipeline: the frame pipeline (numerology, impairments, receiver).
        codecs: what to compare.
        fixed_gates_db: SNR gates of the fixed-gate methods.
        seed: offsets every frame seed (a second seed gives other realisations).
        groups: method groups to run (see the module docstring); None = all.
    """

    def __init__(self, pipeline: FramePipeline, codecs: CodecSet, fixed_gates_db: Iterable[float] = FIXED_GATES_DB,
                 seed: int = 0, groups: Iterable[str] | None = None):
        self.pipeline = pipeline
        self.codecs = codecs
        self.domain = codecs.domain
        self.fixed_gates = [(float(g), self.domain.below_resolution_value) for g in fixed_gates_db]
        self.seed = seed
        self.groups = None if groups is None else set(groups)

    def _want(self, group: str) -> bool:
        return self.groups is None or group in self.groups

    @torch.no_grad()
    def run_cell(self, cell: Cell, latents: torch.Tensor) -> list[dict]:
        """Rows for ``latents`` [N, C, H, W] sent as N consecutive frames of ``cell`` (plus one warm-up
        frame that primes the feedback, not counted). Each row holds ``mse`` (latent mean squared error)
        and ``reconstruction`` (the decoded latent [1, C, H, W], the latent mean for a lost frame)."""
        feedback = FeedbackPath(self.domain.centre)
        try:
            self._frame(cell, -1, latents[:1], feedback)   # warm-up: the first counted frame has fresh CSI
            rows: list[dict] = []
            for j in range(len(latents)):
                rows += self._frame(cell, j, latents[j:j + 1], feedback)
            return rows
        finally:
            feedback.close()

    def _own_condition(self, frame) -> tuple[float, float] | None:
        """The codec condition of a received frame's own estimate (its below-resolution flag included), as the user
        node maps it; ``None`` for a lost frame."""
        if frame is None:
            return None
        return self.domain.apply(frame.snr_db, frame.delay_spread_s, frame.delay_spread_below_resolution).as_tuple()

    # -- one frame, every method --------------------------------------------------------------------------
    def _frame(self, cell: Cell, j: int, z: torch.Tensor, feedback: FeedbackPath) -> list[dict]:
        c, d = self.codecs, self.domain
        seed = frame_seed(cell, j, self.seed)
        send = self._sender(cell, seed, j)
        enc_fb = d.apply(*feedback.condition()).as_tuple()
        frame, truth = send(c.cala, z, enc_fb)
        if frame is not None:
            feedback.report(frame.snr_db, frame.delay_spread_s, frame.delay_spread_below_resolution)
        if j < 0:
            return []
        genie = d.apply(truth.snr_db, truth.delay_spread_s).as_tuple()
        own = self._own_condition(frame)
        mean = c.cala.latent_mean[None, :, None, None].expand_as(z)
        out: list[dict] = []
        base = {"cell": cell.key, "profile": cell.profile, "snr_db": cell.snr_db, "delay_spread_s": cell.delay_spread_s,
                "frame": j, "true_snr_db": truth.snr_db, "true_delay_spread_s": truth.delay_spread_s,
                "est_snr_db": None if frame is None else frame.snr_db,
                "est_delay_spread_s": None if frame is None else frame.delay_spread_s,
                "est_delay_spread_below_resolution": None if frame is None else frame.delay_spread_below_resolution,
                "enc_feedback_snr_db": enc_fb[0], "enc_feedback_delay_spread_s": enc_fb[1]}

        def row(method: str, rec: torch.Tensor | None) -> None:
            """A lost frame (rec None) is reconstructed as the latent mean: its error counts."""
            rec = mean if rec is None else rec
            out.append({**base, "method": method, "received": rec is not mean,
                        "mse": float(((rec - z) ** 2).mean()), "reconstruction": rec})

        if self._want("estimated"):
            row("cala_estimated", self._decode(c.cala, frame, own))
        if self._want("ablations"):
            for g in self.fixed_gates:
                row(f"enc_only@{g[0]:g}", self._decode(c.cala, frame, g))
        if self._want("genie"):
            f_genie, _ = send(c.cala, z, genie)
            row("cala_genie", self._decode(c.cala, f_genie, genie))
        for g in self.fixed_gates if self._want("fixed") or self._want("ablations") else ():
            f_fix, _ = send(c.cala, z, g)
            own_fix = self._own_condition(f_fix)
            if self._want("fixed"):
                row(f"cala_fixed@{g[0]:g}", self._decode(c.cala, f_fix, g))
            if self._want("ablations"):
                row(f"dec_only@{g[0]:g}", self._decode(c.cala, f_fix, own_fix))
        for name, codec in (("base", c.base), ("mismatch", c.mismatch), ("blind_base", c.blind_base),
                            ("oracle", c.oracles.get(cell.snr_db))):
            if codec is not None and self._want("blind" if name == "blind_base" else "baselines"):
                f_b, _ = send(codec, z, d.centre)
                row(name, self._decode(codec, f_b, d.centre))
        if c.digital is not None and self._want("digital"):
            for name, cond in (("digital_estimated", enc_fb), ("digital_genie", (truth.snr_db, genie[1]))):
                f_d, _ = send(c.digital, z, header_quantised(cond))
                row(name, None if f_d is None else self._decode_digital(c.digital, f_d))
        for name, codec in (("blind", c.blind_cala), ("reference", c.reference)):
            if codec is None or not self._want(name):
                continue
            f_e, _ = send(codec, z, enc_fb)
            own_e = self._own_condition(f_e)
            row(f"{name}_estimated", self._decode(codec, f_e, own_e))
            if name == "blind":
                for g in self.fixed_gates:
                    f_g, _ = send(codec, z, g)
                    row(f"blind_fixed@{g[0]:g}", self._decode(codec, f_g, g))
        return out

    @torch.no_grad()
    def sweep_gates(self, cell: Cell, latents: torch.Tensor, gates: list[tuple[float, float]]) -> list[dict]:
        """The CALA codec with both ends held at each gate (SNR dB, delay spread s) in turn, every gate on
        the same realisations: rows with ``gate_snr_db``, ``gate_delay_spread_s`` and ``mse`` (lost frames
        counted as the latent mean)."""
        codec = self.codecs.cala
        rows = []
        for j in range(len(latents)):
            z = latents[j:j + 1]
            send = self._sender(cell, frame_seed(cell, j, self.seed + 1), j)
            mean = codec.latent_mean[None, :, None, None].expand_as(z)
            for g in gates:
                frame, _ = send(codec, z, g)
                rec = self._decode(codec, frame, g)
                rows.append({"cell": cell.key, "snr_db": cell.snr_db, "delay_spread_s": cell.delay_spread_s,
                             "profile": cell.profile, "frame": j, "gate_snr_db": g[0], "gate_delay_spread_s": g[1],
                             "received": rec is not None,
                             "mse": float((((mean if rec is None else rec) - z) ** 2).mean())})
        return rows

    @staticmethod
    def _decode_digital(codec, frame) -> torch.Tensor:
        """The digital decoder reads its MCS from the condition the frame header carries."""
        s, nv = unbiased(frame.symbols, frame.noise_var)
        condition = (frame.header.snr_db, frame.header.delay_spread_s)
        return codec.decode(symbols_from_numpy(s, codec.num_symbols), torch.from_numpy(nv)[None], condition)

    def _sender(self, cell: Cell, seed: int, j: int) -> Callable:
        def send(codec: JsccCodec, z: torch.Tensor, condition: tuple[float, float]):
            symbols = symbols_to_numpy(codec.encode(z, condition)[0])
            emulator = self.pipeline.emulator(cell.profile, cell.snr_db, cell.delay_spread_s, seed)
            return self.pipeline.send(symbols, j % 65536, condition, emulator)
        return send

    @staticmethod
    def _decode(codec: JsccCodec, frame, condition) -> torch.Tensor | None:
        if frame is None:
            return None
        s, nv = unbiased(frame.symbols, frame.noise_var)
        return codec.decode(symbols_from_numpy(s, codec.num_symbols), torch.from_numpy(nv)[None], condition)


def load_codec_set(tka_run: Path | None, dl, reference=None) -> tuple[CodecSet, dict[str, int], object]:
    """The codecs of a T-KA run (CALA = ``cala_<gate>``; without a run the package's codec) beside the
    reference package's; budgets per stage."""
    if tka_run is None:
        return CodecSet(cala=dl.codec, domain=dl.condition_domain, reference=reference), {}, None
    from dekag.jscc.config import TkaConfig
    from dekag.jscc.train import load_stage, stage_budget, stages

    cfg = TkaConfig.load(tka_run / "config.toml")
    link = FrameLink(cfg.channel, cfg.codec.num_symbols) if cfg.training.link == "frames" else None  # budgets only
    schedule = stages(cfg, link) if link is not None else []
    budget = stage_budget(schedule) if schedule else {}

    def stage(name: str):
        return load_stage(tka_run, name, cfg) if (tka_run / f"{name}.safetensors").is_file() else None

    gate = cfg.training.cala_gates[0]
    oracles = {s: stage(f"oracle_{s:g}dB_{cfg.training.oracle_delay_spread_s[0] * 1e9:g}ns")
               for s in cfg.training.oracle_snr_db} if cfg.training.oracle_delay_spread_s else {}
    codecs = CodecSet(cala=stage(f"cala_{gate}"), domain=cfg.channel.condition_domain, base=stage("base"),
                      mismatch=stage("mismatch"), blind_base=stage("blind_base"), blind_cala=stage("blind_cala"),
                      reference=reference, oracles={s: c for s, c in oracles.items() if c is not None})
    return codecs, budget, cfg


def held_out_latents(path: str | None, cfg) -> tuple[torch.Tensor, float, str]:
    """(held-out latents, PSNR peak, description): the T-KA run's (``cfg``) test split of the latents file;
    without a file, 8 VAE latents of the miniature world."""
    from dekag.jscc.latents import latent_file, vae_latents

    if path is None:
        z = vae_latents().latents[:8]
        return z, float(z.max() - z.min()), "miniature VAE latents (no S_EG file given)"
    data = latent_file(path)
    seed, frac = (cfg.training.seed, cfg.training.test_fraction) if cfg is not None else (0, 0.1)
    _, test = data.split(frac, seed)
    return test, float(data.latents.max() - data.latents.min()), f"{path}: held-out split ({len(test)} latents)"


def header_quantised(condition: tuple[float, float]) -> tuple[float, float]:
    """The condition as the frame header carries it (SNR in 0.25 dB steps, delay spread in 1 ns steps), so
    the digital encoder picks its MCS from exactly what the decoder will read."""
    return (round(condition[0] * 4) / 4, max(round(condition[1] * 1e9), 1) * 1e-9)


def psnr_db(mse: float, peak: float) -> float:
    """10·log10(peak² / mse)."""
    return 10 * math.log10(peak * peak / mse) if mse > 0 else math.inf


def summarise(rows: list[dict], peak: float) -> dict[str, dict]:
    """Per method: latent PSNR of each cell (MSE averaged over its frames, lost ones counted) and the grid
    mean of those PSNRs (dB), per-SNR means, frame-loss fraction."""
    by: dict[str, dict[str, list[float]]] = {}
    lost: dict[str, list[bool]] = {}
    snr_of: dict[str, float] = {}
    for r in rows:
        by.setdefault(r["method"], {}).setdefault(r["cell"], []).append(r["mse"])
        lost.setdefault(r["method"], []).append(not r["received"])
        snr_of[r["cell"]] = r["snr_db"]
    out = {}
    for method, cells in by.items():
        per_cell = {k: psnr_db(float(np.mean(v)), peak) for k, v in cells.items()}
        per_snr: dict[float, list[float]] = {}
        for k, v in per_cell.items():
            per_snr.setdefault(snr_of[k], []).append(v)
        out[method] = {"grid_mean_db": float(np.mean(list(per_cell.values()))),
                       "per_snr_db": {f"{s:g}": float(np.mean(v)) for s, v in sorted(per_snr.items())},
                       "per_cell_db": per_cell, "frames": len(lost[method]),
                       "lost_fraction": float(np.mean(lost[method]))}
    return out
