"""T-KA training: the base codec, then CALA with the base frozen, and baselines (a)–(d) in the same run.

Stages (all through the same link — :class:`~dekag.jscc.link.SimulatedLink` over the Sionna training channel by
default, or the testbed's real frame pipeline, :class:`experiments.frame_link.FrameLink` — same latents, same
batch size):

====================  =================================================  ==============================
stage                 what trains                                        conditions
====================  =================================================  ==============================
``base``        (a)   whole codec from scratch                           sampled per example
``mismatch``    (b)   whole codec from scratch, (a)'s schedule and steps 10 dB, 100 ns only
``oracle_*``    (c)   whole codec, fine-tuned from (a) for CALA's steps  one grid point (TDL mixed)
``blind_base``        (a) without the noise-variance decoder input        sampled per example
``blind_cala``        CALA on the frozen ``blind_base``                  sampled per example
``adjscc``      (d)   whole codec + AF modules, from (a)                 sampled per example
``adjscc_frozen``     AF modules only; (a) frozen (CALA's accounting)    sampled per example
``base_longer``       control: (a) trained on for the adaptive steps     sampled per example
``cala_on_longer``    CALA (first gate kind) on the frozen base_longer   sampled per example
``cala_<gate>`` (e)   CALA a, b and gates only; (a) frozen               sampled per example
====================  =================================================  ==============================

``base_longer`` separates what adaptation gains from what extra training steps gain; ``cala_on_longer``
measures whether CALA still adds on top of the longer-trained base. Budgets are equal by construction: (b)
trains as many steps as (a) on the same schedule, and each oracle has (a)'s steps plus CALA's (it starts
from (a)); :func:`stage_budget` gives every stage's total. ``blind_*`` ablate the decoder's per-symbol
noise-variance input (how much of the gating gain a noise-aware decoder already takes).

Command line::

    python -m dekag.jscc.train --run-dir runs/tka [--config tka.toml] [--source vae|standin]

A run folder holds ``config.toml``, ``<stage>.safetensors`` (final weights, metadata = stage kind and
loss curve) and, while a stage runs, ``<stage>.ckpt.safetensors`` (weights, Adam state, step, RNG
states) every ``checkpoint_every`` steps. Re-running the same command resumes: finished stages are
loaded, an interrupted one continues from its checkpoint and ends bit-identical to an uninterrupted run.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.nn import functional as F
from tqdm.auto import tqdm

from common.tomlconfig import ConfigError
from dekag.jscc.adjscc import AttentionFeature, apply_adjscc
from dekag.jscc.cala import apply_cala, cala_num_parameters
from dekag.jscc.codec import JsccCodec
from dekag.jscc.config import CalaConfig, TkaConfig
from dekag.jscc.latents import LatentSet
from dekag.jscc.link import Link, SimulatedLink
from dekag.jscc.training_channel import TrainingChannel

ConditionSampler = Callable[[int, torch.Generator], dict[str, torch.Tensor]]


@dataclass
class Stage:
    """One training stage: its name, kind (base | cala | adjscc), steps, learning rate, condition sampler."""

    name: str
    kind: str
    steps: int
    learning_rate: float
    sample: ConditionSampler
    init_from: str | None = None
    gate: str | None = None
    adapter_only: bool = False
    noise_input: bool = True


def oracle_name(snr_db: float, delay_spread_s: float) -> str:
    return f"oracle_{snr_db:g}dB_{delay_spread_s * 1e9:g}ns"


def fixed_sampler(num_models: int, snr_db: float, delay_spread_s: float) -> ConditionSampler:
    """Sampler of one condition (TDL model, one of ``num_models``, still drawn per example)."""
    def sample(b: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        return {"snr_db": torch.full((b,), float(snr_db)), "delay_spread_s": torch.full((b,), float(delay_spread_s)),
                "model_index": torch.randint(num_models, (b,), generator=g)}
    return sample


def stages(cfg: TkaConfig, link: Link) -> list[Stage]:
    """The T-KA schedule with its baselines, in training order."""
    t = cfg.training
    out = [Stage("base", "base", t.base_steps, t.learning_rate, link.sample_conditions),
           Stage("mismatch", "base", t.base_steps, t.learning_rate,
                 fixed_sampler(link.num_models, t.mismatch_snr_db, t.mismatch_delay_spread_s))]
    sample = link.sample_conditions
    out += [Stage(f"cala_{g}", "cala", t.adaptive_steps, t.adaptive_learning_rate, sample, "base", g)
            for g in t.cala_gates]
    out.append(Stage("adjscc", "adjscc", t.adaptive_steps, t.adaptive_learning_rate, sample, "base"))
    out.append(Stage("adjscc_frozen", "adjscc", t.adaptive_steps, t.adaptive_learning_rate, sample, "base",
                     adapter_only=True))
    out.append(Stage("base_longer", "base", t.adaptive_steps, t.adaptive_learning_rate, sample, "base"))
    out.append(Stage("cala_on_longer", "cala", t.adaptive_steps, t.adaptive_learning_rate, sample, "base_longer",
                     t.cala_gates[0]))
    out += [Stage(oracle_name(s, d), "base", t.adaptive_steps, t.adaptive_learning_rate,
                  fixed_sampler(link.num_models, s, d), "base")
            for s in t.oracle_snr_db for d in t.oracle_delay_spread_s]
    out.append(Stage("blind_base", "base", t.base_steps, t.learning_rate, sample, noise_input=False))
    out.append(Stage("blind_cala", "cala", t.adaptive_steps, t.adaptive_learning_rate, sample, "blind_base",
                     t.cala_gates[0], noise_input=False))
    return out


def stage_budget(stage_list: list[Stage]) -> dict[str, int]:
    """Total optimiser steps behind each stage's weights: its own plus those of the stages it starts from."""
    by_name = {s.name: s for s in stage_list}

    def total(s: Stage) -> int:
        return s.steps + (total(by_name[s.init_from]) if s.init_from else 0)
    return {s.name: total(s) for s in stage_list}


