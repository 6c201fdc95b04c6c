"""PSNR of latents (and decoded images) after a round trip through the training channel.

Latent PSNR uses the peak-to-peak range of the evaluation latents as the peak:
PSNR = 10·log10(range² / MSE), MSE over all latent elements of the evaluated batch.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from dekag.jscc.codec import JsccCodec
from dekag.jscc.condition import Condition
from dekag.jscc.training_channel import TrainingChannel


def psnr_db(reference: torch.Tensor, estimate: torch.Tensor, peak: float) -> float:
    """10·log10(peak² / mean squared error); +inf for an exact match."""
    mse = float((reference - estimate).double().square().mean())
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


@torch.no_grad()
def round_trip(codec: JsccCodec, channel: TrainingChannel, latents: torch.Tensor, snr_db: float,
               delay_spread_s: float, model_index: int) -> torch.Tensor:
    """Encode → channel at one condition (all examples) → decode; returns reconstructed latents."""
    b = latents.shape[0]
    cond = Condition(snr_db, delay_spread_s)
    y, no_eff = channel(codec.encode(latents, cond), torch.full((b,), float(snr_db)),
                        torch.full((b,), float(delay_spread_s)), torch.full((b,), model_index, dtype=torch.long))
    return codec.decode(y, no_eff, cond)


def evaluate(codec: JsccCodec, channel: TrainingChannel, latents: torch.Tensor, snr_db: float,
             delay_spread_s: float, model_index: int, latent_peak: float,
             decode_image: Callable[[torch.Tensor], torch.Tensor] | None = None,
             image_range: float = 1.0, reference_images: torch.Tensor | None = None) -> dict[str, float]:
    """``{"latent_psnr_db", "image_psnr_db"?}`` at one condition (``Sionna``'s generator supplies fading).

    Image PSNR compares ``decode_image(received latents)`` with ``reference_images`` (default
    ``decode_image(latents)``: the decoded clean latent, so only the channel's damage counts).
    """
    codec.eval()
    rec = round_trip(codec, channel, latents, snr_db, delay_spread_s, model_index)
    out = {"latent_psnr_db": psnr_db(latents, rec, latent_peak)}
    if decode_image is not None:
        ref = decode_image(latents) if reference_images is None else reference_images
        out["image_psnr_db"] = psnr_db(ref, decode_image(rec), image_range)
    return out
