"""MAKD benchmark on the miniature world, all measured side by side in one run (held-out seeds):

* consistency of edge vs cloud for no alignment / metaword only / LoRA only / MAKD,
* MAKD rank sweep R ∈ {1, 2, 4, 8, 16},
* knowledge-package precision sweep {16, 8, 4, 2} bits and package bytes,
* training seconds per step of each stage.

``python bench/makd.py`` (≈ 10 min on one free core) or ``--smoke`` (tiny sizes, for tests).
Writes ``bench/results/makd.json`` (``--smoke``: ``makd_smoke.json``) and prints markdown tables.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import provenance  # noqa: E402
from dekag import ldm  # noqa: E402
from dekag.makd.align import run_makd  # noqa: E402
from dekag.makd.config import MakdConfig  # noqa: E402

RANKS = [1, 2, 4, 8, 16]
PRECISIONS = [16, 8, 4, 2]


def bench_config(smoke: bool) -> MakdConfig:
    if smoke:
        return MakdConfig(n_images=4, n_eval_seeds=2, num_inference_steps=3, metaword_steps=2, lora_steps=2,
                          batch_size=2, threads=1, rank_sweep=[1, 2], precision_sweep=[16, 2])
    return MakdConfig(threads=1, rank_sweep=RANKS, precision_sweep=PRECISIONS)


def _rate(h: dict, key: str) -> str:
    if key not in h:
        return "–"
    ci = h.get(f"{key}_ci95")
    return f"{h[key]:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def _row(metrics: dict) -> str:
    h = metrics["heldout"]
    cells = [f"{h.get('centred_cosine', float('nan')):.3f}", _rate(h, "label_agreement"),
             _rate(h, "subject_accuracy"), f"{h['feature_cosine']:.3f}", f"{h['psnr_db']:.3f}", f"{h['ssim']:.3f}",
             f"{metrics['scg_seeds']['feature_cosine']:.3f}"]
    return " | ".join(cells)


def tables(res: dict) -> str:
    head = ("| centred cosine | label agreement [95 % CI] | subject accuracy [95 % CI] | feature cosine | PSNR dB "
            "| SSIM | cosine on S_CG seeds |", "|---:|---:|---:|---:|---:|---:|---:|")
    lines = ["**Edge vs cloud on held-out seeds** (train + held-out prompt templates; chance = real digits of "
             "different classes, ceiling = real digits of the same class)", "",
             "| variant " + head[0], "|---" + head[1]]
    base = res.get("baselines") or {}
    rows = [("chance (real, different class)", base.get("chance")), *((v, m["heldout"]) for v, m in
                                                                   res["variants"].items()),
            ("ceiling (real, same class)", base.get("ceiling"))]
    for v, h in rows:
        if h is None:
            continue
        if "psnr_db" not in h:   # a baseline row: consistency metrics only
            lines.append(f"| {v} | {h.get('centred_cosine', float('nan')):.3f} | {_rate(h, 'label_agreement')} | – "
                         f"| {h['feature_cosine']:.3f} | – | – | – |")
        else:
            lines.append(f"| {v} | {_row({'heldout': h, 'scg_seeds': res['variants'][v]['scg_seeds']})} |")
    stages = res["stages"]
    if res["rank_sweep"]:
        lines += ["", "**MAKD rank sweep**", "", "| rank " + head[0] + " LoRA params | s/step |",
                  "|---" + head[1] + "---:|---:|"]
        for r, m in res["rank_sweep"].items():
            lines.append(f"| {r} | {_row(m)} | {m['lora_params']} | {stages[f'makd_r{r}']['seconds_per_step']:.3f} |")
    if res["precision_sweep"]:
        lines += ["", f"**Knowledge-package precision (MAKD, rank {res['config']['rank']})**", "",
                  "| bits " + head[0] + " package bytes |", "|---" + head[1] + "---:|"]
        for b, m in res["precision_sweep"].items():
            lines.append(f"| {b} | {_row(m)} | {m['package_bytes']} |")
    lines += ["", "**Training seconds per step**", "", "| stage | steps | s/step | final loss |",
              "|---|---:|---:|---:|"]
    for name, s in stages.items():
        if isinstance(s, dict):
            lines.append(f"| {name} | {s['steps']} | {s['seconds_per_step']:.3f} | {s['final_loss']:.4f} |")
    lines.append(f"\nS_CG generation: {stages['scg_seconds']:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (a smoke check, numbers meaningless)")
    ap.add_argument("--run-dir", type=Path, help="keep the MAKD run here (rerun to resume); default: a temp dir")
    ap.add_argument("--out", type=Path, help="JSON output (default bench/results/makd[_smoke].json)")
    args = ap.parse_args(argv)
    ldm.quiet_library_output()
    cfg = bench_config(args.smoke)
    out = args.out or ROOT / "bench" / "results" / f"makd{'_smoke' if args.smoke else ''}.json"
    with tempfile.TemporaryDirectory() as tmp:
        res = run_makd(cfg, args.run_dir or Path(tmp) / "run")
    res["provenance"] = provenance()
    res["smoke"] = args.smoke
    res.pop("package", None)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(tables(res))
    print(f"\nwritten: {out}")
    return res


if __name__ == "__main__":
    main()
