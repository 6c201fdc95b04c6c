"""Study ``sim_to_air``: SigMF captures replayed through the receiver and decoder, against the emulator at the
same measured SNR.

Per TX gain point: ``frames`` held-out latents are encoded (CALA at the fallback gate; the digital baseline at
the MCS of the SNR that the JSCC frames of this point measured), sent through a radio — here the
:class:`~radio.backends.FakePluto` behind the real :class:`~radio.backends.PlutoBackend` (DAC scaling, cyclic
TX, gains, 12-bit ADC, receiver noise), with a TDL channel and CFO in its air — and every capture is written
to a SigMF recording (``captures/`` in the study folder; a lab recording made with ``link.record_sigmf``
replays the same way). The recording is then replayed through :class:`~radio.backends.SigMFReplayBackend`,
the receiver and the decoder, and the same symbols go through the emulator (same TDL profile, every
impairment) at the SNR the receiver measured on the capture (median). The gap between the two says how far
the emulator is from the radio it stands in for, at equal measured SNR.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dekag.jscc.codec import symbols_from_numpy, symbols_to_numpy
from experiments.closed_loop import header_quantised
from experiments.frame_link import unbiased
from experiments.studies.base import (StudyConfig, chance_psnr, context, curves_over_measured_snr, frames_of,
                                      markdown_table, write_summary)
from experiments.sweep import Task, grid
from radio.backends import FakePluto, PlutoBackend, PlutoConfig, SigMFRecorder, SigMFReplayBackend
from radio.emulator import Emulator, EmulatorConfig
from radio.impairments import Impairments

GUARD_SAMPLES = 2048


@dataclass
class Config(StudyConfig):
    """The ``sim_to_air`` grid: :class:`~experiments.studies.base.StudyConfig` (its first delay spread and the
    profiles are the air's channel) plus

    Attributes:
        tx_gains_db: the radio's TX gain per point (the fake device: SNR ≈ TX gain + 42.5 dB at RX gain 30 dB).
        rx_gain_db: the radio's RX gain.
    """

    profiles: list[str] = field(default_factory=lambda: ["C"])
    delay_spread_ns: list[float] = field(default_factory=lambda: [300.0])
    tx_gains_db: list[float] = field(default_factory=lambda: [-42.0, -37.0, -32.0, -27.0, -22.0])
    rx_gain_db: float = 30.0


SMOKE = Config(tka_run="", latents="", tx_gains_db=[-37.0, -22.0], frames=2)


def tasks(cfg: Config, config_path: str) -> list[Task]:
    points = [{"config": config_path, "tx_gain_db": g, "profile": p, "delay_spread_ns": cfg.delay_spread_ns[0]}
              for p in cfg.profiles for g in cfg.tx_gains_db]
    return grid(points, cfg.seeds, ["all"])


class _Radio:
    """The fake Pluto with a TDL channel and CFO in its air, recording every capture to SigMF."""

    def __init__(self, ctx, point: dict, cfg: Config, seed: int, path: Path):
        frame = ctx.pipeline.frame
        air = Emulator(frame, EmulatorConfig(profile=f"TDL-{point['profile']}", snr_db=80.0,
                                             delay_spread_s=point["delay_spread_ns"] * 1e-9, seed=seed,
                                             impairments=Impairments(cfo=True, phase_noise=True)))
        device = FakePluto(channel=lambda x: air(np.asarray(x, np.complex64))[0][: len(x)], seed=seed)
        self.backend = PlutoBackend(PlutoConfig(sample_rate_hz=frame.sample_rate_hz, center_frequency_hz=2.4e9,
                                                tx_gain_db=point["tx_gain_db"], rx_gain_db=cfg.rx_gain_db),
                                    device=device)
        self.recorder = SigMFRecorder.for_backend(path, self.backend, frame_config=frame.to_dict(),
                                                  description="sim_to_air study: frames through the fake Pluto")
        self.tx = ctx.pipeline.transmitter

    def send(self, symbols: np.ndarray, frame_id: int, condition: tuple[float, float]) -> int:
        """One frame out and one capture in (recorded); returns the capture's length in samples."""
        iq = self.tx.modulate(symbols, frame_id=frame_id, condition=condition)
        burst = np.concatenate([iq, np.zeros(GUARD_SAMPLES, np.complex64)])
        self.backend.transmit(burst)                                  # cyclic: the capture holds a whole frame
        self.recorder.append(self.backend.receive(2 * burst.size), frame_id=frame_id)
        return 2 * burst.size

    def close(self) -> None:
        self.recorder.close()
        self.backend.close()


def _replay(ctx, path: Path, n: int, sizes: list[int]) -> list[object | None]:
    """Each capture of the recording through the receiver: the frame it holds ("ok"), or None."""
    replay = SigMFReplayBackend(path, expected_sample_rate_hz=ctx.pipeline.frame.sample_rate_hz)
    out = []
    for j in range(n):
        receiver = ctx.pipeline.receiver
        receiver.reset()
        ok = [f for f in receiver.receive(replay.receive(sizes[j]), final=True)
              if f.status == "ok" and f.header is not None and f.header.frame_id == j]
        out.append(ok[0] if ok else None)
    replay.close()
    return out


def _decode(codec, frame, condition):
    s, nv = unbiased(frame.symbols, frame.noise_var)
    return codec.decode(symbols_from_numpy(s, codec.num_symbols), torch.from_numpy(nv)[None], condition)


@torch.no_grad()
def evaluate(point: dict, seed: int, method: str) -> dict:
    ctx = context(point["config"])
    cfg = Config.load(point["config"])
    c, d = ctx.codecs, ctx.codecs.domain
    key = zlib.crc32(f"{seed}|{sorted(point.items())}".encode())
    z = frames_of(ctx, seed, cfg.frames, key % 997)
    mean = c.cala.latent_mean[None, :, None, None]
    captures = Path(point["config"]).parent / "captures"
    mse: dict[str, list[float]] = {}
    measured: list[float] = []
    for name, codec in (("JSCC", c.cala), ("digital baseline", c.digital)):
        if codec is None:
            continue
        snr = float(np.median(measured)) if measured else d.centre[0]
        condition = d.centre if name == "JSCC" else header_quantised((snr, d.centre[1]))
        symbols = [symbols_to_numpy(codec.encode(z[j:j + 1], condition)[0]) for j in range(cfg.frames)]
        path = captures / f"{name.split()[0]}_{point['profile']}_{point['tx_gain_db']:g}dB_seed{seed}"
        for p in captures.glob(path.name + ".sigmf-*"):
            p.unlink()                                                # a rerun of a failed task records anew
        radio = _Radio(ctx, point, cfg, key, path)
        try:
            sizes = [radio.send(s, j, condition) for j, s in enumerate(symbols)]
        finally:
            radio.close()
        frames = _replay(ctx, path, cfg.frames, sizes)
        if name == "JSCC":
            measured = [f.snr_db for f in frames if f is not None]
        gate = (lambda f: d.apply(f.snr_db, f.delay_spread_s).as_tuple()) if name == "JSCC" else \
            (lambda f: (f.header.snr_db, f.header.delay_spread_s))
        mse[f"{name}, replayed capture"] = [
            float((((mean if f is None else _decode(codec, f, gate(f))) - z[j:j + 1]) ** 2).mean())
            for j, f in enumerate(frames)]
        emu_snr = float(np.median(measured)) if measured else -10.0
        errors = []
        for j, s in enumerate(symbols):
            emulator = ctx.pipeline.emulator(f"TDL-{point['profile']}", emu_snr, point["delay_spread_ns"] * 1e-9,
                                             key + j)
            f, _ = ctx.pipeline.send(s, j, condition, emulator)
            errors.append(float((((mean if f is None else _decode(codec, f, gate(f))) - z[j:j + 1]) ** 2).mean()))
        mse[f"{name}, emulator at the measured SNR"] = errors
    return {"mse": mse, "measured_snr_db": float(np.median(measured)) if measured else None,
            "decoded_captures": len(measured)}


def report(cfg: Config, rows: list[dict], out: Path) -> str:
    ctx = context(str((out / "config.toml").resolve()))
    chance = chance_psnr(ctx)
    curves = curves_over_measured_snr(
        rows, ctx, "Replayed SigMF captures (fake Pluto) vs the emulator at the same measured SNR",
        "SNR measured on the capture (dB)", out / "psnr_vs_measured_snr.png")
    gaps = {}
    for codec in ("JSCC", "digital baseline"):
        cap, emu = curves.get(f"{codec}, replayed capture"), curves.get(f"{codec}, emulator at the measured SNR")
        if cap and emu:
            gaps[codec] = {s: cap[s] - emu[s] for s in cap}
    write_summary(out, {"study": "sim_to_air", "latents": ctx.source, "peak": ctx.peak, "chance_db": chance,
                        "psnr_db": curves, "capture_minus_emulator_db": gaps,
                        "points": [{"tx_gain_db": r["point"]["tx_gain_db"], "measured_snr_db": r["measured_snr_db"],
                                    "decoded_captures": r["decoded_captures"]} for r in rows]})
    lines = ["# Study `sim_to_air`: replayed captures vs the emulator at the same measured SNR", "",
             f"Latents: {ctx.source}. Latent PSNR (peak {ctx.peak:.2f}), lost frames counted at chance "
             f"({chance:.2f} dB). Captures: `captures/*.sigmf-meta` (replay any with `dekag-testbed replay`).", "",
             markdown_table(curves, "measured SNR dB"), "",
             "Capture − emulator (dB): " + "; ".join(
                 f"{codec}: " + ", ".join(f"{s} dB {v:+.2f}" for s, v in g.items()) for codec, g in gaps.items()), "",
             "What it shows: whether the emulator stands in for the radio at equal measured SNR — a positive gap",
             "means the emulator is harsher than the radio (its impairments, its fading), a negative one kinder.", "",
             "![PSNR vs measured SNR](psnr_vs_measured_snr.png)", ""]
    return "\n".join(lines)
