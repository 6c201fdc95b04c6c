"""What every study shares: its TOML config, the codecs and latents a worker loads once, the runner and the
report helpers (PSNR with one stated peak, lost frames counted, chance beside every curve).

A study module defines::

    Config          # a StudyConfig subclass (its TOML)
    SMOKE           # a Config for seconds-long runs (CI)
    tasks(cfg, config_path) -> list[experiments.sweep.Task]
    evaluate(point, seed, method) -> dict           # one grid point; module level (workers import it)
    report(cfg, rows, out) -> str                   # writes summary.json and figures, returns report.md's text
"""
from __future__ import annotations

import argparse
import functools
import importlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from common.tomlconfig import ConfigError, TomlConfig
from experiments.closed_loop import CodecSet, held_out_latents, load_codec_set, psnr_db
from experiments.frame_link import FramePipeline, frame_config_for
from experiments.run_folder import read_jsonl
from experiments.sweep import add_sweep_arguments, run_sweep


@dataclass
class StudyConfig(TomlConfig):
    """The grid and the codecs of a study.

    Attributes:
        tka_run: T-KA run folder whose codecs are compared (``training.link = "frames"``); "" = the shipped
            package's codec alone.
        latents: latents file of that run (S_EG); its held-out split is sent. "" = miniature VAE latents.
        snr_db: nominal SNRs (dB, per used subcarrier).
        delay_spread_ns: RMS delay spreads (ns).
        profiles: TDL profiles ("A" … "E").
        frames: frames per grid point and seed.
        seeds: channel seeds (each gives other realisations and other latents).
        digital: run the digital baseline (5G LDPC + QAM, MCS from the same CSI) beside JSCC.
    """

    tka_run: str = "runs/tka_frames"
    latents: str = "runs/seg/latents.safetensors"
    snr_db: list[float] = field(default_factory=lambda: [0.0, 5.0, 10.0, 15.0, 20.0])
    delay_spread_ns: list[float] = field(default_factory=lambda: [30.0, 300.0, 3000.0])
    profiles: list[str] = field(default_factory=lambda: ["A", "C", "E"])
    frames: int = 12
    seeds: list[int] = field(default_factory=lambda: [0])
    digital: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not self.snr_db or not self.delay_spread_ns or not self.profiles or not self.seeds:
            raise ConfigError("snr_db, delay_spread_ns, profiles and seeds must each hold at least one value")
        bad = [p for p in self.profiles if p not in ("A", "B", "C", "D", "E")]
        if bad:
            raise ConfigError(f"profiles must be TDL letters A–E, got {bad}")
        if any(not 0 < d <= 10_000 for d in self.delay_spread_ns):
            raise ConfigError("delay_spread_ns values must be in (0, 10000]")
        if any(not -30 <= s <= 60 for s in self.snr_db):
            raise ConfigError("snr_db values must be in [-30, 60]")
        if not 1 <= self.frames <= 10_000:
            raise ConfigError(f"frames must be in [1, 10000], got {self.frames}")


@dataclass
class Context:
    """What a worker loads once per study config: codecs, held-out latents, PSNR peak, frame pipeline."""

    codecs: CodecSet
    latents: torch.Tensor
    peak: float
    source: str
    pipeline: FramePipeline
    budget: dict[str, int]
    tka_config: object | None
    package_latent_peak: float | None = None
    """The peak the nodes' own latent PSNR uses (the shipped package's ``latent_peak``)."""


@functools.lru_cache(maxsize=2)
def context(config_path: str) -> Context:
    """The study's codecs and latents (cached per worker process)."""
    from dekag.downlink import load_downlink
    from dekag.jscc.config import ChannelConfig

    torch.set_num_threads(1)
    cfg_class = _config_class(config_path)
    cfg = cfg_class.load(config_path)
    dl = load_downlink()
    tka_run = Path(cfg.tka_run) if cfg.tka_run else None
    if tka_run is not None and not (tka_run / "config.toml").is_file():
        raise ConfigError(f"tka_run {tka_run} holds no T-KA run (config.toml); train one with `dekag-testbed train` "
                          "or set tka_run = \"\" to study the shipped codec")
    codecs, budget, tka_cfg = load_codec_set(tka_run, dl)
    latents, peak, source = held_out_latents(cfg.latents or None, tka_cfg)
    if cfg.digital:
        codecs.digital = _digital_codec(codecs, cfg.latents or None, tka_cfg)
    channel = tka_cfg.channel if tka_cfg is not None else ChannelConfig()
    return Context(codecs, latents, peak, source, FramePipeline(frame_config_for(channel)), budget, tka_cfg,
                   dl.latent_peak)


def _digital_codec(codecs: CodecSet, latents_path: str | None, tka_cfg):
    """The digital baseline for the same latent shape and K, its quantiser fitted on the training split."""
    from dekag.digital import DigitalCodec, DigitalCodecConfig
    from dekag.jscc.latents import latent_file, vae_latents

    data = latent_file(latents_path) if latents_path else vae_latents()
    seed, frac = (tka_cfg.training.seed, tka_cfg.training.test_fraction) if tka_cfg is not None else (0, 0.1)
    train, _ = data.split(frac, seed)
    digital = DigitalCodec(DigitalCodecConfig.matching(codecs.cala.config))
    digital.set_latent_stats(train)
    return digital


def _config_class(config_path: str) -> type[StudyConfig]:
    """The study's Config class, from the ``study`` name stored beside the config (``study.txt``)."""
    name = (Path(config_path).parent / "study.txt").read_text().strip()
    from experiments.studies import STUDIES
    return importlib.import_module(STUDIES[name]).Config


