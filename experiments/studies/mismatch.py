"""Study ``mismatch``: codecs trained at one condition, tested across the others over the real frame pipeline.

The T-KA run's codecs (``tka_run``) on the same frames of every grid point: (b) ``mismatch``, trained at one
SNR and delay spread only (the run's ``training.mismatch_*``); (c) each ``oracle``, trained at one SNR (tested
at every SNR here, not only its own); (a) ``base``, trained across conditions; CALA gated on the estimated
CSI; the reference codec trained through the Sionna channel (perfect CSI, no frame losses) — a training
*channel* mismatch; and the digital baseline. PSNR per test SNR and per TDL profile (every codec was trained
on TDL A–E mixed), lost frames counted.
"""
from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

from experiments.closed_loop import Cell, ClosedLoop, CodecSet
from experiments.studies.base import (StudyConfig, chance_psnr, context, frames_of, markdown_table, per_method_psnr,
                                      plot_curves, write_summary)
from experiments.sweep import Task, grid


@dataclass
class Config(StudyConfig):
    """The ``mismatch`` study's grid: :class:`~experiments.studies.base.StudyConfig` plus

    Attributes:
        profile_run: a T-KA run whose ``base`` codec trained on one TDL profile only (the profile mismatch,
            ``experiments/configs/tka_frames_tdl_a.toml``); "" = none.
    """

    profile_run: str = "runs/tka_frames_tdl_a"


SMOKE = Config(tka_run="", latents="", snr_db=[0.0, 20.0], delay_spread_ns=[300.0], profiles=["C"], frames=2,
               profile_run="")


def tasks(cfg: Config, config_path: str) -> list[Task]:
    points = [{"config": config_path, "snr_db": s, "delay_spread_ns": d, "profile": p}
              for p in cfg.profiles for s in cfg.snr_db for d in cfg.delay_spread_ns]
    return grid(points, cfg.seeds, ["all"])


def _codecs_at(ctx, profile_run: str) -> list[tuple[str, CodecSet]]:
    """One CodecSet per trained codec, each playing the loop's 'cala' role with a fixed gate."""
    c = ctx.codecs
    named = [("(a) base", c.base), ("(b) mismatch", c.mismatch)]
    named += [(f"(c) oracle trained at {s:g} dB", o) for s, o in sorted(c.oracles.items())]
    if profile_run:
        named.append(_profile_codec(profile_run))
    return [(n, CodecSet(cala=codec, domain=c.domain)) for n, codec in named if codec is not None]


@functools.lru_cache(maxsize=1)
def _profile_codec(run: str) -> tuple[str, object]:
    """("(b′) trained on TDL-X only", the base codec of a single-profile T-KA run)."""
    from dekag.jscc.config import TkaConfig
    from dekag.jscc.train import load_stage

    if not (Path(run) / "base.safetensors").is_file():
        raise FileNotFoundError(f"profile_run {run} has no trained base codec: train it with "
                                "experiments/configs/tka_frames_tdl_a.toml, or set profile_run = \"\"")
    cfg = TkaConfig.load(Path(run) / "config.toml")
    return f"(b′) trained on TDL-{'/'.join(cfg.channel.tdl_models)} only", load_stage(run, "base", cfg)


@torch.no_grad()
def evaluate(point: dict, seed: int, method: str) -> dict:
    ctx = context(point["config"])
    cell = Cell(point["snr_db"], point["delay_spread_ns"] * 1e-9, f"TDL-{point['profile']}")
    z = frames_of(ctx, seed, Config.load(point["config"]).frames, zlib.crc32(cell.key.encode()) % 997)
    mse: dict[str, list[float]] = {}
    loop = ClosedLoop(ctx.pipeline, ctx.codecs, fixed_gates_db=[], seed=seed,
                      groups={"estimated", "reference", "digital"})
    for r in loop.run_cell(cell, z):
        if r["method"] == "digital_genie":
            continue
        mse.setdefault({"cala_estimated": "CALA, estimated CSI", "reference_estimated":
                        "trained through the Sionna channel", "digital_estimated": "digital baseline"}.get(
                            r["method"], r["method"]), []).append(r["mse"])
    centre = ctx.codecs.domain.centre[0]
    for name, codecs in _codecs_at(ctx, Config.load(point["config"]).profile_run):   # one fixed gate each
        rows = ClosedLoop(ctx.pipeline, codecs, fixed_gates_db=[centre], seed=seed, groups={"fixed"}).run_cell(cell, z)
        mse[name] = [r["mse"] for r in rows]
    return {"mse": mse}


def report(cfg: Config, rows: list[dict], out: Path) -> str:
    ctx = context(str((out / "config.toml").resolve()))
    by_snr = per_method_psnr(rows, ctx.peak)
    by_profile = per_method_psnr(rows, ctx.peak, key="profile") if len(cfg.profiles) > 1 else {}
    chance = chance_psnr(ctx)
    t = ctx.tka_config.training if ctx.tka_config is not None else None
    trained = (f"(b) trained at {t.mismatch_snr_db:g} dB / {t.mismatch_delay_spread_s * 1e9:g} ns; oracles at "
               f"{', '.join(f'{s:g}' for s in t.oracle_snr_db)} dB" if t is not None
               else "no T-KA run: the shipped codec only")
    plot_curves(by_snr, chance, f"Codecs trained at one condition, tested across SNR (real frame pipeline)\n{trained}",
                "test SNR (dB)", out / "psnr_vs_snr.png", styles={"digital baseline": "--s"})
    write_summary(out, {"study": "mismatch", "latents": ctx.source, "peak": ctx.peak, "chance_db": chance,
                        "trained": trained, "psnr_db_by_snr": by_snr, "psnr_db_by_profile": by_profile,
                        "training_steps": ctx.budget, "points": len(rows)})
    lines = ["# Study `mismatch`: trained at one condition, tested across the others", "",
             f"Latents: {ctx.source}. {trained}. Latent PSNR (peak {ctx.peak:.2f}), lost frames counted at "
             f"chance ({chance:.2f} dB). Training steps: {ctx.budget or 'n/a'}.", "",
             markdown_table(by_snr, "test SNR dB"), ""]
    if by_profile:
        lines += ["Per TDL profile (mean over SNR and delay spread; every codec but (b′) trained on TDL A–E mixed):",
                  "",
                  markdown_table(by_profile, "profile"), ""]
    lines += ["What it shows: how far a codec trained at one condition falls behind, at each test SNR, the codec",
              "trained across conditions, the oracle of that SNR and CALA — over the frames, not the training channel.",
              "", "![PSNR vs SNR](psnr_vs_snr.png)", ""]
    return "\n".join(lines)
