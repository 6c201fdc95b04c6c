"""The MAKD schedule and its baselines in one run: ``run_makd(config, out_dir)`` or
``python -m dekag.makd.align --config makd.toml --out runs/makd``.

1. S_CG: the cloud generates ``n_images`` images of the subject (seeds ``scg_seed…``, training templates);
   they are encoded with the *edge* VAE.
2. Metaword: a new token (initialised from ``init_word``) trained on S_CG, only its embedding row changes.
3. G-LoRA with the metaword fixed (MAKD), for ``rank`` and every rank of ``rank_sweep``.
4. Baseline "LoRA only": G-LoRA trained with the plain subject word, no metaword.
5. Evaluation on held-out seeds (training templates and held-out templates) of: none / metaword / lora /
   makd, the rank sweep, and the knowledge package at each precision of ``precision_sweep``.

The edge and cloud may be any text-to-image family with a UNet or a transformer denoiser
(:mod:`dekag.denoiser`). Every artefact is in diffusers' formats (``<stage>/learned_embeds.safetensors``,
``<stage>/pytorch_lora_weights.safetensors``) and the MAKD knowledge package is written to ``package/``.
Stages checkpoint every ``checkpoint_every`` steps; rerunning with the same ``out_dir`` resumes.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from common import ConfigError, provenance
from dekag import denoiser, ldm, metrics
from dekag.knowledge_package import KnowledgePackage, load_package, save_package
from dekag.makd.checkpoint import load_checkpoint, save_checkpoint
from dekag.makd.config import MakdConfig
from dekag.makd.glora import (
    LORA_FILE,
    adapters_disabled,
    add_glora,
    glora_state_dict,
    load_glora,
    save_glora,
    set_glora_state,
    train_glora,
)
from dekag.makd.loss import noise_prediction_loss
from dekag.makd.metaword import add_metaword, load_metaword, save_metaword, train_metaword
from dekag.makd.models import AlignmentModels, _match_size, load_models
from dekag.makd.precision import frozen_weight_dtype, make_accelerator

_TI_FILE = "learned_embeds.safetensors"


# ---------------------------------------------------------------- S_CG
def build_scg(models: AlignmentModels, cfg: MakdConfig, run_dir: Path) -> dict:
    """Cloud images of the subject and their edge-VAE latents; cached in ``run_dir/scg.safetensors``."""
    from safetensors.torch import load_file, save_file

    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "scg.safetensors"
    tpl_idx = [i % len(cfg.train_templates) for i in range(cfg.n_images)]
    if not path.is_file():
        prompts = [cfg.train_templates[i].format(cfg.subject_word) for i in tpl_idx]
        seeds = [cfg.scg_seed + i for i in range(cfg.n_images)]
        cloud_latents = ldm.generate_latents(models.cloud, prompts, seeds, num_inference_steps=cfg.num_inference_steps,
                                             guidance_scale=cfg.guidance_scale)
        images = ldm.decode_latents(models.cloud.vae, cloud_latents).float().cpu()
        edge = models.fresh_edge()
        size = denoiser.image_size(edge)
        edge_in = _match_size(images, torch.empty(1, 3, size, size))
        latents = ldm.encode_images(edge.vae, edge_in, torch.Generator().manual_seed(cfg.seed)).float().cpu()
        save_file({"images": images.contiguous(), "edge_latents": latents.contiguous()}, str(path))
    data = load_file(str(path))
    data["template_index"] = tpl_idx
    return data


def build_prior(models: AlignmentModels, cfg: MakdConfig, run_dir: Path) -> dict:
    """The prior set of prior preservation: the *unaligned edge's* own latents for ``cfg.prior_words``
    (``n_prior_images`` each, training templates cycled, seeds ``prior_seed…``), with their prompts; cached in
    ``run_dir/prior.safetensors``. ``{"latents": [N, C, h, w], "prompts": [N]}``."""
    from safetensors.torch import load_file, save_file

    prompts = [cfg.train_templates[j % len(cfg.train_templates)].format(w)
               for w in cfg.prior_words for j in range(cfg.n_prior_images)]
    path = run_dir / "prior.safetensors"
    if not path.is_file():
        z = ldm.generate_latents(models.fresh_edge(), prompts, [cfg.prior_seed + k for k in range(len(prompts))],
                                 num_inference_steps=cfg.num_inference_steps, guidance_scale=cfg.guidance_scale)
        save_file({"latents": z.float().cpu().contiguous()}, str(path))
    return {"latents": load_file(str(path))["latents"], "prompts": prompts}


# ---------------------------------------------------------------- training stages
def _loss_fn(pipe, scg: dict, word: str, cfg: MakdConfig, gen: torch.Generator, prior: dict | None = None,
             train_lora: bool = False):
    """The stage loss: noise prediction on a batch of S_CG; with ``prior`` plus ``cfg.prior_loss_weight`` × a loss
    on a batch of the prior set: DreamBooth's prior preservation (``prior_target = "noise"``) or the distance to
    the unaligned edge's own prediction there (``"frozen_edge"``: the LoRA switched off, distillation). In G-LoRA
    stages (``train_lora``) S_CG and prior prompts are dropped to "" with probability ``cfg.cond_dropout``, so the
    unconditional branch learns the subject and keeps the other classes."""
    from diffusers import DDPMScheduler

    ddpm = DDPMScheduler.from_config(pipe.scheduler.config)
    dtype = denoiser.denoiser(pipe).dtype
    latents = scg["edge_latents"].to(pipe.device, dtype)
    prompts = [cfg.train_templates[i].format(word) for i in scg["template_index"]]

    def batch_loss(z: torch.Tensor, texts: list[str], reference=None, dropout: float = 0.0) -> torch.Tensor:
        idx = torch.randint(0, len(texts), (cfg.batch_size,), generator=gen)
        drop = (torch.rand(cfg.batch_size, generator=gen) < dropout).tolist() if dropout > 0 else [False] * len(idx)
        batch = ["" if d else texts[i] for i, d in zip(idx.tolist(), drop)]
        return noise_prediction_loss(pipe, z[idx], batch, ddpm, gen, reference)

    dropout = cfg.cond_dropout if train_lora else 0.0
    if prior is None:
        return lambda: batch_loss(latents, prompts, dropout=dropout)
    prior_latents = prior["latents"].to(pipe.device, dtype)
    net = denoiser.denoiser(pipe)
    reference = (lambda: adapters_disabled(net)) if cfg.prior_target == "frozen_edge" else None
    return lambda: batch_loss(latents, prompts, dropout=dropout) + cfg.prior_loss_weight * batch_loss(
        prior_latents, prior["prompts"], reference, dropout)


def _run_stage(name: str, run_dir: Path, cfg: MakdConfig, steps: int, trainer, get_state, set_state,
               gen: torch.Generator) -> dict:
    """Run ``trainer(start, on_step, opt_state)`` with checkpoints in ``run_dir/checkpoints/<name>``."""
    ck = run_dir / "checkpoints" / f"{name}.safetensors"
    start, opt_state = 0, None
    resumed = load_checkpoint(ck)
    if resumed is not None:
        start, tensors, opt_state, rng = resumed
        set_state(tensors)
        gen.set_state(rng)
    bar = tqdm(total=steps, initial=start, desc=name, mininterval=2)

    def on_step(step: int, opt: torch.optim.Optimizer) -> None:
        bar.update(1)
        if step % cfg.checkpoint_every == 0 or step == steps:
            save_checkpoint(ck, step, get_state(), opt, gen)

    t0 = time.perf_counter()
    losses = trainer(start, on_step, opt_state)
    seconds = time.perf_counter() - t0
    bar.close()
    tail = losses[-20:]
    return {"steps": steps, "resumed_at": start, "seconds": seconds,
            "seconds_per_step": seconds / max(1, len(losses)),
            "final_loss": sum(tail) / len(tail) if tail else None}


def _stage_seed(cfg: MakdConfig, stage: str) -> int:
    return cfg.seed * 1_000_003 + sum(map(ord, stage))


def _stage_gen(cfg: MakdConfig, stage: str) -> torch.Generator:
    return torch.Generator().manual_seed(_stage_seed(cfg, stage))


def _training_edge(models: AlignmentModels, cfg: MakdConfig):
    """A fresh edge pipeline whose denoiser and VAE hold ``cfg.mixed_precision``'s frozen-weight dtype."""
    pipe = models.fresh_edge()
    dtype = frozen_weight_dtype(cfg.mixed_precision, cfg.device)
    if dtype != torch.float32:
        denoiser.denoiser(pipe).to(dtype)
        pipe.vae.to(dtype)
    return pipe


