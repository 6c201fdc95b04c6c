"""Study ``staleness``: CALA (and the digital baseline's MCS) on CSI 0, 1, 4 and 16 frames old, under Doppler.

One burst of frames goes through one emulator call, so the channel evolves continuously from frame to frame
(Sionna TDL with the terminal moving at ``speed``; at 2.4 GHz and 30 m/s the Doppler is 240 Hz and the
channel decorrelates within about two frames of ``frame_period_samples``). The burst is sent twice with the
same seed — the same channel and the same noise, whatever the frames carry: first with a probe encoding to
learn what the receiver estimates on every frame, then once per CSI age, each frame encoded on the estimate
of the frame ``age`` frames earlier, delivered through the real ZeroMQ feedback (CsiPublisher → CsiSubscriber)
just before it is encoded. Age 0 is the frame's own estimate (current CSI). The decoder is always gated on its
own estimate; the digital baseline reads its MCS from the header. Only frames that have a report ``max(ages)``
frames back are counted, the same frames for every age.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dekag.jscc.codec import symbols_from_numpy, symbols_to_numpy
from experiments.closed_loop import FeedbackPath, header_quantised
from experiments.frame_link import TAIL_SAMPLES, unbiased
from experiments.studies.base import (StudyConfig, chance_psnr, context, frames_of, markdown_table, per_method_psnr,
                                      plot_curves, write_summary)
from experiments.sweep import Task, grid
from radio.emulator import Emulator, EmulatorConfig
from radio.impairments import Impairments


@dataclass
class Config(StudyConfig):
    """The ``staleness`` grid: :class:`~experiments.studies.base.StudyConfig` plus

    Attributes:
        speeds_mps: terminal speeds (m/s), one grid axis.
        ages: CSI ages in frames.
        frame_period_samples: samples from one frame's start to the next (frame + guard).
    """

    snr_db: list[float] = field(default_factory=lambda: [5.0, 15.0])
    delay_spread_ns: list[float] = field(default_factory=lambda: [300.0])
    profiles: list[str] = field(default_factory=lambda: ["A", "C"])
    frames: int = 16
    speeds_mps: list[float] = field(default_factory=lambda: [0.0, 3.0, 30.0])
    ages: list[int] = field(default_factory=lambda: [0, 1, 4, 16])
    frame_period_samples: int = 4096

    def validate(self) -> None:
        super().validate()
        if not self.ages or min(self.ages) < 0 or max(self.ages) > 256:
            raise ValueError(f"ages must be in [0, 256], got {self.ages}")
        if any(not 0 <= v <= 500 for v in self.speeds_mps):
            raise ValueError(f"speeds_mps must be in [0, 500], got {self.speeds_mps}")


SMOKE = Config(tka_run="", latents="", snr_db=[10.0], profiles=["C"], frames=3, speeds_mps=[30.0], ages=[0, 1])


def tasks(cfg: Config, config_path: str) -> list[Task]:
    points = [{"config": config_path, "snr_db": s, "delay_spread_ns": d, "profile": p, "speed_mps": v}
              for p in cfg.profiles for v in cfg.speeds_mps for s in cfg.snr_db for d in cfg.delay_spread_ns]
    return grid(points, cfg.seeds, ["all"])


class _Burst:
    """Frames of one grid point sent as one burst through one (reproducible) emulator realisation."""

    def __init__(self, ctx, point: dict, seed: int, period: int):
        self.ctx, self.period = ctx, period
        self.config = EmulatorConfig(profile=f"TDL-{point['profile']}", snr_db=point["snr_db"],
                                     delay_spread_s=point["delay_spread_ns"] * 1e-9, min_speed_mps=point["speed_mps"],
                                     max_speed_mps=point["speed_mps"], impairments=Impairments.typical(),
                                     seed=zlib.crc32(f"{seed}|{sorted(point.items())}".encode()))

    def send(self, symbols: list[np.ndarray], conditions: list[tuple[float, float]]) -> dict[int, object]:
        """Transmit every frame in one burst; returns frame index → the receiver's "ok" frame."""
        tx, frame_cfg = self.ctx.pipeline.transmitter, self.ctx.pipeline.frame
        burst = []
        for j, (s, c) in enumerate(zip(symbols, conditions, strict=True)):
            iq = tx.modulate(s, frame_id=j, condition=c)
            if iq.size > self.period:
                raise ValueError(f"frame_period_samples {self.period} is shorter than a frame ({iq.size})")
            burst.append(np.concatenate([iq, np.zeros(self.period - iq.size, np.complex64)]))
        burst.append(np.zeros(TAIL_SAMPLES, np.complex64))
        rx_iq, _ = Emulator(frame_cfg, self.config)(np.concatenate(burst))
        receiver = self.ctx.pipeline.receiver
        receiver.reset()
        return {f.header.frame_id: f for f in receiver.receive(rx_iq, final=True)
                if f.status == "ok" and f.header is not None and f.header.payload_len == symbols[0].size}


