"""Mixed-precision MAKD training through HF ``accelerate`` (the idiom of diffusers' training scripts).

``MakdConfig.mixed_precision`` is ``"no"`` (float32, the default), ``"bf16"`` or ``"fp16"`` (CUDA only, with
accelerate's gradient scaler). The forward pass runs under ``accelerator.autocast()``, the backward pass through
``accelerator.backward``; trainable tensors (the metaword's embedding matrix, the G-LoRA weights) and the AdamW
state stay float32. On a GPU the frozen weights are stored in the half dtype (:func:`frozen_weight_dtype`); on
the CPU they stay float32 and only autocast lowers the precision.
"""
from __future__ import annotations

import torch

from common import ConfigError

#: Accepted values of ``MakdConfig.mixed_precision``.
MIXED_PRECISIONS = ("no", "fp16", "bf16")
_HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}


def make_accelerator(mixed_precision: str = "no", device: str | torch.device = "cpu"):
    """An ``accelerate.Accelerator`` for one single-process training stage on ``device``'s type.

    accelerate keeps its settings in a process-wide state; it is reset here when a stage asks for another
    precision or device type than the previous one (e.g. a float32 run followed by a bf16 run in one process).
    Placement stays with the caller (``device_placement=False``): the pipelines are already on ``device``.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if mixed_precision not in MIXED_PRECISIONS:
        raise ConfigError(f"mixed_precision must be one of {MIXED_PRECISIONS}, got {mixed_precision!r}")
    device_type = torch.device(device).type
    if mixed_precision == "fp16" and device_type != "cuda":
        raise ConfigError(f"fp16 mixed precision needs a CUDA device, got {device!r}; use bf16 on the CPU")
    if AcceleratorState._shared_state:
        state = AcceleratorState()
        if state.mixed_precision != mixed_precision or state.device.type != device_type:
            AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(mixed_precision=mixed_precision, cpu=device_type == "cpu", device_placement=False)


def frozen_weight_dtype(mixed_precision: str, device: str | torch.device) -> torch.dtype:
    """Dtype of the frozen weights during training: the half dtype on a CUDA device, float32 otherwise."""
    if mixed_precision == "no" or torch.device(device).type != "cuda":
        return torch.float32
    return _HALF[mixed_precision]


def training_step(accelerator, optimizer, loss_fn, params=None, max_grad_norm: float | None = None) -> float:
    """One optimiser step: ``loss_fn()`` under autocast, scaled backward, optional gradient clipping of
    ``params`` (unscaled first), step. Returns the loss. ``optimizer`` comes from ``accelerator.prepare``."""
    with accelerator.autocast():
        loss = loss_fn()
    optimizer.zero_grad(set_to_none=True)
    accelerator.backward(loss)
    if max_grad_norm is not None:
        accelerator.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    return loss.item()
