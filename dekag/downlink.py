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

Build one from two runs with ``python -m dekag.downlink --makd runs/makd --tka runs/tka --out DIR``; either
half may come from an existing package instead (``--from-package`` for metaword + G-LoRA,
``--jscc-from-package`` for the codec, e.g. to keep the shipped codec when only the alignment changes, or to
pair a codec with a MAKD run on another edge whose latents have the same shape).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dekag.jscc import CalaLayer, ChannelConfig, JsccCodec
from dekag.jscc.condition_domain import ConditionDomain
from dekag.knowledge_package import (
    BaseModel,
    KnowledgePackage,
    KnowledgePackageError,
    base_model_from_folder,
    load_package,
    save_package,
)

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
    condition_domain: ConditionDomain = field(default_factory=lambda: ChannelConfig().condition_domain)
    latent_peak: float | None = None
    """Peak-to-peak range of the latents the codec was trained on: the one peak of every latent PSNR
    (``None`` in packages made before it was recorded: then each latent's own range)."""

    def aligned_edge(self, world):
        """A fresh edge pipeline of ``world`` (a miniature :class:`~dekag.miniature.world.World` or a
        :class:`~dekag.model_set.ModelSet`: anything with ``fresh_edge()``) with the metaword and G-LoRA loaded."""
        from dekag.makd.align import apply_package

        pipe = world.fresh_edge()
        apply_package(pipe, self.package)
        return pipe

    @torch.no_grad()
    def gate_weights(self, snr_db: float, delay_spread_s: float) -> list[float]:
        """CALA's gates g(c) for one condition (mapped through :attr:`condition_domain`), averaged over the
        adapted layers: R values."""
        c = self.condition_domain.apply(snr_db, delay_spread_s).condition.normalised(1)
        gates = [m.gates(c)[0] for m in self.codec.modules() if isinstance(m, CalaLayer)]
        return torch.stack(gates).mean(0).tolist() if gates else []


def _tka_part(tka_run_dir: str | Path | None, cala_stage: str, jscc_from: str | Path | None,
              latent_peak: float | None) -> tuple[dict, dict]:
    """(info, state dict) of the codec: a T-KA run's stage, or the ``jscc`` group of the package ``jscc_from``."""
    if (tka_run_dir is None) == (jscc_from is None):
        raise KnowledgePackageError("give exactly one codec source: a T-KA run folder or a package (jscc_from)")
    if jscc_from is not None:
        source = load_package(jscc_from)
        info = dict(source.info["tka"])
        if latent_peak is not None:
            info["latent_peak"] = float(latent_peak)
        return info, dict(source.groups["jscc"])
    from dekag.jscc.config import TkaConfig
    from dekag.jscc.train import load_stage

    tka_cfg = TkaConfig.load(Path(tka_run_dir) / "config.toml")
    stage = cala_stage or f"cala_{tka_cfg.cala.gate}"
    codec = load_stage(tka_run_dir, stage, tka_cfg)
    gate = next(m.gate_kind for m in codec.modules() if isinstance(m, CalaLayer))
    info = {"stage": stage, "codec": tka_cfg.codec.to_dict(), "cala": {**tka_cfg.cala.to_dict(), "gate": gate},
            "link": tka_cfg.training.link, "condition_domain": tka_cfg.channel.condition_domain.to_dict(),
            **({"latent_peak": float(latent_peak)} if latent_peak is not None else {})}
    return info, dict(codec.state_dict())