def train_metaword_stage(models: AlignmentModels, cfg: MakdConfig, run_dir: Path, scg: dict) -> dict:
    """Stage "metaword": writes ``metaword/learned_embeds.safetensors`` and ``metaword/stats.json``.
    The text encoder stays float32 (its embedding matrix is trained)."""
    out = run_dir / "metaword"
    if (out / "stats.json").is_file():
        return json.loads((out / "stats.json").read_text())
    pipe = _training_edge(models, cfg)
    token_id = add_metaword(pipe, cfg.metaword, cfg.init_word)
    emb = pipe.text_encoder.get_input_embeddings().weight
    accelerator = make_accelerator(cfg.mixed_precision, cfg.device)
    gen = _stage_gen(cfg, "metaword")
    loss = _loss_fn(pipe, scg, cfg.metaword, cfg, gen)

    def set_state(t):
        with torch.no_grad():
            emb[token_id] = t["row"].to(emb)

    stats = _run_stage("metaword", run_dir, cfg, cfg.metaword_steps,
                       lambda s, cb, o: train_metaword(pipe, token_id, loss, cfg.metaword_steps, cfg.metaword_lr,
                                                       s, cb, o, accelerator),
                       lambda: {"row": emb[token_id]}, set_state, gen)
    save_metaword(pipe, cfg.metaword, out / _TI_FILE)
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    return stats