@torch.no_grad()
def evaluate(point: dict, seed: int, method: str) -> dict:
    ctx = context(point["config"])
    cfg = Config.load(point["config"])
    c, d = ctx.codecs, ctx.codecs.domain
    first = max(cfg.ages)
    n = first + cfg.frames
    z = frames_of(ctx, seed, n, zlib.crc32(str(sorted(point.items())).encode()) % 997)
    burst = _Burst(ctx, point, seed, cfg.frame_period_samples)
    probe = [symbols_to_numpy(c.cala.encode(z[j:j + 1], d.centre)[0]) for j in range(n)]
    estimates = {j: (f.snr_db, f.delay_spread_s, f.delay_spread_below_resolution)
                 for j, f in burst.send(probe, [d.centre] * n).items()}
    mean = c.cala.latent_mean[None, :, None, None]
    mse: dict[str, list[float]] = {}
    for age in cfg.ages:
        conditions = _stale_conditions(estimates, age, n, d)
        for name, codec in (("CALA", c.cala), ("digital baseline", c.digital)):
            if codec is None:
                continue
            conds = [header_quantised(x) for x in conditions] if name != "CALA" else conditions
            frames = burst.send([symbols_to_numpy(codec.encode(z[j:j + 1], conds[j])[0]) for j in range(n)], conds)
            for j in range(first, n):
                rec = _decode(codec, frames.get(j), d, digital=name != "CALA")
                rec = mean if rec is None else rec
                mse.setdefault(f"{name}, CSI {age} frames old", []).append(float(((rec - z[j:j + 1]) ** 2).mean()))
    return {"mse": mse, "estimated_snr_db": [estimates.get(j, (None,))[0] for j in range(n)]}


def _stale_conditions(estimates: dict, age: int, n: int, domain) -> list[tuple[float, float]]:
    """The encoder's condition for each frame: the report on frame j − age, through the ZeroMQ feedback (an
    older one when that frame was lost; the fallback before any)."""
    feedback = FeedbackPath(domain.centre)
    try:
        out = []
        for j in range(n):
            if j - age in estimates:
                feedback.report(*estimates[j - age])
            out.append(domain.apply(*feedback.condition()).as_tuple())
        return out
    finally:
        feedback.close()


def _decode(codec, frame, domain, digital: bool):
    if frame is None:
        return None
    s, nv = unbiased(frame.symbols, frame.noise_var)
    condition = ((frame.header.snr_db, frame.header.delay_spread_s) if digital
                 else domain.apply(frame.snr_db, frame.delay_spread_s).as_tuple())
    return codec.decode(symbols_from_numpy(s, codec.num_symbols), torch.from_numpy(nv)[None], condition)


def report(cfg: Config, rows: list[dict], out: Path) -> str:
    ctx = context(str((out / "config.toml").resolve()))
    chance = chance_psnr(ctx)
    lines = ["# Study `staleness`: CSI 0–16 frames old under Doppler, through the ZeroMQ feedback", "",
             f"Latents: {ctx.source}. Latent PSNR (peak {ctx.peak:.2f}), lost frames counted at chance "
             f"({chance:.2f} dB); frame period {cfg.frame_period_samples} samples "
             f"({cfg.frame_period_samples / ctx.pipeline.frame.sample_rate_hz * 1e3:.2f} ms).", ""]
    summary = {"study": "staleness", "latents": ctx.source, "peak": ctx.peak, "chance_db": chance, "by_speed": {}}
    for v in cfg.speeds_mps:
        sub = [r for r in rows if r["point"]["speed_mps"] == v]
        curves = per_method_psnr(sub, ctx.peak)
        summary["by_speed"][f"{v:g}"] = curves
        doppler = v / 299_792_458 * 2.4e9
        lines += [f"## {v:g} m/s (Doppler {doppler:.0f} Hz at 2.4 GHz)", "", markdown_table(curves, "SNR dB"), ""]
        plot_curves(curves, chance, f"CSI age under Doppler: {v:g} m/s ({doppler:.0f} Hz)", "nominal SNR (dB)",
                    out / f"psnr_vs_snr_{v:g}mps.png",
                    styles={k: "--s" for k in curves if k.startswith("digital")})
        lines += [f"![{v:g} m/s](psnr_vs_snr_{v:g}mps.png)", ""]
    write_summary(out, summary)
    lines += ["What it shows: how much older CSI costs when the channel moves between frames — for CALA's gates,",
              "and for the digital baseline, whose MCS picked from old CSI either wastes rate or falls off its cliff."]
    return "\n".join(lines)
