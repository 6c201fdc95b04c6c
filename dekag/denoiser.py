"""The denoiser of a text-to-image pipeline, whichever it is: a UNet (SD 1.x/2.x, SDXL, the miniature world)
or a transformer (PixArt-Σ, DiT-style). Everything in ``dekag`` that touches the denoiser goes through here.

* :func:`denoiser` / :func:`denoiser_name`: ``pipe.unet`` or ``pipe.transformer``.
* :func:`latent_size` / :func:`image_size`: the denoiser's native latent side and the image side (pixels).
* :func:`call_kwargs`: the extra pipeline arguments a family needs for plain, reproducible sampling.
* :func:`encode_prompts` and :func:`predict`: one training forward pass for either family; the prediction
  is ``[B, C, h, w]`` with ``C`` the VAE's latent channels (a learned-sigma half is dropped).
"""
from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch

MAX_TEXT_TOKENS = 300
"""Upper bound on text tokens per prompt (PixArt-Σ's ``max_sequence_length``)."""


def denoiser_name(pipe) -> str:
    """``"unet"`` or ``"transformer"``: the pipeline attribute holding the denoiser."""
    for name in ("unet", "transformer"):
        if getattr(pipe, name, None) is not None:
            return name
    raise ValueError(f"{type(pipe).__name__} has neither a UNet nor a transformer denoiser; dekag supports "
                     "text-to-image pipelines with pipe.unet (SD 1.x/2.x, SDXL) or pipe.transformer (PixArt-Σ)")


def denoiser(pipe) -> torch.nn.Module:
    """The pipeline's denoiser module (``pipe.unet`` or ``pipe.transformer``)."""
    return getattr(pipe, denoiser_name(pipe))


def latent_size(pipe) -> int:
    """Native latent side ``h = w`` of the denoiser (its ``config.sample_size``)."""
    size = denoiser(pipe).config.sample_size
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def image_size(pipe) -> int:
    """Native image side in pixels: latent side × the VAE's scale factor."""
    return latent_size(pipe) * int(pipe.vae_scale_factor)


def text_length(pipe) -> int:
    """Tokens per prompt the pipeline pads to (the tokenizer's ``model_max_length``, at most 300)."""
    return min(int(pipe.tokenizer.model_max_length), MAX_TEXT_TOKENS)


def _uses_text_mask(pipe) -> bool:
    return "prompt_attention_mask" in inspect.signature(type(pipe).__call__).parameters


def call_kwargs(pipe) -> dict:
    """Pipeline-call arguments for plain sampling at the requested size: PixArt-style pipelines get
    ``use_resolution_binning=False, clean_caption=False, max_sequence_length=text_length(pipe)``."""
    params = inspect.signature(type(pipe).__call__).parameters
    out = {}
    if "use_resolution_binning" in params:
        out["use_resolution_binning"] = False
    if "clean_caption" in params:
        out["clean_caption"] = False
    if "max_sequence_length" in params:
        out["max_sequence_length"] = text_length(pipe)
    return out


def normalise_prompts(pipe, prompts: Sequence[str]) -> list[str]:
    """Prompts as the pipeline feeds them to its tokenizer: PixArt-style pipelines lower-case them."""
    return [p.lower().strip() for p in prompts] if _uses_text_mask(pipe) else list(prompts)


def encode_prompts(pipe, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Text hidden states ``[B, L, D]`` and, for transformer-family pipelines, the text mask ``[B, L]``
    (1 = token, 0 = padding; ``None`` for UNet pipelines, which attend to the padded sequence as SD does)."""
    tok = pipe.tokenizer(normalise_prompts(pipe, prompts), padding="max_length", max_length=text_length(pipe),
                         truncation=True, return_tensors="pt")
    ids = tok.input_ids.to(pipe.text_encoder.device)
    if not _uses_text_mask(pipe):
        return pipe.text_encoder(ids)[0], None
    mask = tok.attention_mask.to(ids.device)
    return pipe.text_encoder(ids, attention_mask=mask)[0], mask


def predict(pipe, noisy: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor,
            text_mask: torch.Tensor | None) -> torch.Tensor:
    """The denoiser's prediction ``[B, C, h, w]`` for noisy latents ``[B, C, h, w]`` at ``timesteps`` ``[B]``;
    a learned-variance half (``2C`` output channels) is dropped."""
    net = denoiser(pipe)
    if denoiser_name(pipe) == "unet":
        out = net(noisy, timesteps, encoder_hidden_states=text, return_dict=False)[0]
    else:
        out = net(noisy, encoder_hidden_states=text, encoder_attention_mask=text_mask, timestep=timesteps,
                  added_cond_kwargs={"resolution": None, "aspect_ratio": None}, return_dict=False)[0]
    c = noisy.shape[1]
    return out[:, :c] if out.shape[1] == 2 * c else out