def train_lora_stage(models: AlignmentModels, cfg: MakdConfig, run_dir: Path, scg: dict, rank: int,
                     with_metaword: bool, prior: dict | None = None) -> dict:
    """Stage "makd_r<rank>" (metaword loaded and fixed) or "lora_r<rank>" (plain subject word), with prior
    preservation on the ``prior`` set (:func:`build_prior`) when given.
    Frozen weights in ``cfg.mixed_precision``'s dtype, the LoRA params in float32 (``cast_training_params``)."""
    from diffusers.training_utils import cast_training_params

    name = f"{'makd' if with_metaword else 'lora'}_r{rank}"
    out = run_dir / name
    if (out / "stats.json").is_file():
        return json.loads((out / "stats.json").read_text())
    pipe = _training_edge(models, cfg)
    if with_metaword:
        load_metaword(pipe, _load_tensors(run_dir / "metaword" / _TI_FILE))
    net, prefix = denoiser.denoiser(pipe), denoiser.denoiser_name(pipe)
    pipe.text_encoder.to(net.dtype)
    params = add_glora(net, rank, cfg.lora_targets, seed=_stage_seed(cfg, f"{name}/init"))
    cast_training_params(net, torch.float32)
    pipe.text_encoder.requires_grad_(False)
    accelerator = make_accelerator(cfg.mixed_precision, cfg.device)
    gen = _stage_gen(cfg, name)
    loss = _loss_fn(pipe, scg, cfg.metaword if with_metaword else cfg.subject_word, cfg, gen, prior, train_lora=True)
    stats = _run_stage(name, run_dir, cfg, cfg.lora_steps,
                       lambda s, cb, o: train_glora(params, loss, cfg.lora_steps, cfg.lora_lr, s, cb, o, accelerator),
                       lambda: glora_state_dict(net, prefix), lambda t: set_glora_state(net, t), gen)
    stats["lora_params"] = sum(p.numel() for p in params)
    save_glora(net, out, prefix)
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    return stats


# ---------------------------------------------------------------- aligned edge
def aligned_edge(models_or_fresh_edge, run_dir: str | Path, cfg: MakdConfig, variant: str = "makd",
                 rank: int | None = None):
    """A fresh edge pipeline with the run's artefacts loaded (:func:`~dekag.makd.metaword.load_metaword`,
    :func:`~dekag.makd.glora.load_glora`). ``variant`` is one of none / metaword / lora / makd."""
    fresh = getattr(models_or_fresh_edge, "fresh_edge", models_or_fresh_edge)
    run_dir, rank = Path(run_dir), rank or cfg.rank
    if variant not in ("none", "metaword", "lora", "makd"):
        raise ValueError(f"unknown variant {variant!r}")
    pipe = fresh()
    if variant in ("metaword", "makd"):
        load_metaword(pipe, _load_tensors(run_dir / "metaword" / _TI_FILE))
    if variant in ("lora", "makd"):
        load_glora(pipe, _load_tensors(run_dir / f"{variant}_r{rank}" / LORA_FILE))
    return pipe


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def makd_groups(run_dir: str | Path, cfg: MakdConfig, rank: int | None = None) -> dict[str, dict[str, torch.Tensor]]:
    """The float32 tensor groups of a MAKD run for a knowledge package: ``metaword`` and ``glora``."""
    run_dir = Path(run_dir)
    return {"metaword": _load_tensors(run_dir / "metaword" / _TI_FILE),
            "glora": _load_tensors(run_dir / f"makd_r{rank or cfg.rank}" / LORA_FILE)}


