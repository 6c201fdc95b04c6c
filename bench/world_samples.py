"""Sample sheet of the miniature world: cloud, unaligned edge and edge + knowledge package, every digit.

Rows are the digits 0…9 ("a photo of a <digit>"; the subject with the package's metaword on the aligned edge),
columns seeds ``--seed0…``; the three panels share prompts and seeds, sampled with the package's settings (25
DDIM steps, guidance 2 for the shipped one).

    OMP_NUM_THREADS=1 python bench/world_samples.py                 # ≈ 1 min → docs/images/world_samples.png
    python bench/world_samples.py --smoke --out /tmp/samples.png     # 2 seeds, 2 steps (numbers meaningless)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dekag import ldm  # noqa: E402
from dekag.downlink import load_downlink  # noqa: E402
from dekag.makd.align import to_edge_prompt  # noqa: E402
from dekag.miniature import data as D  # noqa: E402
from dekag.miniature.world import load_world  # noqa: E402

EVAL_SEED = 400_000
"""The forgetting bench's per-class seeds (``bench/forgetting.py``), so the sheet shows images it judged."""


def sample_sheet(world, downlink, seeds: list[int], steps: int) -> dict[str, torch.Tensor]:
    """``{panel: images [10, len(seeds), 3, 32, 32]}`` for the cloud, the unaligned and the aligned edge."""
    sampling = {**downlink.sampling, "num_inference_steps": steps}
    words = [D.prompt_for(c, D.TRAIN_TEMPLATES[0]) for c in range(10)]
    aligned = [to_edge_prompt(p, downlink) for p in words]    # the package carries metaword and subject word
    panels = {"cloud": (world.cloud, words), "edge, unaligned": (world.fresh_edge(), words),
              "edge + package": (downlink.aligned_edge(world), aligned)}
    out = {}
    for name, (pipe, prompts) in panels.items():
        flat = [p for p in prompts for _ in seeds]
        z = ldm.generate_latents(pipe, flat, seeds * 10, **sampling)
        images = ldm.decode_latents(world.vae, z)
        out[name] = images.reshape(10, len(seeds), *images.shape[1:])
    return out


def save_sheet(panels: dict[str, torch.Tensor], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 6.6))
    for ax, (name, images) in zip(axes, panels.items()):
        rows, cols = images.shape[:2]
        grid = images.permute(0, 3, 1, 4, 2).reshape(rows * 32, cols * 32, 3)
        ax.imshow(((grid + 1) / 2).clamp(0, 1).numpy())
        ax.set_title(name, loc="left", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", help="downlink package folder (default: the shipped one)")
    ap.add_argument("--seeds", type=int, default=6, help="columns per panel")
    ap.add_argument("--seed0", type=int, default=EVAL_SEED)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "world_samples.png")
    ap.add_argument("--smoke", action="store_true", help="2 seeds, 2 DDIM steps")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ldm.quiet_library_output()
    world = load_world()
    downlink = load_downlink(args.package, world=world)
    n, steps = (2, 2) if args.smoke else (args.seeds, int(downlink.sampling["num_inference_steps"]))
    save_sheet(sample_sheet(world, downlink, [args.seed0 + i for i in range(n)], steps), args.out)
    print(f"written: {args.out}")
    return args.out


if __name__ == "__main__":
    main()
