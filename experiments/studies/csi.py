"""Study ``csi``: what estimated CSI costs against genie CSI and what no CSI costs (the paper assumes perfect CSI).

Per grid point (nominal SNR × delay spread × TDL profile) and seed, ``frames`` held-out latents go through
the real frame pipeline (:class:`experiments.closed_loop.ClosedLoop`), every method on the same channel
realisations and noise:

* ``cala_estimated``: CALA gated on the receiver's estimate (encoder: the previous frame's, over ZeroMQ);
* ``cala_genie``: both ends gated on the true realised condition of the frame;
* ``cala_no_csi``: both ends at the fallback condition (the middle of the trained range);
* ``digital_estimated`` / ``digital_genie``: the digital baseline with its MCS from the same CSI.

The report gives latent PSNR vs SNR (lost frames counted at chance), the cost of estimation (genie −
estimated) and of no CSI, and the SNR estimate against its truth.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.closed_loop import Cell, ClosedLoop
from experiments.studies.base import (StudyConfig, chance_psnr, context, frames_of, markdown_table, per_method_psnr,
                                      plot_curves, write_summary)
from experiments.sweep import Task, grid

NAMES = {"cala_estimated": "CALA, estimated CSI", "cala_genie": "CALA, genie CSI", "no_csi": "CALA, no CSI",
         "digital_estimated": "digital, MCS from estimated CSI", "digital_genie": "digital, MCS from genie CSI"}


@dataclass
class Config(StudyConfig):
    """The ``csi`` study's grid (see :class:`~experiments.studies.base.StudyConfig`)."""


SMOKE = Config(tka_run="", latents="", snr_db=[0.0, 20.0], delay_spread_ns=[300.0], profiles=["C"], frames=2)


def tasks(cfg: Config, config_path: str) -> list[Task]:
    points = [{"config": config_path, "snr_db": s, "delay_spread_ns": d, "profile": p}
              for p in cfg.profiles for s in cfg.snr_db for d in cfg.delay_spread_ns]
    return grid(points, cfg.seeds, ["all"])


def evaluate(point: dict, seed: int, method: str) -> dict:
    ctx = context(point["config"])
    centre = ctx.codecs.domain.centre[0]
    loop = ClosedLoop(ctx.pipeline, ctx.codecs, fixed_gates_db=[centre], seed=seed,
                      groups={"estimated", "genie", "fixed", "digital"})
    cell = Cell(point["snr_db"], point["delay_spread_ns"] * 1e-9, f"TDL-{point['profile']}")
    z = frames_of(ctx, seed, Config.load(point["config"]).frames, zlib.crc32(cell.key.encode()) % 997)
    rows = loop.run_cell(cell, z)
    mse: dict[str, list[float]] = {}
    for r in rows:
        name = "no_csi" if r["method"].startswith("cala_fixed@") else r["method"]
        mse.setdefault(name, []).append(r["mse"])
    est = [r for r in rows if r["method"] == "cala_estimated"]
    return {"mse": mse, "lost": {m: sum(not r["received"] for r in rows if r["method"] == m) for m in mse},
            "snr_true": [r["true_snr_db"] for r in est], "snr_est": [r["est_snr_db"] for r in est]}


def report(cfg: Config, rows: list[dict], out: Path) -> str:
    ctx = context(str((out / "config.toml").resolve()))
    curves = {NAMES.get(m, m): c for m, c in per_method_psnr(rows, ctx.peak).items()}
    chance = chance_psnr(ctx)
    plot_curves(curves, chance, "CALA with estimated, genie and no CSI over the real frame pipeline\n"
                "(digital baseline: 5G LDPC + QAM, MCS from the same CSI)", "nominal SNR (dB)", out / "psnr_vs_snr.png",
                styles={NAMES["digital_estimated"]: "--s", NAMES["digital_genie"]: ":s"})
    genie, estimated = curves[NAMES["cala_genie"]], curves[NAMES["cala_estimated"]]
    est_cost = {s: genie[s] - estimated[s] for s in genie}
    no_csi_cost = {s: curves[NAMES["cala_estimated"]][s] - curves[NAMES["no_csi"]][s] for s in curves[NAMES["no_csi"]]}
    true = np.array([t for r in rows for t, e in zip(r["snr_true"], r["snr_est"], strict=True) if e is not None])
    est = np.array([e for r in rows for e in r["snr_est"] if e is not None])
    _plot_estimates(true, est, out / "snr_estimate_vs_truth.png")
    summary = {"study": "csi", "latents": ctx.source, "peak": ctx.peak, "chance_db": chance, "psnr_db": curves,
               "estimation_cost_db": est_cost, "gain_over_no_csi_db": no_csi_cost,
               "snr_estimate_error_db": {"bias": float(np.mean(est - true)) if len(est) else None,
                                         "rmse": float(np.sqrt(np.mean((est - true) ** 2))) if len(est) else None},
               "training_steps": ctx.budget, "points": len(rows)}
    write_summary(out, summary)
    return "\n".join([
        "# Study `csi`: estimated vs genie vs no CSI driving CALA", "",
        f"Latents: {ctx.source}. Latent PSNR, peak {ctx.peak:.2f} (the latent set's range), each point's MSE "
        f"averaged over its frames with lost frames counted at chance ({chance:.2f} dB).", "",
        markdown_table(curves, "SNR dB"), "",
        "Cost of estimated against genie CSI (dB, positive = genie better): "
        + ", ".join(f"{s} dB: {v:+.2f}" for s, v in est_cost.items()),
        "Gain of estimated CSI over no CSI (dB): " + ", ".join(f"{s} dB: {v:+.2f}" for s, v in no_csi_cost.items()),
        f"SNR estimate − realised truth: bias {summary['snr_estimate_error_db']['bias']:+.2f} dB, RMSE "
        f"{summary['snr_estimate_error_db']['rmse']:.2f} dB over {len(est)} decoded frames.", "",
        "What it shows: how much of CALA's result depends on the CSI being right. The paper assumes perfect CSI;",
        "here the receiver's estimate, fed back one frame old, is what drives the gates.", "",
        "![PSNR vs SNR](psnr_vs_snr.png)", "", "![SNR estimate vs truth](snr_estimate_vs_truth.png)", ""])


def _plot_estimates(true: np.ndarray, est: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot(true, est, ".", alpha=0.5, label="decoded frames")
    lo, hi = (float(min(true.min(), est.min())), float(max(true.max(), est.max()))) if len(est) else (0, 1)
    ax.plot([lo, hi], [lo, hi], "k--", label="estimate = truth")
    ax.set(xlabel="realised SNR, emulator truth (dB)", ylabel="receiver's SNR estimate (dB)",
           title="SNR estimate against its truth (what CALA is gated on)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