def frames_of(ctx: Context, seed: int, frames: int, offset: int = 0) -> torch.Tensor:
    """``frames`` held-out latents for one grid point and seed (a different slice per seed and point)."""
    n = len(ctx.latents)
    start = (seed * 7919 + offset * frames) % n
    return ctx.latents[(start + torch.arange(frames)) % n]


# -- summaries and figures ---------------------------------------------------------------------------------
def per_method_psnr(rows: list[dict], peak: float, key: str = "snr_db") -> dict[str, dict[str, float]]:
    """method → {value of ``key``: latent PSNR (dB) of the MSE averaged over every frame at that value}."""
    acc: dict[str, dict[float, list[float]]] = {}
    for r in rows:
        for method, mses in r["mse"].items():
            acc.setdefault(method, {}).setdefault(r["point"][key], []).extend(mses)
    label = (lambda k: f"{k:g}") if key != "profile" else str
    return {m: {label(k): psnr_db(float(np.mean(v)), peak) for k, v in sorted(by.items())} for m, by in acc.items()}


def chance_psnr(ctx: Context) -> float:
    """PSNR of sending nothing: every latent reconstructed as the codec's latent mean."""
    mean = ctx.codecs.cala.latent_mean[None, :, None, None]
    return psnr_db(float(((ctx.latents - mean) ** 2).mean()), ctx.peak)


def plot_curves(curves: dict[str, dict[str, float]], chance: float, title: str, xlabel: str, path: Path,
                styles: dict[str, str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in curves.items():
        xs = sorted(curve, key=float)
        ax.plot([float(x) for x in xs], [curve[x] for x in xs], (styles or {}).get(name, "-o"), label=name)
    ax.axhline(chance, color="grey", ls=":", label="chance (latent mean: nothing received)")
    ax.set(xlabel=xlabel, ylabel="latent PSNR (dB), lost frames counted", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves_over_measured_snr(rows: list[dict], ctx: Context, title: str, xlabel: str, path: Path) -> dict:
    """Per-method PSNR keyed by the SNR the receiver measured on each point (over the air there is no other
    truth), plotted to ``path`` with the digital baseline dashed."""
    for r in rows:
        r["point"] = {**r["point"], "measured_snr_db": round(r["measured_snr_db"], 1)
                      if r["measured_snr_db"] is not None else -99.0}
    curves = per_method_psnr(rows, ctx.peak, key="measured_snr_db")
    plot_curves(curves, chance_psnr(ctx), title, xlabel, path,
                styles={k: "--s" for k in curves if k.startswith("digital")})
    return curves


def markdown_table(curves: dict[str, dict[str, float]], xlabel: str) -> str:
    keys = {x for c in curves.values() for x in c}
    xs = sorted(keys, key=float) if all(_is_number(x) for x in keys) else sorted(keys)
    lines = [f"| method \\ {xlabel} | " + " | ".join(xs) + " |", "|---|" + "---:|" * len(xs)]
    for name, c in curves.items():
        lines.append(f"| {name} | " + " | ".join(f"{c[x]:.2f}" if x in c else "" for x in xs) + " |")
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# -- runner ------------------------------------------------------------------------------------------------
def run_study(name: str, cfg: StudyConfig, out: Path, workers: int | None = None, cluster: str | None = None,
              progress: bool = True) -> Path:
    """Run (or resume) study ``name`` into ``out``; returns the report's path."""
    from experiments.studies import STUDIES

    module = importlib.import_module(STUDIES[name])
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "config.toml"
    if config_path.is_file() and type(cfg).load(config_path) != cfg:
        raise ConfigError(f"{out} holds a {name} study with another config; use a new --out")
    cfg.save(config_path)
    (out / "study.txt").write_text(name)
    summary = run_sweep(module.evaluate, module.tasks(cfg, str(config_path.resolve())), out / "rows.jsonl",
                        workers=workers, cluster=cluster, progress=progress)
    rows = [r for r in read_jsonl(out / "rows.jsonl") if r.get("status") == "ok"]
    errors = [r for r in read_jsonl(out / "rows.jsonl") if r.get("status") == "error"]
    if summary.failed:
        raise RuntimeError(f"{summary.failed} task(s) of the {name} study failed; first error: {errors[-1]['error']}")
    text = module.report(cfg, rows, out)
    report = out / "report.md"
    report.write_text(text)
    return report


def main(argv: list[str] | None = None) -> int:
    from experiments.studies import STUDIES

    ap = argparse.ArgumentParser(prog="dekag-testbed study", description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=sorted(STUDIES))
    ap.add_argument("--config", help="the study's TOML (default: its built-in grid)")
    ap.add_argument("--out", type=Path, help="output folder (default runs/study_NAME); rerun to resume")
    ap.add_argument("--smoke", action="store_true", help="a tiny grid with the shipped codec: seconds")
    add_sweep_arguments(ap)
    args = ap.parse_args(argv)
    module = importlib.import_module(STUDIES[args.name])
    cfg = module.SMOKE if args.smoke else (module.Config.load(args.config) if args.config else module.Config())
    report = run_study(args.name, cfg, args.out or Path(f"runs/study_{args.name}"), args.workers, args.cluster)
    print(report.read_text())
    print(f"\nreport: {report}")
    return 0


def write_summary(out: Path, summary: dict) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=_json_default))


def _json_default(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON-able: {type(value).__name__}")
