"""`closed_loop`: does CSI-driven CALA gating pay off over the real frame pipeline?

Transmitter → emulator (TDL A, C, E; every Pluto-like impairment) → Receiver → decode, on the grid
SNR {0, 5, 10, 15, 20} dB × delay spread {30, 100, 300, 1000, 3000} ns, held-out aligned-edge latents
(S_EG), every method on the same realisations (:mod:`experiments.closed_loop`). Reports:

* latent and image PSNR per method — CALA gated on the ZeroMQ-fed estimate (one frame old at the encoder),
  on genie CSI, at each single fixed gate (and the best one); (a) base, (b) mismatch, (c) oracle; the
  ablations (encoder-only / decoder-only gating, noise-blind decoder); the package's codec in the same loop;
* the gate sweep (both ends held at one SNR gate, at true SNR 0…20 dB) and a delay-spread gate sweep;
* the training-link-vs-real-pipeline gap per SNR (lost frames counted), for the frame link and the Sionna channel;
* chance (the latent mean, no data) and ceiling (the codec over a noiseless channel) beside every figure;
* each method's training steps (its own plus those of the stages it starts from).

One PSNR peak: the peak-to-peak range of the whole S_EG set (``latent_peak``, also the user node's);
a cell's PSNR comes from its MSE averaged over frames, the grid mean averages cell PSNRs (dB).
Rows go to ``<out>.jsonl`` as they are measured; a rerun skips cells already there when they were measured with the same
set-up (``setup_fingerprint``: codecs, latents, receiver source, frames per cell) and discards rows of another one.

    .venv/bin/python bench/closed_loop.py --tka-run runs/tka_frames --latents runs/seg/latents.safetensors
    .venv/bin/python bench/closed_loop.py --smoke --out /tmp/cl.json      # seconds, the shipped codec only
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.provenance import provenance  # noqa: E402
from experiments.closed_loop import Cell, ClosedLoop, held_out_latents, load_codec_set, psnr_db, summarise  # noqa: E402
from experiments.frame_link import FrameLink, FramePipeline, frame_config_for  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
IMAGE_METHODS = ("cala_estimated", "cala_genie", "base", "mismatch", "oracle", "reference_estimated")
REFERENCE = Path(__file__).resolve().parent / "reference" / "downlink_sionna_trained"
"""The downlink package shipped before T-KA trained through frames: its codec (CALA on a base, all trained
through the Sionna channel with perfect CSI) is the reference method in the real loop."""


def image_psnr(vae, rows: list[dict], z_by_frame: dict[int, torch.Tensor]) -> None:
    """Fill ``image_mse`` of the rows of IMAGE_METHODS (world VAE, images in [−1, 1])."""
    from dekag import ldm

    pick = [r for r in rows if r["method"] in IMAGE_METHODS]
    if not pick:
        return
    with torch.no_grad():
        rec = ldm.decode_latents(vae, torch.cat([r["reconstruction"] for r in pick]))
        ref = ldm.decode_latents(vae, torch.cat([z_by_frame[r["frame"]] for r in pick]))
    for r, a, b in zip(pick, rec, ref, strict=True):
        r["image_mse"] = float(((a - b) ** 2).mean())


def training_link_mse(codec, link, latents: torch.Tensor, cells: list[Cell], tdl_models: list[str], n: int,
                      sionna: bool) -> dict[str, list[float]]:
    """Per nominal SNR: per-frame MSE through a training link on the bench's own cells (``n`` frames each,
    same profiles and delay spreads as the real-pipeline grid; lost frames counted as the latent mean)."""
    from dekag.jscc.condition import Condition

    out: dict[str, list[float]] = {}
    g = torch.Generator().manual_seed(7)
    mean = codec.latent_mean[None, :, None, None]
    for cell in cells:
        nominal = {"snr_db": torch.full((n,), cell.snr_db), "delay_spread_s": torch.full((n,), cell.delay_spread_s),
                   "model_index": torch.full((n,), tdl_models.index(cell.profile[-1]), dtype=torch.long)}
        z = latents[torch.randint(len(latents), (n,), generator=g)]
        with torch.no_grad():
            if sionna:
                cond = Condition(nominal["snr_db"], nominal["delay_spread_s"])
                y, nv = link.channel(codec.encode(z, cond), nominal["snr_db"], nominal["delay_spread_s"],
                                     nominal["model_index"])
                rec, keep = codec.decode(y, nv, cond), torch.ones(n, dtype=torch.bool)
            else:
                res = link(codec.encode(z, link.encoder_condition(nominal)), nominal)
                rec, keep = codec.decode(res.symbols, res.noise_var, res.decoder_condition), res.received
        rec = torch.where(keep[:, None, None, None], rec, mean.expand_as(rec))
        out.setdefault(f"{cell.snr_db:g}", []).extend(((rec - z) ** 2).mean(dim=(1, 2, 3)).tolist())
    return out


def gap_db(real: list[float], train: list[float]) -> dict[str, float]:
    """10·log10(mean real MSE / mean training-link MSE) with its standard error (delta method), dB."""
    mr, mt = float(np.mean(real)), float(np.mean(train))
    rel = math.sqrt(np.var(real) / len(real) / mr ** 2 + np.var(train) / len(train) / mt ** 2)
    return {"gap_db": 10 * math.log10(mr / mt), "se_db": 10 / math.log(10) * rel,
            "real_mse": mr, "train_mse": mt, "frames_real": len(real), "frames_train": len(train)}


def ceiling_mse(codec, latents: torch.Tensor, domain) -> float:
    """The codec over a noiseless channel: symbols arrive exactly, both ends gated at the top of the domain
    and the decoder told the noise variance of that SNR (the least it was trained on)."""
    with torch.no_grad():
        c = (domain.snr_db_max, domain.below_resolution_value)
        rec = codec.decode(codec.encode(latents, c), 10 ** (-domain.snr_db_max / 10), c)
    return float(((rec - latents) ** 2).mean())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tka-run", type=Path, help="T-KA run folder (training.link = frames); none: the package's codec")
    ap.add_argument("--latents", help="latents file of that run (S_EG); its held-out split is sent")
    ap.add_argument("--package", help="downlink package whose codec is tested without --tka-run (default: shipped)")
    ap.add_argument("--reference-package", default=str(REFERENCE),
                    help="package whose codec runs as 'reference_estimated' ('none' to skip)")
    ap.add_argument("--per-cell", type=int, default=12, help="frames per grid cell and method")
    ap.add_argument("--snrs", type=float, nargs="+", default=[0.0, 5.0, 10.0, 15.0, 20.0])
    ap.add_argument("--spreads-ns", type=float, nargs="+", default=[30.0, 100.0, 300.0, 1000.0, 3000.0])
    ap.add_argument("--profiles", nargs="+", default=["A", "C", "E"])
    ap.add_argument("--out", type=Path, default=RESULTS / "closed_loop.json")
    ap.add_argument("--smoke", action="store_true", help="2 cells, 2 frames: seconds")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.smoke:
        args.snrs, args.spreads_ns, args.profiles, args.per_cell = [0.0, 20.0], [30.0], ["C"], 2

    from dekag.downlink import load_downlink
    from dekag.miniature.world import load_world

    world = load_world()
    dl = load_downlink(args.package, world=world)
    reference = None if args.reference_package == "none" else load_downlink(args.reference_package, world=world).codec
    codecs, budget, cfg = load_codec_set(args.tka_run, dl, reference)
    channel = cfg.channel if cfg is not None else None
    from dekag.jscc.config import ChannelConfig
    channel = channel or ChannelConfig()
    pipeline = FramePipeline(frame_config_for(channel))
    loop = ClosedLoop(pipeline, codecs)
    latents, peak, source = held_out_latents(args.latents, cfg)
    cells = [Cell(s, d * 1e-9, f"TDL-{p}") for p in args.profiles for s in args.snrs for d in args.spreads_ns]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows_path = args.out.with_suffix(".jsonl")
    setup = setup_fingerprint(args)
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()] if rows_path.is_file() else []
    if any(r.get("setup") != setup for r in rows):  # other codecs, receiver or grid: nothing of it is reused
        print(f"{rows_path}: rows of another set-up (codecs, receiver code or grid) are discarded", flush=True)
        rows = []
        rows_path.write_text("")
    done = {r["cell"] for r in rows}
    with rows_path.open("a") as f:
        for i, cell in enumerate(cells):
            if cell.key in done:
                continue
            z = latents[(i * args.per_cell + torch.arange(args.per_cell)) % len(latents)]
            new = loop.run_cell(cell, z)
            image_psnr(world.vae, new, {j: z[j:j + 1] for j in range(len(z))})
            for r in new:
                r.pop("reconstruction")
                r["setup"] = setup
                f.write(json.dumps(r) + "\n")
            f.flush()
            rows += new
            print(f"[{i + 1}/{len(cells)}] {cell.key}", flush=True)

    sweep_rows = []
    sweep_gates = [float(g) for g in np.arange(-5.0, 25.1, 2.5)]
    for s in ([0.0, 20.0] if args.smoke else args.snrs):
        for p in (args.profiles[:1] if args.smoke else args.profiles):
            cell = Cell(s, 300e-9, f"TDL-{p}")
            tau = codecs.domain.apply(s, cell.delay_spread_s).delay_spread_s
            sweep_rows += loop.sweep_gates(cell, latents[: args.per_cell],
                                           [(g, tau) for g in (sweep_gates[::4] if args.smoke else sweep_gates)])
    ds_rows = []
    ds_gates = sorted({codecs.domain.below_resolution_value, 1000e-9, 3000e-9})
    for d in ([1000.0] if args.smoke else [100.0, 1000.0, 3000.0]):
        for p in (args.profiles[:1] if args.smoke else args.profiles):
            ds_rows += loop.sweep_gates(Cell(10.0, d * 1e-9, f"TDL-{p}"), latents[: args.per_cell],
                                        [(10.0, t) for t in ds_gates])

    report = build_report(rows, sweep_rows, ds_rows, peak, codecs, latents, cfg, budget, args, source)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    plot(report, args.out.with_suffix(".png"))
    print(markdown(report))
    return report


def setup_fingerprint(args: argparse.Namespace) -> str:
    """SHA-256 (16 hex digits) of what a resumed row depends on besides its cell: the T-KA run's stage files, the
    latents, the packages, the receiver's source (``radio/``) and the frames per cell."""
    h = hashlib.sha256(f"{args.per_cell}|{args.package}|{args.reference_package}".encode())
    files = sorted(args.tka_run.glob("*.safetensors")) if args.tka_run else []
    files += [Path(args.latents)] if args.latents else []
    files += sorted((ROOT / "radio").glob("*.py"))
    for path in files:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def build_report(rows, sweep_rows, ds_rows, peak, codecs, latents, cfg, budget, args, source) -> dict:
    lat = summarise(rows, peak)
    img = summarise([{**r, "mse": r["image_mse"]} for r in rows if "image_mse" in r], 2.0)
    fixed = {m: v["grid_mean_db"] for m, v in lat.items() if m.startswith("cala_fixed@")}
    best_fixed = max(fixed, key=fixed.get) if fixed else None
    snrs = [f"{s:g}" for s in args.snrs]
    corners = [snrs[0], snrs[-1]]
    est = lat.get("cala_estimated")
    gains = {}
    if est and best_fixed:
        gains = {"grid_mean_db": est["grid_mean_db"] - lat[best_fixed]["grid_mean_db"],
                 **{f"snr_{s}_db": est["per_snr_db"][s] - lat[best_fixed]["per_snr_db"][s] for s in corners}}
    blind_fixed = {m: v["grid_mean_db"] for m, v in lat.items() if m.startswith("blind_fixed@")}
    best_blind = max(blind_fixed, key=blind_fixed.get) if blind_fixed else None
    chance = float(((codecs.cala.latent_mean[None, :, None, None] - latents) ** 2).mean())
    sweep = _sweep_summary(sweep_rows, peak, "gate_snr_db")
    ds_sweep = _sweep_summary(ds_rows, peak, "gate_delay_spread_s")
    gap = {}
    if cfg is not None and cfg.training.link == "frames" and not args.smoke:
        from dekag.jscc.link import SimulatedLink
        from dekag.jscc.training_channel import TrainingChannel
        cells = [Cell(s, d * 1e-9, f"TDL-{p}") for p in args.profiles for s in args.snrs for d in args.spreads_ns]
        models = list(cfg.channel.tdl_models)
        n = 2 * args.per_cell
        sim = SimulatedLink(TrainingChannel(cfg.channel, cfg.codec.num_symbols, seed=99))
        links = {"frame_link": training_link_mse(codecs.cala, FrameLink(cfg.channel, cfg.codec.num_symbols, seed=99),
                                                 latents, cells, models, n, False),
                 "sionna": training_link_mse(codecs.cala, sim, latents, cells, models, n, True),
                 "sionna_reference": training_link_mse(codecs.reference, sim, latents, cells, models, n, True)}
        real = {"frame_link": _per_snr_mse(rows, "cala_estimated"), "sionna": _per_snr_mse(rows, "cala_estimated"),
                "sionna_reference": _per_snr_mse(rows, "reference_estimated")}
        gap = {name: {s: gap_db(real[name][s], per_snr[s]) for s in per_snr} for name, per_snr in links.items()}
    return {"bench": "closed_loop", "latents": source, "peak": peak, "tka_run": str(args.tka_run),
            "reference_package": args.reference_package,
            "psnr_definition": "10·log10(peak²/MSE), peak = peak-to-peak range of the latent set; cell MSE "
                               "averaged over frames with lost frames counted as the latent mean; grid mean of "
                               "cell PSNRs; image PSNR: world VAE images in [−1, 1], peak 2",
            "grid": {"snr_db": args.snrs, "delay_spread_ns": args.spreads_ns, "profiles": args.profiles,
                     "frames_per_cell": args.per_cell, "impairments": "Impairments.typical()"},
            "chance_latent_psnr_db": psnr_db(chance, peak),
            "ceiling_latent_psnr_db": psnr_db(ceiling_mse(codecs.cala, latents, codecs.domain), peak),
            "training_steps": budget, "training_link": cfg.training.link if cfg is not None else None,
            "best_fixed_gate": best_fixed, "best_blind_fixed_gate": best_blind,
            "gain_estimated_over_best_fixed_db": gains,
            "latent": lat, "image": img, "gate_sweep": sweep, "delay_spread_gate_sweep": ds_sweep,
            "train_vs_real": gap, "provenance": provenance()}