def stage_seed(seed: int, name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2 ** 63)


@contextlib.contextmanager
def _seeded_init(seed: int) -> Iterator[None]:
    """Module initialisation draws from torch's global generator: fork it so callers are not disturbed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_codec(cfg: TkaConfig, kind: str, gate: str | None = None, seed: int = 0,
                base: JsccCodec | None = None, noise_input: bool = True) -> JsccCodec:
    """A codec of ``kind`` (base | cala | adjscc): base weights copied from ``base`` (else freshly
    initialised), adapter weights freshly initialised; ``noise_input=False`` drops the decoder's
    noise-variance input."""
    with _seeded_init(seed):
        codec = JsccCodec(dataclasses.replace(cfg.codec, noise_input=noise_input))
        if base is not None:
            codec.load_state_dict(base.state_dict())
        if kind == "cala":
            apply_cala(codec, CalaConfig(**{**cfg.cala.to_dict(), "gate": gate or cfg.cala.gate}))
        elif kind == "adjscc":
            apply_adjscc(codec, cfg.adjscc, param_budget=cala_param_budget(cfg))
        elif kind != "base":
            raise ValueError(f"unknown codec kind {kind!r}")
    return codec


def cala_param_budget(cfg: TkaConfig) -> int:
    """Parameters CALA adds to this config's codec (the ADJSCC baseline is sized to match)."""
    probe = JsccCodec(cfg.codec)
    apply_cala(probe, cfg.cala)
    return cala_num_parameters(probe)


