"""Train the miniature world on a CPU and write its checkpoints: ``python -m dekag.miniature.train_world``.

Order: VAE (reconstruction + KL) → feature classifier → latents of the dataset → cloud LDM (all ten classes)
→ edge LDM (every class except ``held_out_class``, so it has never seen the subject). The dataset is the
rendered digits of :func:`dekag.miniature.data.load_digits_dataset` (fixed fonts and seed). Every stage draws
from its own generator seeded by ``(seed, stage name)``, so the same config gives the same world whether the
stages run in one process or the LDMs in separate ones (``--reuse-vae-and-features --ldms edge``). The result
is a folder with ``vae/``, ``cloud/`` and ``edge/`` (diffusers pipeline folders without their VAE; both share
``vae/``), ``features.safetensors`` and ``world.json`` (config, dataset fingerprint, SHA-256 of every file,
quality figures including each model's per-class accuracy under the independent judge).
The cloud (the teacher) is the larger model and trains longer than the edge; both save the exponential moving
average of their weights. With the default config this takes about 30 minutes on one free core (about 20 with the
two LDMs in parallel processes).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.training_utils import EMAModel
from tqdm import tqdm

from common import ConfigError, TomlConfig
from dekag import ldm
from dekag.miniature import data as D
from dekag.miniature import models as M
from dekag.miniature.tokenizer import build_tokenizer

DEFAULT_DIR = Path(__file__).resolve().parent / "checkpoints"
JUDGED_SAMPLING = {"per_class": 64, "seed": 1234, "num_inference_steps": 25, "guidance_scale": 2.0}
"""How ``world.json``'s ``judge_accuracy`` is measured: seeds per class, first seed, and the knowledge package's
sampler settings (25 DDIM steps, guidance 2)."""


@dataclass
class TrainWorldConfig(TomlConfig):
    """Hyper-parameters of the miniature world (all seeded by ``seed``)."""

    seed: int = 0
    threads: int = 1
    held_out_class: int = 7             # the edge never sees this class: the alignment subject
    max_shift_px: int = 1               # augmentation: random integer shifts of the 32×32 digits
    vae_steps: int = 800
    vae_batch: int = 32
    vae_lr: float = 2e-3
    vae_kl_weight: float = 1e-4
    feature_epochs: int = 15
    feature_lr: float = 3e-3
    latent_copies: int = 4              # shifted copies of each image encoded for LDM training
    cloud_steps: int = 6000             # the teacher: larger (models.CLOUD_SIZE) and trained longer
    edge_steps: int = 4800
    ldm_batch: int = 32
    ldm_lr: float = 1.5e-3
    cond_dropout: float = 0.1           # prompt replaced by "" with this probability (classifier-free guidance)
    ema_decay: float = 0.999            # > 0: the saved LDM weights are this exponential moving average (diffusers
                                        # EMAModel, with its warm-up) of the trained ones; 0 saves the last step

    def __post_init__(self) -> None:
        if not 0 <= self.held_out_class <= 9:
            raise ConfigError(f"held_out_class must be in 0..9, got {self.held_out_class}")
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ConfigError(f"cond_dropout must be in [0, 1), got {self.cond_dropout}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        for name in ("vae_steps", "cloud_steps", "edge_steps", "vae_batch", "ldm_batch", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


def _stage_generator(cfg: TrainWorldConfig, stage: str) -> torch.Generator:
    """The generator of one stage; also seeds torch's global generator, which diffusers/transformers use to
    initialise weights."""
    seed = cfg.seed * 1_000_003 + sum(ord(ch) * 31 ** i for i, ch in enumerate(stage)) % 1_000_003
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _cosine_lr(opt: torch.optim.Optimizer, steps: int, warmup: int = 50):
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))


def train_vae(ds: D.DigitsDataset, cfg: TrainWorldConfig):
    """Train the ``AutoencoderKL``; sets ``scaling_factor`` so latents have unit standard deviation."""
    gen = _stage_generator(cfg, "vae")
    vae = M.build_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    sched = _cosine_lr(opt, cfg.vae_steps)
    bar = tqdm(range(cfg.vae_steps), desc="vae", mininterval=5)
    for _ in bar:
        idx = torch.randint(0, len(ds.labels), (cfg.vae_batch,), generator=gen)
        x = D.random_shift(ds.images[idx], cfg.max_shift_px, gen)
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=gen)).sample
        loss = F.mse_loss(rec, x) + cfg.vae_kl_weight * post.kl().mean() / x[0].numel()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        z = vae.encode(ds.images[:512]).latent_dist.mean
        vae.register_to_config(scaling_factor=float(1.0 / z.std()))
    return vae


def train_features(train: D.DigitsDataset, cfg: TrainWorldConfig) -> M.FeatureNet:
    gen = _stage_generator(cfg, "features")
    net = M.FeatureNet()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.feature_lr)
    for _ in tqdm(range(cfg.feature_epochs), desc="features", mininterval=5):
        perm = torch.randperm(len(train.labels), generator=gen)
        for i in range(0, len(perm), 64):
            idx = perm[i:i + 64]
            x = D.random_shift(train.images[idx], cfg.max_shift_px, gen)
            loss = F.cross_entropy(net(x), train.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval().requires_grad_(False)


def encode_latents(vae, ds: D.DigitsDataset, cfg: TrainWorldConfig):
    """Scaled latents ``[copies·N, 4, 8, 8]`` of randomly shifted copies and their labels ``[copies·N]``."""
    gen, copies, max_shift_px = _stage_generator(cfg, "encode"), cfg.latent_copies, cfg.max_shift_px
    zs = []
    with torch.no_grad():
        for _ in range(copies):
            x = D.random_shift(ds.images, max_shift_px, gen)
            zs.append(vae.encode(x).latent_dist.sample(generator=gen) * vae.config.scaling_factor)
    return torch.cat(zs), ds.labels.repeat(copies)


def train_ldm(latents: torch.Tensor, labels: torch.Tensor, size: M.LdmSize, steps: int, cfg: TrainWorldConfig,
              desc: str):
    """Jointly train a text encoder and UNet with the noise-prediction loss on prompts naming each label."""
    gen = _stage_generator(cfg, desc)
    tok = build_tokenizer()
    unet, text = M.build_unet(size), M.build_text_encoder(size, len(tok))
    ddpm, _ = M.build_schedulers()
    templates = D.TRAIN_TEMPLATES + D.HELD_OUT_TEMPLATES
    params = list(unet.parameters()) + list(text.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.ldm_lr, weight_decay=0.0)
    sched = _cosine_lr(opt, steps)
    ema = EMAModel(params, decay=cfg.ema_decay, use_ema_warmup=True) if cfg.ema_decay > 0 else None
    bar = tqdm(range(steps), desc=desc, mininterval=5)
    for _ in bar:
        idx = torch.randint(0, len(labels), (cfg.ldm_batch,), generator=gen)
        tpl = torch.randint(0, len(templates), (cfg.ldm_batch,), generator=gen).tolist()
        drop = (torch.rand(cfg.ldm_batch, generator=gen) < cfg.cond_dropout).tolist()
        prompts = ["" if d else D.prompt_for(int(labels[i]), templates[t]) for i, t, d in zip(idx, tpl, drop)]
        ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids
        z0 = latents[idx]
        noise = torch.randn(z0.shape, generator=gen)
        t = torch.randint(0, ddpm.config.num_train_timesteps, (cfg.ldm_batch,), generator=gen)
        pred = unet(ddpm.add_noise(z0, noise, t), t, text(ids)[0]).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if ema is not None:
            ema.step(params)
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    if ema is not None:
        ema.copy_to(params)
    return unet.eval().requires_grad_(False), text.eval().requires_grad_(False), tok


def _save_ldm(out: Path, vae, unet, text, tok) -> None:
    """Save as a diffusers pipeline folder without ``vae/`` (the world's VAE is shared)."""
    import shutil

    from diffusers import StableDiffusionPipeline

    _, ddim = M.build_schedulers()
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=ddim,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out)
    shutil.rmtree(out / "vae")


