"""Latent diffusion pipelines from local diffusers folders (real scale and miniature alike; no download).

Latents are *scaled* latents (what the UNet denoises, ``vae.encode(x).latent_dist.sample() · scaling_factor``),
shape ``[B, C, H/f, W/f]``; images are float ``[B, 3, H, W]`` in [-1, 1].

>>> pipe = load_pipeline("path/to/edge")                                    # doctest: +SKIP
>>> z = generate_latents(pipe, ["a photo of a seven"] * 2, seeds=[0, 1])    # doctest: +SKIP
>>> images = decode_latents(pipe.vae, z)                                    # doctest: +SKIP
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from dekag.errors import DekagError


class PipelineFolderError(DekagError, FileNotFoundError):
    """A local diffusers folder is missing or incomplete."""


def load_pipeline(folder: str | Path, *, vae=None, torch_dtype: torch.dtype = torch.float32,
                  device: str | torch.device = "cpu"):
    """Load a text-to-image ``DiffusionPipeline`` from a local diffusers folder (``model_index.json``).

    ``vae`` replaces the folder's VAE (required when the folder has no ``vae/``, as in the miniature world
    where cloud and edge share one). Safety checkers are disabled; nothing is fetched from a hub.
    """
    from diffusers import DiffusionPipeline

    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        raise PipelineFolderError(f"{folder} is not a diffusers pipeline folder (no model_index.json)")
    if vae is None and not (folder / "vae").is_dir():
        raise PipelineFolderError(f"{folder} has no vae/ folder: pass the shared VAE with vae=...")
    kwargs = {"vae": vae} if vae is not None else {}
    pipe = DiffusionPipeline.from_pretrained(folder, dtype=torch_dtype, local_files_only=True,
                                             safety_checker=None, requires_safety_checker=False, **kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def quiet_library_output() -> None:
    """Silence diffusers/transformers loading progress bars and warnings (for command lines and benches)."""
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    for lib in (dlog, tlog):
        lib.set_verbosity_error()
        lib.disable_progress_bar()


def _generators(seeds: Sequence[int], device) -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


@torch.no_grad()
def generate_latents(pipe, prompts: Sequence[str], seeds: Sequence[int], *, num_inference_steps: int = 25,
                     guidance_scale: float = 3.0, height: int | None = None, width: int | None = None,
                     batch_size: int = 64) -> torch.Tensor:
    """Scaled latents ``[len(prompts), C, h, w]``; sample ``i`` depends only on ``prompts[i]`` and ``seeds[i]``."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
    if len(prompts) == 0:
        raise ValueError("no prompts given")
    height = height or pipe.unet.config.sample_size * pipe.vae_scale_factor
    width = width or pipe.unet.config.sample_size * pipe.vae_scale_factor
    out = []
    for i in range(0, len(prompts), batch_size):
        out.append(pipe(list(prompts[i:i + batch_size]), height=height, width=width,
                        num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                        generator=_generators(seeds[i:i + batch_size], pipe.device), output_type="latent").images)
    return torch.cat(out)


@torch.no_grad()
def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Images ``[B, 3, H, W]`` in [-1, 1] from scaled latents ``[B, C, h, w]``."""
    return vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample.clamp(-1.0, 1.0)


@torch.no_grad()
def encode_images(vae, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scaled latents ``[B, C, h, w]`` of images ``[B, 3, H, W]`` in [-1, 1] (a posterior sample)."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [B,3,H,W], got {tuple(images.shape)}")
    dist = vae.encode(images.to(vae.dtype)).latent_dist
    return dist.sample(generator=generator) * vae.config.scaling_factor
