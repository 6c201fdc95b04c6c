"""Is the cloud the better model? Per-class quality of the miniature world's cloud and unaligned edge beside the
ceiling of real digits, under the independent judge (:mod:`dekag.miniature.judge`).

For every digit, both models draw "a photo of a <digit>" from the same seeds (the knowledge package's sampler:
25 DDIM steps, guidance 2), and each image is scored three ways:

* judge accuracy (the SVC names the prompted digit), with its 95 % Wilson interval;
* ``typical``: :meth:`~dekag.miniature.judge.Judge.typical` (looks like a printed digit at all);
* distance to the nearest real render of that digit in the world's dataset (grey L2 at 32×32; lower = closer to
  a real digit), its median, and the paired comparison: the fraction of seeds on which the cloud's image is
  closer than the edge's (0.5 = a tie), with a two-sided sign test.

Ceiling: fresh renders of the world's fonts (a seed neither the world nor the judge used) through the same
scores, raw and after the world's VAE (what any latent model on this VAE can reach at best). Chance for the
judge is 0.1.

    OMP_NUM_THREADS=1 python bench/world_quality.py          # ≈ 5 min on one core → bench/results/world_quality.json
    python bench/world_quality.py --smoke                    # 2 seeds per class, 2 steps (numbers meaningless)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import provenance  # noqa: E402
from dekag import ldm, metrics  # noqa: E402
from dekag.miniature import data as D  # noqa: E402
from dekag.miniature.judge import JUDGE_SEED, fit_judge  # noqa: E402
from dekag.miniature.world import load_world  # noqa: E402

SEED0 = 600_000
"""First seed of every class (clear of the other benches' seeds)."""
CEILING_SEED = JUDGE_SEED + 1
"""Seed of the ceiling's fresh renders (the world's dataset is seed 0, the judge's renders JUDGE_SEED)."""


def scores(judge, world, images: torch.Tensor, label: int) -> dict[str, torch.Tensor]:
    """Per image ``[B]``: ``correct`` (bool), ``typical`` (bool), ``nearest`` (L2 to the closest real render of
    ``label``)."""
    real = judge.reference[world.dataset.labels == label]
    nearest = torch.cdist(judge.grey(images), real).min(1).values
    return {"correct": judge.predict(images) == label, "typical": judge.typical(images), "nearest": nearest}


def summary(s: dict[str, torch.Tensor]) -> dict:
    n, k = len(s["correct"]), int(s["correct"].sum())
    return {"accuracy": k / n, "accuracy_ci95": metrics.wilson_interval(k, n),
            "typical": s["typical"].float().mean().item(), "nearest_median": s["nearest"].median().item(), "n": n}


def paired(cloud: torch.Tensor, edge: torch.Tensor) -> dict:
    """Fraction of seeds where the cloud's image is nearer a real digit than the edge's, and the two-sided sign
    test's p-value (ties dropped)."""
    from scipy.stats import binomtest

    wins, losses = int((cloud < edge).sum()), int((cloud > edge).sum())
    return {"cloud_closer": wins / len(cloud), "sign_test_p": binomtest(wins, wins + losses).pvalue}


def ceiling(judge, world) -> dict[str, list[dict]]:
    """Scores of fresh renders of the world's fonts, raw and through the world's VAE (encode mean → decode)."""
    renders = D.render_digits(D.WORLD_FONTS, 22, CEILING_SEED)
    with torch.no_grad():
        through_vae = world.vae.decode(world.vae.encode(renders.images).latent_dist.mean).sample.clamp(-1, 1)
    return {name: [summary(scores(judge, world, images[renders.labels == c], c)) for c in range(10)]
            for name, images in (("real", renders.images), ("real_through_vae", through_vae))}


def measure(world, judge, n: int, steps: int, guidance: float) -> dict:
    seeds = [SEED0 + i for i in range(n)]
    rows = []
    for c in range(10):
        prompts = [D.prompt_for(c, D.TRAIN_TEMPLATES[0])] * n
        s = {which: scores(judge, world, world.generate_images(which, prompts, seeds, num_inference_steps=steps,
                                                               guidance_scale=guidance), c)
             for which in ("cloud", "edge")}
        rows.append({"class": c, "cloud": summary(s["cloud"]), "edge": summary(s["edge"]),
                     **paired(s["cloud"]["nearest"], s["edge"]["nearest"])})
        print(f"{c}: cloud {rows[-1]['cloud']['accuracy']:.3f}, edge {rows[-1]['edge']['accuracy']:.3f}, "
              f"cloud closer {rows[-1]['cloud_closer']:.2f}", flush=True)
    return {"per_class": rows, "ceiling": ceiling(judge, world)}


def table(res: dict) -> str:
    lines = ["| class | judge acc. cloud / edge | typical cloud / edge | median distance cloud / edge "
             "(real, real → VAE) | cloud closer (sign test p) |", "|---|---|---|---|---|"]
    for r in res["per_class"]:
        c, e, real, vae = r["cloud"], r["edge"], *(res["ceiling"][k][r["class"]] for k in ("real", "real_through_vae"))
        lines.append(f"| {r['class']} | {c['accuracy']:.2f} / {e['accuracy']:.2f} | {c['typical']:.2f} / "
                     f"{e['typical']:.2f} | {c['nearest_median']:.2f} / {e['nearest_median']:.2f} "
                     f"({real['nearest_median']:.2f}, {vae['nearest_median']:.2f}) | {r['cloud_closer']:.2f} "
                     f"({r['sign_test_p']:.2g}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=128, help="seeds per class")
    ap.add_argument("--smoke", action="store_true", help="2 seeds per class, 2 DDIM steps")
    ap.add_argument("--out", type=Path, help="JSON output (default bench/results/world_quality[_smoke].json)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ldm.quiet_library_output()
    n, steps, guidance = (2, 2, 2.0) if args.smoke else (args.per_class, 25, 2.0)
    world, judge = load_world(), fit_judge()
    res = {"sampling": {"per_class": n, "seed0": SEED0, "num_inference_steps": steps, "guidance_scale": guidance},
           "chance_accuracy": 0.1, **measure(world, judge, n, steps, guidance),
           "parameters": {w: sum(p.numel() for p in getattr(world, w).unet.parameters()) for w in ("cloud", "edge")},
           "train_steps": {w: world.manifest["config"][f"{w}_steps"] for w in ("cloud", "edge")},
           "smoke": args.smoke, "provenance": provenance()}
    out = args.out or ROOT / "bench" / "results" / f"world_quality{'_smoke' if args.smoke else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(table(res))
    print(f"\nwritten: {out}")
    return res


if __name__ == "__main__":
    main()
