"""Knowledge-package size at real scale, from the architecture alone (no weights, nothing downloaded).

The SD 2.1 UNet is built from its published config on the ``meta`` device (no memory), G-LoRA is attached to
its attention projections exactly as MAKD does (:func:`dekag.makd.glora.add_glora`), and a package of random
tensors of those shapes plus the metaword row (OpenCLIP-H: 1024) is written at every precision. The sizes are
exact for the G-LoRA and metaword groups; the JSCC group is listed for the 4×64×64 codec of a given config.

    python bench/package_size.py --rank 8        # ≈ 20 s on one core → bench/results/package_size.json
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
from dekag.knowledge_package import BaseModel, save_package  # noqa: E402

SD21_UNET = dict(sample_size=96, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=1024,
                 attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
"""``stabilityai/stable-diffusion-2-1`` ``unet/config.json`` (the fields that set the shapes)."""
SD21_TEXT_WIDTH = 1024


def glora_shapes(rank: int) -> tuple[dict[str, tuple[int, ...]], int]:
    """``{name: shape}`` of the G-LoRA tensors on the SD 2.1 UNet and the UNet's own parameter count."""
    from diffusers import UNet2DConditionModel

    from dekag.makd.glora import add_glora

    with torch.device("meta"):
        unet = UNet2DConditionModel(**SD21_UNET)
    base = sum(p.numel() for p in unet.parameters())
    add_glora(unet, rank)
    return {n: tuple(p.shape) for n, p in unet.named_parameters() if p.requires_grad}, base


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "package_size.json")
    args = ap.parse_args(argv)
    shapes, base = glora_shapes(args.rank)
    gen = torch.Generator().manual_seed(0)
    groups = {"glora": {n: torch.randn(s, generator=gen) * 0.01 for n, s in shapes.items()},
              "metaword": {"<meta>": torch.randn(1, SD21_TEXT_WIDTH, generator=gen)}}
    n_lora = sum(t.numel() for t in groups["glora"].values())
    res = {"model": "SD 2.1 UNet (published config), G-LoRA on to_q/to_k/to_v/to_out.0", "rank": args.rank,
           "unet_parameters": base, "glora_parameters": n_lora, "glora_tensors": len(shapes),
           "metaword_parameters": SD21_TEXT_WIDTH, "package_bytes": {}, "provenance": provenance()}
    with tempfile.TemporaryDirectory() as tmp:
        for bits in (32, 16, 8, 4, 2):
            pkg = save_package(Path(tmp) / str(bits), groups, BaseModel("sd21", "0" * 64), precision_bits=bits)
            res["package_bytes"][str(bits)] = pkg.total_bytes
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    print(f"SD 2.1 UNet {base / 1e6:.0f} M params; G-LoRA rank {args.rank}: {n_lora:,} params in {len(shapes)} "
          f"tensors; package (metaword + G-LoRA): "
          + ", ".join(f"{b} bit {n / 1e6:.2f} MB" for b, n in res["package_bytes"].items()))
    return res


if __name__ == "__main__":
    main()