# -- checkpoints -----------------------------------------------------------------------------------------
def _save_checkpoint(path: Path, codec: JsccCodec, opt: torch.optim.Optimizer, step: int, losses: list[float],
                     gen: torch.Generator, link: Link) -> None:
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in codec.state_dict().items()}
    sd = opt.state_dict()
    for i, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"opt.{i}.{k}"] = torch.as_tensor(v).contiguous()
    tensors["rng.data"] = gen.get_state()
    tensors["rng.link"] = link.rng_state()
    meta = {"step": str(step), "losses": json.dumps(losses), "param_groups": json.dumps(sd["param_groups"])}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def _load_checkpoint(path: Path, codec: JsccCodec, opt: torch.optim.Optimizer,
                     gen: torch.Generator, link: Link) -> tuple[int, list[float]]:
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    codec.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, i, name = k.split(".", 2)
            state.setdefault(int(i), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    gen.set_state(tensors["rng.data"])
    link.set_rng_state(tensors["rng.link"])
    return int(meta["step"]), json.loads(meta["losses"])


def load_stage(run_dir: str | Path, name: str, cfg: TkaConfig) -> JsccCodec:
    """The finished codec of stage ``name`` from a run folder."""
    path = Path(run_dir) / f"{name}.safetensors"
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    codec = build_codec(cfg, meta["kind"], meta.get("gate") or None, noise_input=meta.get("noise_input") != "0")
    codec.load_state_dict(load_file(str(path)))
    return codec.eval()


# -- training --------------------------------------------------------------------------------------------
def train_stage(stage: Stage, cfg: TkaConfig, link: Link, train_latents: torch.Tensor,
                run_dir: Path, progress: bool = True) -> JsccCodec:
    """Train (or resume, or load) one stage; returns its codec in eval mode."""
    final = run_dir / f"{stage.name}.safetensors"
    if final.is_file():
        return load_stage(run_dir, stage.name, cfg)
    seed = stage_seed(cfg.training.seed, stage.name)
    init = load_stage(run_dir, stage.init_from, cfg) if stage.init_from is not None else None
    codec = build_codec(cfg, stage.kind, stage.gate, seed, base=init, noise_input=stage.noise_input)
    if init is None:
        codec.set_latent_stats(train_latents)
    if stage.adapter_only and stage.kind == "adjscc":
        codec.requires_grad_(False)
        for m in codec.modules():
            if isinstance(m, AttentionFeature):
                m.requires_grad_(True)
    params = [p for p in codec.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=stage.learning_rate)
    gen = torch.Generator().manual_seed(seed)
    link.seed(seed % (2 ** 32))
    ckpt = run_dir / f"{stage.name}.ckpt.safetensors"
    step, losses = (_load_checkpoint(ckpt, codec, opt, gen, link) if ckpt.is_file() else (0, []))
    sched_steps = max(stage.steps, 1)
    codec.train()
    bar = tqdm(total=stage.steps, initial=step, desc=stage.name, disable=not progress, leave=False)
    b = cfg.training.batch_size
    while step < stage.steps:
        lr = stage.learning_rate * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * step / sched_steps)).item())
        for group in opt.param_groups:
            group["lr"] = lr
        lat = train_latents[torch.randint(len(train_latents), (b,), generator=gen)]
        nominal = stage.sample(b, gen)
        out = link(codec.encode(lat, link.encoder_condition(nominal)), nominal)
        rec = codec.decode(out.symbols, out.noise_var, out.decoder_condition)
        keep = out.received
        loss = F.mse_loss(codec.standardise(rec[keep]), codec.standardise(lat[keep]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        losses.append(round(loss.item(), 5))
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % cfg.training.checkpoint_every == 0 and step < stage.steps:
            _save_checkpoint(ckpt, codec, opt, step, losses, gen, link)
    bar.close()
    meta = {"kind": stage.kind, "gate": stage.gate or "", "steps": str(stage.steps), "losses": json.dumps(losses),
            "noise_input": "1" if stage.noise_input else "0", "init_from": stage.init_from or ""}
    save_file({k: v.contiguous() for k, v in codec.state_dict().items()}, str(final), metadata=meta)
    ckpt.unlink(missing_ok=True)
    return codec.eval()


def prepare_run_dir(cfg: TkaConfig, run_dir: str | Path) -> Path:
    """Create the run folder with ``config.toml``; refuse to resume a folder made with another config."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_dir / "config.toml"
    if saved.is_file():
        if TkaConfig.load(saved) != cfg:
            raise ConfigError(f"{run_dir} was made with a different config; use a new --run-dir")
    else:
        cfg.save(saved)
    return run_dir


def run_tka(cfg: TkaConfig, latents: LatentSet, run_dir: str | Path, progress: bool = True,
            only: list[str] | None = None, link: Link | None = None) -> dict[str, JsccCodec]:
    """Train every stage (or those named in ``only``, plus the stages they start from) through ``link``
    (default: :class:`SimulatedLink` over ``cfg.channel``); returns name → codec."""
    torch.set_num_threads(1)
    run_dir = prepare_run_dir(cfg, run_dir)
    train_latents, _ = latents.split(cfg.training.test_fraction, cfg.training.seed)
    if link is None:
        if cfg.training.link != "simulated":
            raise ConfigError(f"training.link = {cfg.training.link!r} is built outside dekag: run "
                              "`dekag-testbed train`, or pass link=experiments.frame_link.FrameLink(...)")
        link = SimulatedLink(TrainingChannel(cfg.channel, cfg.codec.num_symbols, seed=cfg.training.seed))
    schedule = stages(cfg, link)
    wanted = _with_ancestors(schedule, only)
    out: dict[str, JsccCodec] = {}
    for stage in tqdm(schedule, desc="T-KA stages", disable=not progress):
        if stage.name in wanted:
            out[stage.name] = train_stage(stage, cfg, link, train_latents, run_dir, progress)
    return out


def _with_ancestors(schedule: list[Stage], only: list[str] | None) -> set[str]:
    """Names in ``only`` (all when None) plus every stage they start from."""
    by_name = {s.name: s for s in schedule}
    if only is None:
        return set(by_name)
    unknown = sorted(set(only) - set(by_name))
    if unknown:
        raise ConfigError(f"unknown T-KA stage(s) {unknown}; known: {sorted(by_name)}")
    wanted: set[str] = set()
    for name in only:
        while name and name not in wanted:
            wanted.add(name)
            name = by_name[name].init_from
    return wanted


def main(argv: list[str] | None = None, links: dict[str, Callable[[TkaConfig], Link]] | None = None) -> None:
    """Command line; ``links`` maps a ``training.link`` name to a factory (the frame link comes from
    ``experiments``, which is what ``dekag-testbed train`` passes)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", required=True, help="run folder (created; re-run to resume)")
    parser.add_argument("--config", help="TkaConfig TOML (default: built-in defaults)")
    parser.add_argument("--source", choices=("vae", "standin"), default="vae",
                        help="latents: miniature world VAE latents (default) or the digits stand-in")
    parser.add_argument("--latents", help="latents file instead of --source (e.g. S_EG, runs/seg/latents.safetensors)")
    parser.add_argument("--only", nargs="+", help="train only these stages (and the stages they start from)")
    args = parser.parse_args(argv)
    cfg = TkaConfig.load(args.config) if args.config else TkaConfig()
    from dekag.jscc.latents import latent_file, standin_latents, vae_latents
    if args.latents:
        latents = latent_file(args.latents)
    else:
        latents = vae_latents() if args.source == "vae" else standin_latents(cfg.training.seed)
    factory = (links or {}).get(cfg.training.link)
    run_tka(cfg, latents, args.run_dir, only=args.only, link=factory(cfg) if factory else None)


if __name__ == "__main__":
    main()
