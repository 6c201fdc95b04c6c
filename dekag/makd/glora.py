"""G-LoRA: a peft LoRA on the edge UNet's attention projections, saved in diffusers' LoRA format.

``pipe.load_lora_weights(folder)`` (folder with ``pytorch_lora_weights.safetensors``) or
``pipe.load_lora_weights(state_dict)`` reproduces the trained adapter.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from dekag.makd.precision import make_accelerator, training_step

#: Attention projections of diffusers' UNet (self- and cross-attention).
ATTENTION_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")


def add_glora(unet, rank: int, target_modules: Sequence[str] = ATTENTION_PROJECTIONS,
              seed: int = 0) -> list[torch.nn.Parameter]:
    """Attach a LoRA of ``rank`` (alpha = rank, Gaussian A, zero B: a no-op until trained); returns its params.

    peft draws A from torch's global CPU RNG; here that draw is seeded with ``seed`` inside
    ``torch.random.fork_rng``, so the initial adapter is reproducible and the caller's global RNG is untouched.
    """
    from peft import LoraConfig

    if rank < 1:
        raise ValueError(f"LoRA rank must be >= 1, got {rank}")
    unet.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                    target_modules=list(target_modules)))
    return [p for p in unet.parameters() if p.requires_grad]


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


def glora_state_dict(unet) -> dict[str, torch.Tensor]:
    """The adapter in diffusers' key format (``unet.…to_q.lora_A.weight`` etc.), as ``save_lora_weights`` writes."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    sd = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    return {f"unet.{k}" if not k.startswith("unet.") else k: v.detach().clone() for k, v in sd.items()}


def set_glora_state(unet, state: dict[str, torch.Tensor]) -> None:
    """Load ``glora_state_dict`` output back into a UNet that already has the adapter (for resume)."""
    from diffusers.utils import convert_unet_state_dict_to_peft
    from peft.utils import set_peft_model_state_dict

    sd = convert_unet_state_dict_to_peft({k.removeprefix("unet."): v for k, v in state.items()})
    result = set_peft_model_state_dict(unet, sd, adapter_name="default")
    if getattr(result, "unexpected_keys", None):
        raise KeyError(f"unexpected LoRA keys: {result.unexpected_keys[:3]}")


def save_glora(unet, folder: str | Path) -> Path:
    """Write ``pytorch_lora_weights.safetensors`` in ``folder`` (diffusers format)."""
    from diffusers import StableDiffusionPipeline

    folder = Path(folder)
    sd = {k.removeprefix("unet."): v for k, v in glora_state_dict(unet).items()}
    StableDiffusionPipeline.save_lora_weights(save_directory=folder, unet_lora_layers=sd, safe_serialization=True)
    return folder / "pytorch_lora_weights.safetensors"
