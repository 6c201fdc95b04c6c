"""The downlink knowledge package as the testbed uses it: generation knowledge (metaword + G-LoRA from a
MAKD run) and transmission knowledge (the JSCC codec with CALA from a T-KA run) in one
:mod:`dekag.knowledge_package` folder, verified against the edge base model it was made for.

>>> from dekag.miniature.world import load_world
>>> world = load_world()
>>> dl = load_downlink(world=world)                        # the shipped miniature package, verified
>>> pipe = dl.aligned_edge(world)                          # fresh edge + metaword + G-LoRA
>>> latent = torch.zeros(1, 4, 8, 8)
>>> dl.codec.encode(latent, (12.0, 300e-9)).shape          # CALA gated on (SNR dB, delay spread s)
torch.Size([1, 128])

Build one from two runs with ``python -m dekag.downlink --makd runs/makd --tka runs/tka --out DIR``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from dekag.jscc import CalaLayer, Condition, JsccCodec
from dekag.knowledge_package import (BaseModel, KnowledgePackage, KnowledgePackageError, base_model_from_folder,
                                     load_package, save_package)

SHIPPED = Path(__file__).resolve().parent / "miniature" / "checkpoints" / "downlink"
"""The package built from the shipped miniature world's MAKD and T-KA runs."""


@dataclass
class Downlink:
    """A loaded package: ``codec`` (JSCC + CALA, eval mode), the metaword, and the edge sampling settings."""

    package: KnowledgePackage
    codec: JsccCodec
    metaword: str
    subject_word: str
    sampling: dict

    def aligned_edge(self, world):
        """A fresh edge pipeline of ``world`` with the metaword and G-LoRA loaded the diffusers way."""
        from dekag.makd.align import apply_package

        pipe = world.fresh_edge()
        apply_package(pipe, self.package)
        return pipe

    @torch.no_grad()
    def gate_weights(self, snr_db: float, delay_spread_s: float) -> list[float]:
        """CALA's gates g(c) for one condition, averaged over the adapted layers: R values."""
        c = Condition(snr_db, delay_spread_s).normalised(1)
        gates = [m.gates(c)[0] for m in self.codec.modules() if isinstance(m, CalaLayer)]
        return torch.stack(gates).mean(0).tolist() if gates else []


def build_downlink(out: str | Path, makd_run_dir: str | Path, tka_run_dir: str | Path, *, cala_stage: str = "",
                   edge_folder: str | Path | None = None, precision_bits: int = 16) -> KnowledgePackage:
    """Package a MAKD run's metaword + G-LoRA and a T-KA run's CALA codec for the edge model in ``edge_folder``
    (default: the MAKD run's world edge)."""
    from dekag.jscc.config import TkaConfig
    from dekag.jscc.train import load_stage
    from dekag.makd.align import makd_groups
    from dekag.makd.config import MakdConfig
    from dekag.miniature.world import CHECKPOINT_DIR

    makd_cfg = MakdConfig.load(Path(makd_run_dir) / "config.toml")
    tka_cfg = TkaConfig.load(Path(tka_run_dir) / "config.toml")
    stage = cala_stage or f"cala_{tka_cfg.cala.gate}"
    codec = load_stage(tka_run_dir, stage, tka_cfg)
    edge_folder = Path(edge_folder or makd_cfg.edge_dir or Path(makd_cfg.world_dir or CHECKPOINT_DIR) / "edge")
    groups = {**makd_groups(makd_run_dir, makd_cfg), "jscc": dict(codec.state_dict())}
    gate = next(m.gate_kind for m in codec.modules() if isinstance(m, CalaLayer))
    info = {"makd": {"metaword": makd_cfg.metaword, "subject_word": makd_cfg.subject_word, "rank": makd_cfg.rank,
                     "num_inference_steps": makd_cfg.num_inference_steps,
                     "guidance_scale": makd_cfg.guidance_scale},
            "tka": {"stage": stage, "codec": tka_cfg.codec.to_dict(), "cala": {**tka_cfg.cala.to_dict(), "gate": gate}}}
    return save_package(out, groups, base_model_from_folder(edge_folder, name="edge"), precision_bits, info)


def load_downlink(folder: str | Path | None = None, world=None, expected_base: BaseModel | None = None) -> Downlink:
    """Load and verify a package (default: the shipped one). With ``world`` the package must have been made
    for ``world``'s edge model; a mismatch raises :class:`~dekag.knowledge_package.PackageMismatchError`."""
    from dekag.jscc import apply_cala
    from dekag.jscc.config import CalaConfig, CodecConfig

    if expected_base is None and world is not None:
        expected_base = base_model_from_folder(Path(world.folder) / "edge", name="edge")
    package = load_package(folder or SHIPPED, expected_base=expected_base)
    for group in ("metaword", "glora", "jscc"):
        if group not in package.groups:
            raise KnowledgePackageError(f"{package.folder}: no {group!r} group; a downlink package needs "
                                        "metaword, glora and jscc")
    try:
        tka, makd = package.info["tka"], package.info["makd"]
        codec = JsccCodec(CodecConfig.from_dict(tka["codec"]))
        apply_cala(codec, CalaConfig.from_dict(tka["cala"]))
        codec.load_state_dict(package.groups["jscc"])
        return Downlink(package=package, codec=codec.eval(), metaword=str(makd["metaword"]),
                        subject_word=str(makd["subject_word"]),
                        sampling={"num_inference_steps": int(makd["num_inference_steps"]),
                                  "guidance_scale": float(makd["guidance_scale"])})
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # ConfigError is a ValueError
        raise KnowledgePackageError(f"{package.folder}: not a downlink package ({type(exc).__name__}: {exc})") \
            from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dekag.downlink", description=__doc__.split("\n\n")[0])
    p.add_argument("--makd", required=True, help="MAKD run folder (dekag-testbed align)")
    p.add_argument("--tka", required=True, help="T-KA run folder (dekag-testbed train)")
    p.add_argument("--out", default=str(SHIPPED))
    p.add_argument("--stage", default="", help="T-KA stage to ship (default cala_<gate>)")
    p.add_argument("--bits", type=int, default=16, choices=[16, 8, 4, 2])
    a = p.parse_args(argv)
    pkg = build_downlink(a.out, a.makd, a.tka, cala_stage=a.stage, precision_bits=a.bits)
    print(f"{pkg.folder}: {pkg.total_bytes} bytes, groups {sorted(pkg.groups)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
