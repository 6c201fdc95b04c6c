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


def _row(metrics: dict) -> str:
    h = metrics["heldout"]
    cells = [h["feature_cosine"], h.get("label_agreement", float("nan")), h.get("subject_accuracy", float("nan")),
             h["psnr_db"], h["ssim"], metrics["scg_seeds"]["feature_cosine"]]
    return " | ".join(f"{c:.3f}" for c in cells)


def tables(res: dict) -> str:
    head = ("| feature cosine | label agreement | subject accuracy | PSNR dB | SSIM | cosine on S_CG seeds |",
            "|---:|---:|---:|---:|---:|---:|")
    base = res["variants"].get("none", {}).get("heldout", {}).get("feature_cosine")
    lines = ["**Edge vs cloud on held-out seeds** (train + held-out prompt templates)", "",
             "| variant " + head[0] + " cosine vs none |", "|---" + head[1] + "---:|"]
    for v, m in res["variants"].items():
        rel = m["heldout"]["feature_cosine"] / base - 1 if base else float("nan")
        lines.append(f"| {v} | {_row(m)} | {rel:+.1%} |")
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
    lines += ["", "**Training seconds per step**", "", "| stage | steps | s/step | final loss |", "|---|---:|---:|---:|"]
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
