"""The denoising (noise-prediction) loss of a text-conditioned LDM, used by metaword and G-LoRA training;
UNet or transformer denoiser alike (:mod:`dekag.denoiser`)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F

from dekag.denoiser import encode_prompts, predict


def noise_prediction_loss(pipe, latents: torch.Tensor, prompts: Sequence[str], noise_scheduler,
                          generator: torch.Generator, reference: Callable[[], AbstractContextManager] | None = None
                          ) -> torch.Tensor:
    """MSE between the denoiser's prediction and its target for scaled ``latents`` ``[B,C,h,w]`` noised at random
    timesteps (ε-prediction or v-prediction, following ``noise_scheduler.config.prediction_type``).

    With ``reference`` (a context manager factory, e.g. :func:`dekag.makd.glora.adapters_disabled`) the target is
    instead the denoiser's own prediction inside ``reference()`` on the same noisy input (no gradient): a
    distillation loss that keeps the trained model's function where the reference model was."""
    if latents.shape[0] != len(prompts):
        raise ValueError(f"{latents.shape[0]} latents but {len(prompts)} prompts")
    b = latents.shape[0]
    noise = torch.randn(latents.shape, generator=generator, dtype=latents.dtype).to(latents.device)
    t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (b,), generator=generator).to(latents.device)
    noisy = noise_scheduler.add_noise(latents, noise, t)
    target = (noise_scheduler.get_velocity(latents, noise, t)
              if noise_scheduler.config.prediction_type == "v_prediction" else noise)
    cond = encode_prompts(pipe, prompts)
    if reference is not None:
        with torch.no_grad(), reference():
            target = predict(pipe, noisy, t, *cond)
    pred = predict(pipe, noisy, t, *cond)
    return F.mse_loss(pred.float(), target.float())