def apply_package(pipe, package: KnowledgePackage) -> None:
    """Load a knowledge package's ``metaword`` and ``glora`` groups into a fresh edge pipeline."""
    if "metaword" in package.groups:
        load_metaword(pipe, dict(package.groups["metaword"]))
    if "glora" in package.groups:
        load_glora(pipe, dict(package.groups["glora"]))


def to_edge_prompt(prompt: str, cfg: MakdConfig) -> str:
    """Replace the subject word by the metaword (whole words only)."""
    return " ".join(cfg.metaword if w == cfg.subject_word else w for w in prompt.split(" "))


def aligned_edge_latents(run_dir: str | Path, prompts: Sequence[str], seeds: Sequence[int],
                         cfg: MakdConfig | None = None, pipe=None) -> torch.Tensor:
    """Scaled latents ``[B, C, h, w]`` (miniature: ``[B, 4, 8, 8]``) of the MAKD-aligned edge for ``prompts``
    naming the subject with its plain word (it is swapped for the metaword); ``cfg`` defaults to
    ``run_dir/config.toml``."""
    run_dir = Path(run_dir)
    cfg = cfg or MakdConfig.load(run_dir / "config.toml")
    pipe = pipe or aligned_edge(load_models(cfg), run_dir, cfg)
    return ldm.generate_latents(pipe, [to_edge_prompt(p, cfg) for p in prompts], seeds,
                                num_inference_steps=cfg.num_inference_steps, guidance_scale=cfg.guidance_scale)


# ---------------------------------------------------------------- evaluation
def _eval_sets(cfg: MakdConfig) -> dict[str, list[tuple[str, int]]]:
    held = [cfg.eval_seed + i for i in range(cfg.n_eval_seeds)]
    sets = {"heldout_seeds_train_prompts": [(t, s) for s in held for t in cfg.train_templates],
            "scg_seeds": [(cfg.train_templates[i % len(cfg.train_templates)], cfg.scg_seed + i)
                          for i in range(cfg.n_images)]}
    if cfg.held_out_templates:
        sets["heldout_seeds_heldout_prompts"] = [(t, s) for s in held for t in cfg.held_out_templates]
    return sets


class Evaluator:
    """Edge-vs-cloud consistency of edge pipelines; cloud images are generated once."""

    def __init__(self, models: AlignmentModels, cfg: MakdConfig):
        self.models, self.cfg, self.sets = models, cfg, _eval_sets(cfg)
        self.cloud = {k: self._images(models.cloud, v, cfg.subject_word) for k, v in self.sets.items()}

    def _images(self, pipe, items, word: str) -> torch.Tensor:
        z = ldm.generate_latents(pipe, [t.format(word) for t, _ in items], [s for _, s in items],
                                 num_inference_steps=self.cfg.num_inference_steps,
                                 guidance_scale=self.cfg.guidance_scale)
        return ldm.decode_latents(pipe.vae, z).float().cpu()

    def __call__(self, pipe, word: str) -> dict[str, dict]:
        """Per evaluation set and pooled over the held-out sets (``heldout``): the consistency metrics, PSNR/SSIM,
        and with a classifier ``subject_accuracy``; every rate with its 95 % Wilson interval over the images
        (one seed each): ``<rate>_ci95``; ``n_images``."""
        out = {}
        for name, items in self.sets.items():
            edge = self._images(pipe, items, word)
            cloud = self.cloud[name]
            row = self.models.score(_match_size(edge, cloud), cloud)
            if self.models.classify is not None:
                row["subject_accuracy"] = (self.models.classify(edge) == self.cfg.subject_class).float().mean().item()
            out[name] = {**row, "n_images": len(items)}
        held = [k for k in out if k.startswith("heldout")]
        n = sum(out[k]["n_images"] for k in held)
        out["heldout"] = {**{m: sum(out[k][m] * out[k]["n_images"] for k in held) / n for m in out[held[0]]},
                          "n_images": n}
        for row in out.values():
            for rate in ("label_agreement", "subject_accuracy"):
                if rate in row:
                    row[f"{rate}_ci95"] = metrics.wilson_interval(round(row[rate] * row["n_images"]),
                                                                  int(row["n_images"]))
        return out


