"""T-KA benchmark: CALA against baselines (a)–(d) over SNR × delay spread × TDL, through the training channel.

    .venv/bin/python bench/tka.py                 # full run (trains every stage; resumes from --run-dir)
    .venv/bin/python bench/tka.py --smoke         # tiny sizes, a few seconds of training

Methods, trained in ONE run on the same latents and channel (see ``dekag.jscc.train``):
(a) ``base`` across conditions, (b) ``mismatch`` at 10 dB / 100 ns, (c) ``oracle`` fine-tuned at each point
of a coarse grid, (d) ``adjscc`` with the same added-parameter budget as CALA (all weights trained) and
``adjscc_frozen`` (AF modules only, base frozen: CALA's accounting), (e) ``cala_softmax`` / ``cala_sigmoid``;
control ``base_longer``: (a) trained on for as many steps as the adaptive stages, and ``cala_on_longer``:
CALA on top of it. Every method sees the
same fading and noise at each grid point (Sionna's generator is reseeded per point). Latent PSNR peak =
peak-to-peak range of all latents; image PSNR compares the decoded received latent with the decoded clean
latent (channel damage only).

Writes ``bench/results/tka.json`` (rewritten after every grid point), ``tka.png`` next to it, prints markdown.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import provenance  # noqa: E402
from dekag.jscc import TkaConfig, TrainingChannel, TrainingConfig, cala_num_parameters  # noqa: E402
from dekag.jscc.evaluate import evaluate  # noqa: E402
from dekag.jscc.latents import LatentSet, latent_file, standin_latents, vae_latents  # noqa: E402
from dekag.jscc.link import SimulatedLink  # noqa: E402
from dekag.jscc.train import oracle_name, run_tka, stage_budget, stages  # noqa: E402
from dekag.jscc.training_channel import seed_sionna  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SNRS_DB = [0.0, 5.0, 10.0, 15.0, 20.0]
SPREADS_S = [30e-9, 100e-9, 300e-9, 1000e-9, 3000e-9]
TDLS = ["A", "C", "E"]
FULL_TRAINING = TrainingConfig(base_steps=2000, adaptive_steps=1200, checkpoint_every=200)
SMOKE_TRAINING = TrainingConfig(base_steps=8, adaptive_steps=4, batch_size=16, checkpoint_every=4,
                                oracle_snr_db=[0.0, 20.0], oracle_delay_spread_s=[3000e-9])


def pick_source(name: str, seed: int) -> LatentSet:
    """``vae`` (miniature world VAE latents), ``standin`` or ``auto`` (vae if its checkpoint loads)."""
    if name == "standin":
        return standin_latents(seed)
    if name == "vae":
        return vae_latents()
    try:
        return vae_latents()
    except Exception as exc:  # noqa: BLE001 - any failure to load the world means: fall back, and say so
        print(f"[tka] miniature world VAE not available ({type(exc).__name__}: {exc}); using the STAND-IN latents",
              file=sys.stderr)
        return standin_latents(seed)


def methods_at(snr_db: float, spread_s: float, models: dict) -> dict[str, object]:
    out = {k: models[k] for k in models if not k.startswith("oracle_")}
    oracle = oracle_name(snr_db, spread_s)
    if oracle in models:
        out["oracle"] = models[oracle]
    return out


@torch.no_grad()
def codec_timing(codec, latents: torch.Tensor, batch: int, reps: int) -> dict[str, float]:
    """Median encode and decode time per latent (ms), CPU, one thread."""
    lat = latents[:batch]
    cond = (10.0, 100e-9)
    sym = codec.encode(lat, cond)
    enc, dec = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        codec.encode(lat, cond)
        t1 = time.perf_counter()
        codec.decode(sym, 0.1, cond)
        t2 = time.perf_counter()
        enc.append((t1 - t0) / batch * 1e3)
        dec.append((t2 - t1) / batch * 1e3)
    return {"encode_ms_per_latent": statistics.median(enc), "decode_ms_per_latent": statistics.median(dec)}


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def summarise(rows: list[dict], cfg: TkaConfig, metric: str) -> dict[str, object]:
    """Grid means per method and the target comparisons for ``metric``."""
    by = {}
    for r in rows:
        by.setdefault(r["method"], {})[(r["tdl"], r["snr_db"], r["delay_spread_s"])] = r[metric]
    head = f"cala_{cfg.training.cala_gates[0]}"
    out: dict[str, object] = {"mean_over_grid": {m: mean(list(v.values())) for m, v in by.items()}}
    oracle_pts = list(by.get("oracle", {}))
    if oracle_pts:
        out["cala_minus_oracle_on_oracle_grid_db"] = {
            m: mean([by[m][p] - by["oracle"][p] for p in oracle_pts]) for m in by if m != "oracle"}
    corners = [p for p in by[head] if p[1] in (min(SNRS_DB), max(SNRS_DB)) and p[2] in (min(SPREADS_S), max(SPREADS_S))]
    out["cala_minus_mismatch_at_corners_db"] = {
        f"{s:g}dB_{d * 1e9:g}ns": mean([by[head][p] - by["mismatch"][p] for p in corners if p[1:] == (s, d)])
        for s, d in sorted({p[1:] for p in corners})}
    for ref in ("mismatch", "base", "base_longer", "adjscc", "adjscc_frozen"):
        out[f"{head}_minus_{ref}_over_grid_db"] = mean([by[head][p] - by[ref][p] for p in by[head]])
    if "cala_on_longer" in by:
        out["cala_on_longer_minus_base_longer_over_grid_db"] = mean(
            [by["cala_on_longer"][p] - by["base_longer"][p] for p in by["cala_on_longer"]])
    return out


def plot(rows: list[dict], path: Path, metric: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = sorted({r["method"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for m in methods:
        rs = [r for r in rows if r["method"] == m]
        for ax, key, xs in ((axes[0], "snr_db", SNRS_DB), (axes[1], "delay_spread_s", SPREADS_S)):
            pts = [(x, mean([r[metric] for r in rs if r[key] == x])) for x in xs if any(r[key] == x for r in rs)]
            if pts:
                ax.plot([p[0] * (1e9 if key == "delay_spread_s" else 1) for p in pts], [p[1] for p in pts],
                        "o-" if m != "oracle" else "k*", label=m)
    axes[0].set(xlabel="SNR (dB)", ylabel=f"{metric} (dB)", title="mean over delay spread and TDL A/C/E")
    axes[1].set(xlabel="RMS delay spread (ns)", xscale="log", ylabel=f"{metric} (dB)", title="mean over SNR and TDL")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(report: dict, metric: str) -> str:
    s = report["summary"][metric]
    lines = [f"### {metric}: mean over the grid", "", "| method | mean PSNR (dB) |", "|---|---|"]
    lines += [f"| {m}{' (coarse-grid points only)' if m == 'oracle' else ''} | {v:.2f} |"
              for m, v in sorted(s["mean_over_grid"].items())]
    if "cala_minus_oracle_on_oracle_grid_db" in s:
        lines += ["", "| method − oracle, on the oracle grid points (dB) | |", "|---|---|"]
        lines += [f"| {m} | {v:+.2f} |" for m, v in sorted(s["cala_minus_oracle_on_oracle_grid_db"].items())]
    lines += ["", "| CALA − (b) mismatch at corner (dB, mean over TDL) | |", "|---|---|"]
    lines += [f"| {k} | {v:+.2f} |" for k, v in s["cala_minus_mismatch_at_corners_db"].items()]
    lines += ["", "| CALA vs (dB, mean over the whole grid) | |", "|---|---|"]
    lines += [f"| {k} | {v:+.2f} |" for k, v in s.items() if k.endswith("_over_grid_db")]
    rows = [r for r in report["rows"] if metric in r]
    head = report["headline_cala"]
    lines += ["", f"### {metric} per SNR × delay spread (mean over TDL): "
              f"{head} / (a) base / (b) mismatch / (d) adjscc",
              "", "| SNR \\ τ | " + " | ".join(f"{d * 1e9:g} ns" for d in SPREADS_S) + " |",
              "|---|" + "---|" * len(SPREADS_S)]
    for snr in SNRS_DB:
        cells = []
        for d in SPREADS_S:
            v = [mean([r[metric] for r in rows if r["method"] == m and r["snr_db"] == snr and r["delay_spread_s"] == d])
                 for m in (head, "base", "mismatch", "adjscc")]
            cells.append(" / ".join(f"{x:.1f}" for x in v))
        lines.append(f"| {snr:g} dB | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report_markdown(path: Path) -> str:
    """Markdown tables of a finished (or partial) ``tka.json``."""
    report = json.loads(Path(path).read_text())
    return "\n\n".join(markdown(report, m) for m in report["summary"])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny training and grid (CI smoke check)")
    parser.add_argument("--report", default=None, help="only print the markdown tables of this JSON")
    parser.add_argument("--source", choices=("auto", "vae", "standin"), default="auto")
    parser.add_argument("--latents", default=None,
                        help="safetensors file with a [N, 4, 8, 8] tensor 'latents' (e.g. aligned-edge S_EG); "
                             "overrides --source")
    parser.add_argument("--run-dir", default=None, help="training run folder (default runs/tka[_smoke])")
    parser.add_argument("--out", default=None, help="JSON path (default bench/results/tka[_smoke].json)")
    parser.add_argument("--eval-latents", type=int, default=None, help="test latents per grid point")
    args = parser.parse_args(argv)
    if args.report:
        print(report_markdown(Path(args.report)))
        return json.loads(Path(args.report).read_text())
    torch.set_num_threads(1)
    global SNRS_DB, SPREADS_S, TDLS
    if args.smoke:
        SNRS_DB, SPREADS_S, TDLS = [0.0, 20.0], [30e-9, 3000e-9], ["A"]
    cfg = TkaConfig(training=SMOKE_TRAINING if args.smoke else FULL_TRAINING)
    suffix = "_smoke" if args.smoke else ""
    root = Path(__file__).resolve().parents[1]
    source = "file" if args.latents else args.source
    run_dir = Path(args.run_dir) if args.run_dir else root / "runs" / f"tka_{source}{suffix}"
    out = Path(args.out) if args.out else RESULTS / f"tka{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    latents = latent_file(args.latents) if args.latents else pick_source(args.source, cfg.training.seed)
    t0 = time.perf_counter()
    models = run_tka(cfg, latents, run_dir, progress=not args.smoke)
    train_s = time.perf_counter() - t0
    _, test = latents.split(cfg.training.test_fraction, cfg.training.seed)
    test = test[: args.eval_latents or (16 if args.smoke else len(test))]
    peak = float(latents.latents.max() - latents.latents.min())
    channel = TrainingChannel(cfg.channel, cfg.codec.num_symbols, seed=cfg.training.seed)
    head = f"cala_{cfg.training.cala_gates[0]}"
    base_params = sum(p.numel() for p in models["base"].parameters())
    cala_params = cala_num_parameters(models[head])
    adjscc_params = sum(p.numel() for p in models["adjscc"].parameters()) - base_params
    report = {
        "bench": "tka", "smoke": args.smoke, "latent_source": latents.source, "provenance": provenance(),
        "config": cfg.to_dict(), "headline_cala": head, "train_seconds": round(train_s, 1),
        "eval_latents_per_point": len(test), "latent_psnr_peak": peak,
        "training_steps": stage_budget(stages(cfg, SimulatedLink(channel))),
        "parameters": {"base_codec": base_params, "cala_added": cala_params,
                       "cala_added_bytes_float32": 4 * cala_params, "cala_added_bytes_float16": 2 * cala_params,
                       "cala_added_fraction_of_base": cala_params / base_params, "adjscc_added": adjscc_params},
        "timing_cpu_1thread": {name: {f"batch{b}": codec_timing(models[name], test, b, 3 if args.smoke else 20)
                                      for b in (1, min(64, len(test)))} for name in ("base", head, "adjscc")},
        "rows": [], "summary": {},
    }
    tdl_index = {m: cfg.channel.tdl_models.index(m) for m in TDLS}
    reference_images = latents.decode_image(test) if latents.decode_image is not None else None
    metrics = ["latent_psnr_db"] + (["image_psnr_db"] if latents.decode_image is not None else [])
    for point, (tdl, snr, spread) in enumerate((t, s, d) for t in TDLS for s in SNRS_DB for d in SPREADS_S):
        for method, codec in methods_at(snr, spread, models).items():
            seed_sionna(10_000 + point)  # same fading and noise for every method at this point
            res = evaluate(codec, channel, test, snr, spread, tdl_index[tdl], peak, latents.decode_image,
                           latents.image_range, reference_images)
            report["rows"].append({"method": method, "tdl": tdl, "snr_db": snr, "delay_spread_s": spread, **res})
        report["summary"] = {m: summarise(report["rows"], cfg, m) for m in metrics}
        out.write_text(json.dumps(report, indent=1))
    plot(report["rows"], out.with_suffix(".png"), metrics[-1])
    print(f"latents: {latents.source}; training {train_s:.0f} s; parameters {report['parameters']}")
    print(f"timing (ms per latent, CPU, 1 thread): {json.dumps(report['timing_cpu_1thread'])}")
    for m in metrics:
        print(markdown(report, m))
        print()
    return report


if __name__ == "__main__":
    main()