def _per_snr_mse(rows: list[dict], method: str) -> dict[str, list[float]]:
    by: dict[str, list[float]] = {}
    for r in rows:
        if r["method"] == method:
            by.setdefault(f"{r['snr_db']:g}", []).append(r["mse"])
    return by


def _sweep_summary(rows: list[dict], peak: float, key: str) -> dict:
    """Per true cell condition: PSNR at each gate value and the best gate."""
    table: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        true = f"{r['snr_db']:g}dB|{r['delay_spread_s'] * 1e9:g}ns"
        table.setdefault(true, {}).setdefault(f"{r[key]:g}", []).append(r["mse"])
    out = {}
    for true, gates in table.items():
        psnr = {g: psnr_db(float(np.mean(v)), peak) for g, v in gates.items()}
        best = max(psnr, key=psnr.get)
        out[true] = {"psnr_db": psnr, "best_gate": float(best)}
    return out


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    ax = axes[0]
    lat = report["latent"]
    for m in ("cala_estimated", "cala_genie", report["best_fixed_gate"], "base", "mismatch", "reference_estimated"):
        if m in lat:
            xs = [float(s) for s in lat[m]["per_snr_db"]]
            ax.plot(xs, list(lat[m]["per_snr_db"].values()), marker="o", label=m)
    if "oracle" in lat:
        xs = [float(s) for s in lat["oracle"]["per_snr_db"]]
        ax.plot(xs, list(lat["oracle"]["per_snr_db"].values()), "k*", ms=10, label="oracle (c)")
    ax.axhline(report["chance_latent_psnr_db"], color="grey", ls=":", label="chance (latent mean)")
    ax.axhline(report["ceiling_latent_psnr_db"], color="grey", ls="--", label="ceiling (noiseless)")
    ax.set_ylim(top=max(ax.get_ylim()[1], report["ceiling_latent_psnr_db"] + 0.5))
    ax.set(xlabel="nominal SNR (dB)", ylabel="latent PSNR (dB)",
           title="Latent PSNR over the real frame pipeline\n"
                 "(mean over delay spreads and TDL A/C/E, lost frames counted)")
    ax.legend(fontsize=7)
    ax = axes[1]
    for true, v in report["gate_sweep"].items():
        gates = sorted(v["psnr_db"], key=float)
        ax.plot([float(g) for g in gates], [v["psnr_db"][g] for g in gates], marker=".", label=f"true {true}")
    ax.set(xlabel="gate SNR (dB), both ends", ylabel="latent PSNR (dB)",
           title="Gate sweep: the matched gate should peak at the true SNR")
    ax.legend(fontsize=7)
    ax = axes[2]
    gap = report.get("train_vs_real") or {}
    for key, label in (("frame_link", "frame link (the codec trained through it)"),
                       ("sionna", "Sionna channel, same codec"),
                       ("sionna_reference", "Sionna channel, the reference codec trained through it")):
        if key in gap:
            xs = sorted(gap[key], key=float)
            ax.errorbar([float(x) for x in xs], [gap[key][x]["gap_db"] for x in xs],
                        yerr=[gap[key][x]["se_db"] for x in xs], marker="o", capsize=3, label=label)
    ax.axhspan(-0.5, 0.5, color="green", alpha=0.1, label="±0.5 dB target")
    ax.set(xlabel="nominal SNR (dB)", ylabel="real-pipeline MSE / training-link MSE (dB)",
           title="Training link vs real pipeline (lost frames counted)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(report: dict) -> str:
    lat, img = report["latent"], report["image"]
    lines = [f"chance {report['chance_latent_psnr_db']:.2f} dB, ceiling {report['ceiling_latent_psnr_db']:.2f} dB "
             f"(latent PSNR, peak {report['peak']:.2f}); best fixed gate {report['best_fixed_gate']}",
             "| method | latent grid mean | per SNR | image grid mean | lost | steps |",
             "|---|---:|---|---:|---:|---:|"]
    steps = report.get("training_steps", {})
    for m, v in sorted(lat.items(), key=lambda kv: -kv[1]["grid_mean_db"]):
        per = " / ".join(f"{x:.2f}" for x in v["per_snr_db"].values())
        im = img.get(m, {}).get("grid_mean_db")
        stage = {"cala_estimated": "cala_softmax", "cala_genie": "cala_softmax"}.get(m, m.split("@")[0])
        lines.append(f"| {m} | {v['grid_mean_db']:.2f} | {per} | {'' if im is None else f'{im:.2f}'} | "
                     f"{v['lost_fraction']:.3f} | {steps.get(stage, '')} |")
    lines.append(f"gain of estimated CSI over the best fixed gate: {report['gain_estimated_over_best_fixed_db']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