# ---------------------------------------------------------------- the run
def _check_run_dir(run_dir: Path, cfg: MakdConfig) -> None:
    path = run_dir / "config.toml"
    if path.is_file():
        old = MakdConfig.load(path)
        keys = [k for k, v in cfg.to_dict().items()
                if k not in ("rank_sweep", "precision_sweep", "variants", "threads", "device")
                and old.to_dict().get(k) != v]
        if keys:
            raise ConfigError(f"{run_dir} holds a run with a different config ({', '.join(keys)}); "
                              "use another output folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(path)


def run_makd(cfg: MakdConfig, out_dir: str | Path, models: AlignmentModels | None = None) -> dict:
    """Run MAKD and its baselines, evaluate, write ``results.json`` and the knowledge package; resumable."""
    torch.set_num_threads(cfg.threads)
    run_dir = Path(out_dir)
    _check_run_dir(run_dir, cfg)
    models = models or load_models(cfg)
    t0 = time.perf_counter()
    scg = build_scg(models, cfg, run_dir)
    stages = {"scg_seconds": time.perf_counter() - t0}
    ranks = sorted({cfg.rank, *cfg.rank_sweep})
    need_meta = bool({"metaword", "makd"} & set(cfg.variants)) or bool(cfg.rank_sweep or cfg.precision_sweep)
    if need_meta:
        stages["metaword"] = train_metaword_stage(models, cfg, run_dir, scg)
    prior = build_prior(models, cfg, run_dir) if cfg.prior_loss_weight > 0 else None
    if "lora" in cfg.variants:
        stages[f"lora_r{cfg.rank}"] = train_lora_stage(models, cfg, run_dir, scg, cfg.rank, with_metaword=False,
                                                       prior=prior)
    if need_meta:
        for r in ranks:
            stages[f"makd_r{r}"] = train_lora_stage(models, cfg, run_dir, scg, r, with_metaword=True, prior=prior)

    package, info = None, {"rank": cfg.rank, "metaword": cfg.metaword, "subject_word": cfg.subject_word}
    if need_meta:
        package = save_package(run_dir / "package", makd_groups(run_dir, cfg), models.edge_base,
                               cfg.precision_bits, info)

    evaluate = Evaluator(models, cfg)
    words = {"none": cfg.subject_word, "metaword": cfg.metaword, "lora": cfg.subject_word, "makd": cfg.metaword}
    results: dict = {"config": cfg.to_dict(), "stages": stages, "variants": {}, "rank_sweep": {},
                     "precision_sweep": {}, "baselines": models.baselines, "provenance": provenance()}
    for v in tqdm(cfg.variants, desc="evaluate variants"):
        results["variants"][v] = evaluate(aligned_edge(models, run_dir, cfg, v), words[v])
    for r in cfg.rank_sweep:
        results["rank_sweep"][str(r)] = {**evaluate(aligned_edge(models, run_dir, cfg, "makd", r), cfg.metaword),
                                         "lora_params": stages[f"makd_r{r}"]["lora_params"]}
    for bits in cfg.precision_sweep:
        pkg = save_package(run_dir / f"package_{bits}bit", makd_groups(run_dir, cfg), models.edge_base, bits, info)
        pipe = models.fresh_edge()
        apply_package(pipe, load_package(pkg.folder, expected_base=models.edge_base))
        results["precision_sweep"][str(bits)] = {**evaluate(pipe, cfg.metaword), "package_bytes": pkg.total_bytes}
    if package is not None:
        results["package"] = {"folder": str(package.folder), "bytes": package.total_bytes,
                              "precision_bits": cfg.precision_bits}
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dekag.makd.align", description="MAKD alignment and baselines")
    ap.add_argument("--config", type=Path, help="TOML file with MakdConfig fields (default: all defaults)")
    ap.add_argument("--out", type=Path, required=True, help="run folder (rerun the same folder to resume)")
    args = ap.parse_args(argv)
    ldm.quiet_library_output()
    cfg = MakdConfig.load(args.config) if args.config else MakdConfig()
    results = run_makd(cfg, args.out)
    rows = {v: row["heldout"] for v, row in results["variants"].items()}
    if results["baselines"]:
        rows = {"chance": results["baselines"]["chance"], **rows, "ceiling": results["baselines"]["ceiling"]}
    for v, h in rows.items():
        print(f"{v:9s} feature cosine {h['feature_cosine']:.3f}"
              + (f"  centred cosine {h['centred_cosine']:.3f}" if "centred_cosine" in h else "")
              + (f"  label agreement {h['label_agreement']:.3f}" if "label_agreement" in h else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