def build_downlink(out: str | Path, makd_run_dir: str | Path | None, tka_run_dir: str | Path | None, *,
                   cala_stage: str = "", edge_folder: str | Path | None = None, precision_bits: int = 16,
                   from_package: str | Path | None = None, latent_peak: float | None = None,
                   jscc_from: str | Path | None = None) -> KnowledgePackage:
    """Package a MAKD run's metaword + G-LoRA (or those of the package ``from_package``) and a T-KA run's
    CALA codec (or the codec of the package ``jscc_from``) for the edge model in ``edge_folder`` (default: the
    MAKD run's edge, or the package's base model); ``latent_peak`` is recorded as the peak of latent PSNR
    (default with ``jscc_from``: that package's)."""
    tka_info, jscc = _tka_part(tka_run_dir, cala_stage, jscc_from, latent_peak)
    if from_package is not None:
        source = load_package(from_package)
        makd_info, base = source.info["makd"], BaseModel(**source.manifest["base_model"])
        groups = {name: source.groups[name] for name in ("metaword", "glora")}
        if edge_folder is not None:
            base = base_model_from_folder(edge_folder, name="edge")
    elif makd_run_dir is not None:
        makd_info, groups, base = _makd_part(makd_run_dir, edge_folder)
    else:
        raise KnowledgePackageError("need a MAKD run folder or a package to take metaword and G-LoRA from")
    return save_package(out, {**groups, "jscc": jscc}, base, precision_bits, {"makd": makd_info, "tka": tka_info})


def _makd_part(makd_run_dir: str | Path, edge_folder: str | Path | None) -> tuple[dict, dict, BaseModel]:
    """(info, groups, base model) of a MAKD run: metaword + G-LoRA for the run's (or ``edge_folder``'s) edge."""
    from dekag.makd.align import makd_groups
    from dekag.makd.config import MakdConfig
    from dekag.miniature.world import CHECKPOINT_DIR

    cfg = MakdConfig.load(Path(makd_run_dir) / "config.toml")
    edge_folder = Path(edge_folder or cfg.edge_dir or Path(cfg.world_dir or CHECKPOINT_DIR) / "edge")
    info = {"metaword": cfg.metaword, "subject_word": cfg.subject_word, "rank": cfg.rank,
            "lora_targets": list(cfg.lora_targets), "num_inference_steps": cfg.num_inference_steps,
            "guidance_scale": cfg.guidance_scale}
    return info, makd_groups(makd_run_dir, cfg), base_model_from_folder(edge_folder, name="edge")


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
        domain = (ConditionDomain.from_dict(tka["condition_domain"]) if "condition_domain" in tka
                  else ChannelConfig().condition_domain)
        peak = tka.get("latent_peak")
        return Downlink(package=package, codec=codec.eval(), metaword=str(makd["metaword"]),
                        subject_word=str(makd["subject_word"]),
                        sampling={"num_inference_steps": int(makd["num_inference_steps"]),
                                  "guidance_scale": float(makd["guidance_scale"])},
                        condition_domain=domain, latent_peak=None if peak is None else float(peak))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # ConfigError, ConditionError are ValueErrors
        raise KnowledgePackageError(f"{package.folder}: not a downlink package ({type(exc).__name__}: {exc})") \
            from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dekag.downlink", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--makd", help="MAKD run folder (dekag-testbed align)")
    src.add_argument("--from-package", help="take metaword + G-LoRA from this package ('shipped': the shipped one)")
    codec = p.add_mutually_exclusive_group(required=True)
    codec.add_argument("--tka", help="T-KA run folder (dekag-testbed train)")
    codec.add_argument("--jscc-from-package", help="take the JSCC codec (and its T-KA info) from this package "
                                                   "('shipped': the shipped one)")
    p.add_argument("--out", default=str(SHIPPED))
    p.add_argument("--stage", default="", help="T-KA stage to ship (default cala_<gate>)")
    p.add_argument("--bits", type=int, default=16, choices=[16, 8, 4, 2])
    p.add_argument("--latents", help="the T-KA latents file: its peak-to-peak range becomes the package's PSNR peak")
    a = p.parse_args(argv)
    peak = None
    if a.latents:
        from dekag.jscc.latents import latent_file
        z = latent_file(a.latents).latents
        peak = float(z.max() - z.min())
    def named(value):
        return (SHIPPED if value == "shipped" else value) if value else None

    pkg = build_downlink(a.out, a.makd, a.tka, cala_stage=a.stage, precision_bits=a.bits,
                         from_package=named(a.from_package), latent_peak=peak, jscc_from=named(a.jscc_from_package))
    print(f"{pkg.folder}: {pkg.total_bytes} bytes, groups {sorted(pkg.groups)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
