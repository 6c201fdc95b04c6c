"""G-LoRA: a peft LoRA on the attention projections of the edge denoiser (UNet or transformer), saved in
diffusers' LoRA key format (``<denoiser>.…to_q.lora.down.weight``, ``<denoiser>`` = ``unet`` or ``transformer``).

One route for every family: ``peft.inject_adapter_in_model`` (PixArt's transformer has no diffusers LoRA
loader), :func:`load_glora` to put a saved adapter on a fresh pipeline's denoiser. For UNet pipelines the
file is also what ``pipe.load_lora_weights(folder)`` reads.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

from dekag.denoiser import denoiser, denoiser_name
from dekag.makd.precision import make_accelerator, training_step

#: Attention projections of diffusers' ``Attention`` (self- and cross-attention; UNet and transformer alike).
ATTENTION_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
LORA_FILE = "pytorch_lora_weights.safetensors"


def add_glora(model: torch.nn.Module, rank: int, target_modules: Sequence[str] = ATTENTION_PROJECTIONS,
              seed: int = 0) -> list[torch.nn.Parameter]:
    """Attach a LoRA of ``rank`` (alpha = rank, Gaussian A, zero B: a no-op until trained) to the modules of the
    denoiser ``model`` whose names end in one of ``target_modules`` (linear or conv layers); returns its params
    (everything else is frozen). A target that matches no module is an error.

    peft draws A from torch's global CPU RNG; here that draw is seeded with ``seed`` inside
    ``torch.random.fork_rng``, so the initial adapter is reproducible and the caller's global RNG is untouched.
    """
    from peft import LoraConfig, inject_adapter_in_model

    if rank < 1:
        raise ValueError(f"LoRA rank must be >= 1, got {rank}")
    names = [n for n, _ in model.named_modules()]
    missing = [t for t in target_modules if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise ValueError(f"G-LoRA targets {missing} match no module of {type(model).__name__}")
    model.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                           target_modules=list(target_modules)), model)
    return [p for p in model.parameters() if p.requires_grad]


@contextmanager
def adapters_disabled(model: torch.nn.Module):
    """Within the block ``model`` computes as if it had no LoRA (peft's ``enable_adapters(False)`` on every
    adapted layer; re-enabled, and trainable again, on exit)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    for m in layers:
        m.enable_adapters(False)
    try:
        yield
    finally:
        for m in layers:
            m.enable_adapters(True)


def train_glora(params: list[torch.nn.Parameter], loss_fn: Callable[[], torch.Tensor], steps: int, lr: float,
                start_step: int = 0, on_step: Callable[[int, torch.optim.Optimizer], None] | None = None,
                optimizer_state: dict | None = None, accelerator=None) -> list[float]:
    """Optimise the LoRA ``params`` with ``loss_fn`` (gradient norm clipped to 1); ``on_step(step, optimizer)``
    after each step. ``accelerator`` (:func:`~dekag.makd.precision.make_accelerator`) sets the mixed precision;
    default float32 on the params' device. ``params`` must be float32 (``cast_training_params``)."""
    if any(p.dtype != torch.float32 for p in params):
        raise TypeError("LoRA params must be float32: call diffusers.training_utils.cast_training_params first")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    accelerator = accelerator or make_accelerator(device=params[0].device)
    opt = accelerator.prepare(opt)
    losses = []
    for step in range(start_step, steps):
        losses.append(training_step(accelerator, opt, loss_fn, params, max_grad_norm=1.0))
        if on_step is not None:
            on_step(step + 1, opt)
    return losses


def glora_state_dict(model: torch.nn.Module, prefix: str = "unet") -> dict[str, torch.Tensor]:
    """The adapter in diffusers' key format, each key under ``prefix`` (the pipeline's denoiser attribute)."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    sd = convert_state_dict_to_diffusers(get_peft_model_state_dict(model))
    return {f"{prefix}.{k.removeprefix(prefix + '.')}": v.detach().clone() for k, v in sd.items()}


def _to_peft(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    from diffusers.utils import convert_unet_state_dict_to_peft

    return convert_unet_state_dict_to_peft({k.split(".", 1)[1]: v for k, v in state.items()})


def set_glora_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load ``glora_state_dict`` output back into a denoiser that already has the adapter (resume, loading)."""
    from peft.utils import set_peft_model_state_dict

    result = set_peft_model_state_dict(model, _to_peft(state), adapter_name="default")
    if getattr(result, "unexpected_keys", None):
        raise KeyError(f"unexpected LoRA keys: {result.unexpected_keys[:3]}")


def load_glora(pipe, state: dict[str, torch.Tensor]) -> None:
    """Put a saved G-LoRA (diffusers key format) on ``pipe``'s denoiser: rank and target projections are read
    from the tensors (alpha = rank, as :func:`add_glora` trains it); the result equals the trained adapter."""
    name = denoiser_name(pipe)
    foreign = sorted({k.split(".", 1)[0] for k in state} - {name})
    if foreign:
        raise ValueError(f"G-LoRA keys for {foreign} but this pipeline's denoiser is pipe.{name}: the package was "
                         "made for another model family")
    peft_state = _to_peft(state)
    ranks = {v.shape[0] for k, v in peft_state.items() if ".lora_A." in k}
    if len(ranks) != 1:
        raise ValueError(f"G-LoRA must have one rank, found {sorted(ranks)}")
    targets = sorted({_projection(k) for k in peft_state if ".lora_A." in k})
    net = denoiser(pipe)
    add_glora(net, ranks.pop(), targets)
    set_glora_state(net, state)
    net.requires_grad_(False)


def _projection(peft_key: str) -> str:
    """``…attn1.to_out.0.lora_A.weight`` → ``to_out.0``."""
    module = peft_key.split(".lora_A.")[0]
    parts = module.split(".")
    return ".".join(parts[-2:]) if parts[-1].isdigit() else parts[-1]


def save_glora(model: torch.nn.Module, folder: str | Path, prefix: str = "unet") -> Path:
    """Write ``pytorch_lora_weights.safetensors`` in ``folder`` (diffusers key format under ``prefix``)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LORA_FILE
    save_file({k: v.contiguous() for k, v in glora_state_dict(model, prefix).items()}, str(path),
              metadata={"format": "pt"})
    return path