def train_world(cfg: TrainWorldConfig, out_dir: Path = DEFAULT_DIR, reuse_vae_and_features: bool = False,
                ldms: tuple[str, ...] = ("cloud", "edge")) -> dict:
    """Train everything and write the checkpoint folder; returns the ``world.json`` content.

    ``reuse_vae_and_features`` keeps an existing ``vae/`` and ``features.safetensors`` in ``out_dir`` and
    trains only the LDMs named in ``ldms``. ``world.json`` is rewritten by every call (``train_seconds`` merged
    with those of an earlier call of the same config); the judged sample accuracy is added once both LDMs exist."""
    from safetensors.torch import save_file

    torch.set_num_threads(cfg.threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = D.load_digits_dataset()
    train, test = ds.split(0.2, cfg.seed)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    if reuse_vae_and_features and (out_dir / "vae").is_dir() and (out_dir / "features.safetensors").is_file():
        from diffusers import AutoencoderKL
        from safetensors.torch import load_file

        vae = AutoencoderKL.from_pretrained(out_dir / "vae").eval().requires_grad_(False)
        feats = M.FeatureNet()
        feats.load_state_dict(load_file(str(out_dir / "features.safetensors")))
        feats.eval().requires_grad_(False)
    else:
        vae = train_vae(train, cfg)
        vae.save_pretrained(out_dir / "vae")
        seconds["vae"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        feats = train_features(train, cfg)
        save_file(feats.state_dict(), str(out_dir / "features.safetensors"), metadata={"format": "pt"})
        seconds["features"] = time.perf_counter() - t0

    latents, labels = encode_latents(vae, train, cfg) if ldms else (None, None)
    for name, size, steps, keep in (("cloud", M.CLOUD_SIZE, cfg.cloud_steps, None),
                                    ("edge", M.EDGE_SIZE, cfg.edge_steps, cfg.held_out_class)):
        if name not in ldms:
            continue
        t0 = time.perf_counter()
        sel = labels != keep if keep is not None else torch.ones_like(labels, dtype=torch.bool)
        unet, text, tok = train_ldm(latents[sel], labels[sel], size, steps, cfg, name)
        _save_ldm(out_dir / name, vae, unet, text, tok)
        seconds[name] = time.perf_counter() - t0

    with torch.no_grad():
        rec = vae.decode(vae.encode(test.images).latent_dist.mean).sample
        feat_acc = (feats(test.images).argmax(1) == test.labels).float().mean().item()
    return write_manifest(out_dir, cfg, seconds, {"vae_test_mse": F.mse_loss(rec, test.images).item(),
                                                 "feature_test_accuracy": feat_acc}, ds)


def write_manifest(out_dir: Path, cfg: TrainWorldConfig, seconds: dict, quality: dict, ds: D.DigitsDataset) -> dict:
    """Write ``world.json``: config, dataset fingerprint, ``train_seconds`` (merged with an earlier manifest of the
    same config), ``quality``, file hashes and, once ``cloud/`` and ``edge/`` exist, ``judge_accuracy``."""
    from dekag.miniature.judge import fit_judge
    from dekag.miniature.world import file_hashes, load_world

    path = out_dir / "world.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    if old.get("config") == cfg.to_dict():
        seconds = {**old.get("train_seconds", {}), **seconds}
    manifest = {"format": "dekag-miniature-world/2", "config": cfg.to_dict(), "train_seconds": seconds,
                "dataset": {"fonts": list(D.WORLD_FONTS), "images": len(ds.labels), "seed": 0,
                            "sha256": D.dataset_sha256(ds)},
                **quality, "latent_shape": list(M.LATENT_SHAPE), "files": file_hashes(out_dir)}
    path.write_text(json.dumps(manifest, indent=2))
    if (out_dir / "cloud").is_dir() and (out_dir / "edge").is_dir():
        judge = fit_judge()
        manifest["judge"] = {"kind": "sklearn SVC (RBF, C=10) on renders of world + Computer Modern fonts, seed "
                                     "dekag.miniature.judge.JUDGE_SEED", "held_out_accuracy": judge.held_out_accuracy,
                             "sampling": JUDGED_SAMPLING}
        manifest["judge_accuracy"] = load_world(out_dir).class_accuracy(judge.predict, **JUDGED_SAMPLING)
        path.write_text(json.dumps(manifest, indent=2))
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dekag.miniature.train_world", description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, help="TOML file with TrainWorldConfig fields")
    ap.add_argument("--out", type=Path, default=DEFAULT_DIR, help="checkpoint folder (default: the shipped one)")
    ap.add_argument("--reuse-vae-and-features", action="store_true",
                    help="keep vae/ and features.safetensors already in --out; train only the LDMs")
    ap.add_argument("--ldms", nargs="*", choices=("cloud", "edge"), default=("cloud", "edge"),
                    help="which LDMs to train (none: only the VAE and features); the others stay as they are")
    ap.add_argument("--smoke", action="store_true", help="a few steps of everything (for tests)")
    args = ap.parse_args(argv)
    ldm.quiet_library_output()
    cfg = TrainWorldConfig.load(args.config) if args.config else TrainWorldConfig()
    if args.smoke:
        cfg = TrainWorldConfig(**{**cfg.to_dict(), "vae_steps": 2, "feature_epochs": 1, "latent_copies": 1,
                                  "cloud_steps": 2, "edge_steps": 2, "ldm_batch": 4, "vae_batch": 4})
    manifest = train_world(cfg, args.out, args.reuse_vae_and_features, tuple(args.ldms))
    print(json.dumps({k: manifest.get(k) for k in ("train_seconds", "vae_test_mse", "feature_test_accuracy",
                                                   "judge", "judge_accuracy")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
