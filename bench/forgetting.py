"""Alignment without forgetting, on the miniature world: per-class accuracy of the edge on plain prompts for
every digit, judged by an independent classifier (:mod:`dekag.miniature.judge`, an SVC on real digits), for

* ``cloud``: the teacher (the ceiling of what alignment can reach),
* ``unaligned``: the edge as shipped in the world (no metaword, no G-LoRA),
* ``no_prior``: MAKD without prior preservation,
* ``prior``: the shipped recipe (``experiments/configs/makd_shipped.toml``): MAKD with prior preservation
  (``prior_loss_weight`` × the loss on the unaligned edge's own images of the other nine digits, DreamBooth's
  class-prior loss), same budget otherwise; ``--prior-weight`` overrides the recipe's weight;

and the subject's consistency with the cloud (same prompt and seed) beside its chance (real digits of different
classes) and ceiling (real digits of the same class): feature cosine, centred cosine, label agreement of the
world's feature net and of the judge, with 95 % Wilson intervals over the seeds.

    OMP_NUM_THREADS=1 python bench/forgetting.py --run-dir runs/forgetting     # ≈ 10 min on one core
    python bench/forgetting.py --smoke                                         # tiny sizes, numbers meaningless

``--run-dir`` keeps the two MAKD runs (``no_prior/``, ``prior/``; rerun to resume); ``prior/package`` is the
G-KA half of the shipped knowledge package when the weight is the recipe's.

Writes ``bench/results/forgetting.json`` (``--smoke``: ``forgetting_smoke.json``) and prints markdown tables.
The subject is prompted with the metaword on the aligned edges and with its plain word on the unaligned one.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import provenance  # noqa: E402
from dekag import ldm, metrics  # noqa: E402
from dekag.makd.align import aligned_edge, run_makd, to_edge_prompt  # noqa: E402
from dekag.makd.config import MakdConfig  # noqa: E402
from dekag.makd.models import load_models  # noqa: E402
from dekag.miniature import data as D  # noqa: E402
from dekag.miniature.judge import fit_judge  # noqa: E402
from dekag.miniature.world import load_world  # noqa: E402

EVAL_SEED = 400_000
"""Per-class evaluation seeds (clear of S_CG 0…, MAKD evaluation 100 000…, S_EG 200 000…, prior 300 000…)."""
TOLERANCE = 0.05
"""Target: every other class within 5 points of the unaligned edge."""
SUBJECT_TARGET = 0.9


RECIPE = ROOT / "experiments" / "configs" / "makd_shipped.toml"


def prior_config(weight: float | None, smoke: bool, target: str | None = None) -> MakdConfig:
    """The shipped recipe, with ``prior_loss_weight`` = ``weight`` and ``prior_target`` = ``target`` (``None``:
    the recipe's; weight 0: no prior)."""
    cfg = MakdConfig.load(RECIPE).to_dict()
    if weight is not None:
        cfg["prior_loss_weight"] = weight
    if target is not None:
        cfg["prior_target"] = target
    if cfg["prior_loss_weight"] == 0:
        cfg["prior_target"] = MakdConfig().prior_target     # unused without a prior: the plain MAKD config
    if smoke:
        cfg.update(n_images=4, n_eval_seeds=2, num_inference_steps=3, metaword_steps=2, lora_steps=2, batch_size=2,
                   prior_words=cfg["prior_words"][:2], n_prior_images=2)
    return MakdConfig(**cfg)


def _images(pipe, vae, prompts: list[str], seeds: list[int], steps: int, guidance: float) -> torch.Tensor:
    return ldm.decode_latents(vae, ldm.generate_latents(pipe, prompts, seeds, num_inference_steps=steps,
                                                        guidance_scale=guidance))


def per_class(edges: dict, world, judge, cfg: MakdConfig, n: int) -> tuple[dict, dict]:
    """Per-class judge accuracy of each edge on ``D.TRAIN_TEMPLATES[0]`` prompts (``n`` seeds per class) and the
    subject images (for consistency)."""
    labels = torch.arange(10).repeat_interleave(n)
    seeds = [EVAL_SEED + i % n for i in range(10 * n)]   # the same seeds for every class and edge
    table, subject = {}, {}
    for name, (pipe, aligned) in edges.items():
        prompts = [D.prompt_for(int(c), D.TRAIN_TEMPLATES[0]) for c in labels]
        if aligned:
            prompts = [to_edge_prompt(p, cfg) for p in prompts]
        images = _images(pipe, world.vae, prompts, seeds, cfg.num_inference_steps, cfg.guidance_scale)
        counts = judge.per_class_accuracy(images, labels)
        typical = judge.typical(images)
        table[name] = {str(c): {"accuracy": k / m, "ci95": metrics.wilson_interval(k, m), "n": m,
                                "typical": typical[labels == c].float().mean().item()}
                       for c, (k, m) in counts.items()}
        subject[name] = images[labels == cfg.subject_class]
    return table, subject


def consistency_table(subject: dict, world, judge, cfg: MakdConfig, n: int) -> dict:
    """Subject consistency of each edge with the cloud (same prompts and seeds) and the real-image baselines."""
    net = world.features
    cloud = _images(world.cloud, world.vae, [D.prompt_for(cfg.subject_class, D.TRAIN_TEMPLATES[0])] * n,
                    [EVAL_SEED + i for i in range(n)], cfg.num_inference_steps, cfg.guidance_scale)
    base = metrics.real_image_baselines(net.features, world.dataset.images, world.dataset.labels,
                                        classify=lambda x: net(x).argmax(1))
    judged = metrics.real_image_baselines(net.features, world.dataset.images, world.dataset.labels,
                                          classify=judge.predict)
    centre = base.pop("centre")
    judged.pop("centre")
    out = {"chance": {**base["chance"], "judge_agreement": judged["chance"]["label_agreement"]},
           "ceiling": {**base["ceiling"], "judge_agreement": judged["ceiling"]["label_agreement"]}}
    for name, images in subject.items():
        row = metrics.consistency(net.features, images, cloud, centre, lambda x: net(x).argmax(1))
        agree = int((judge.predict(images) == judge.predict(cloud)).sum())
        label = int(round(row["label_agreement"] * len(images)))
        out[name] = {**row, "judge_agreement": agree / len(images),
                     "label_agreement_ci95": metrics.wilson_interval(label, len(images)),
                     "judge_agreement_ci95": metrics.wilson_interval(agree, len(images)), "n": len(images)}
    return out


def verdict(table: dict, subject_class: int, name: str) -> dict:
    """Target check of edge ``name`` against the unaligned edge."""
    drops = {c: table["unaligned"][c]["accuracy"] - table[name][c]["accuracy"] for c in table[name]
             if int(c) != subject_class}
    subject = table[name][str(subject_class)]["accuracy"]
    return {"max_drop": max(drops.values()), "worst_class": max(drops, key=drops.get), "subject_accuracy": subject,
            "subject_typical": table[name][str(subject_class)]["typical"],
            "mean_other_accuracy": sum(table[name][c]["accuracy"] for c in drops) / len(drops),
            "target_met": max(drops.values()) <= TOLERANCE and subject >= SUBJECT_TARGET}


def tables(res: dict) -> str:
    names = list(res["per_class"])
    lines = [f"**Per-class accuracy (independent SVC, {res['n_per_class']} seeds per class, plain prompts; the "
             f"subject with the metaword on aligned edges; in brackets the 95 % interval, in parentheses the "
             f"fraction that looks like a printed digit at all, Judge.typical)**", "",
             "| class | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for c in range(10):
        cells = []
        for name in names:
            r = res["per_class"][name][str(c)]
            cells.append(f"{r['accuracy']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] ({r['typical']:.2f})")
        mark = " (subject)" if c == res["subject_class"] else ""
        lines.append(f"| {c} {D.CLASS_WORDS[c]}{mark} | " + " | ".join(cells) + " |")
    for name, v in res["verdicts"].items():
        lines.append(f"\n{name}: subject {v['subject_accuracy']:.2f} (typical {v['subject_typical']:.2f}), "
                     f"mean other {v['mean_other_accuracy']:.2f}, "
                     f"largest drop vs unaligned {v['max_drop']:+.2f} (class {v['worst_class']}), "
                     f"target {'met' if v['target_met'] else 'NOT met'}")
    c = res["consistency"]
    keys = ["feature_cosine", "centred_cosine", "label_agreement", "judge_agreement"]
    lines += ["", "**Subject consistency with the cloud (same prompt, same seed)**, beside chance and ceiling", "",
              "| | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for name in ["chance", *(n for n in names if n in c), "ceiling"]:
        row = c[name]
        cells = [f"{row[k]:.3f}" for k in keys]
        if "label_agreement_ci95" in row:
            lo, hi = row["label_agreement_ci95"]
            cells[2] += f" [{lo:.2f}, {hi:.2f}]"
            lo, hi = row["judge_agreement_ci95"]
            cells[3] += f" [{lo:.2f}, {hi:.2f}]"
        label = {"chance": "chance (real, different class)", "ceiling": "ceiling (real, same class)"}.get(name, name)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (a smoke check, numbers meaningless)")
    ap.add_argument("--run-dir", type=Path, help="keep the MAKD run here (rerun to resume); default: a temp dir")
    ap.add_argument("--prior-weight", type=float, help="prior_loss_weight of the prior run (default: the recipe's)")
    ap.add_argument("--prior-target", choices=("noise", "frozen_edge"),
                    help="prior_target of the prior run (default: the recipe's)")
    ap.add_argument("--per-class", type=int, default=32, help="seeds per class")
    ap.add_argument("--out", type=Path, help="JSON output (default bench/results/forgetting[_smoke].json)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ldm.quiet_library_output()
    cfgs = {"no_prior": prior_config(0.0, args.smoke), "prior": prior_config(args.prior_weight, args.smoke, args.prior_target)}
    cfg = cfgs["prior"]
    n = 2 if args.smoke else args.per_class
    world = load_world()
    judge = fit_judge()
    edges, stages = {"cloud": (world.cloud, False), "unaligned": (world.fresh_edge(), False)}, {}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.run_dir or Path(tmp)
        for name, c in cfgs.items():
            stages[name] = run_makd(c, root / name)["stages"]
            edges[name] = (aligned_edge(load_models(c), root / name, c), True)
        table, subject = per_class(edges, world, judge, cfg, n)
    res = {"config": cfg.to_dict(), "subject_class": cfg.subject_class, "n_per_class": n,
           "judge": {"kind": "sklearn SVC (RBF, C=10) on rendered digits of seed JUDGE_SEED, world + Computer "
                             "Modern fonts (dekag.miniature.judge); accuracy on the world's dataset",
                     "held_out_accuracy": judge.held_out_accuracy},
           "per_class": table, "verdicts": {k: verdict(table, cfg.subject_class, k) for k in cfgs},
           "consistency": consistency_table({k: v for k, v in subject.items() if k != "cloud"}, world, judge, cfg, n),
           "makd_stages": stages, "smoke": args.smoke, "provenance": provenance()}
    out = args.out or ROOT / "bench" / "results" / f"forgetting{'_smoke' if args.smoke else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(tables(res))
    print(f"\nwritten: {out}")
    return res


if __name__ == "__main__":
    main()
