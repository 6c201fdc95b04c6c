"""Architectures of the miniature world, built from configs (no download).

* VAE: diffusers ``AutoencoderKL`` with 3 blocks, image ``[B,3,32,32]`` ↔ latent ``[B,4,8,8]`` (scale factor 4).
* Cloud LDM: larger ``UNet2DConditionModel`` + ``CLIPTextModel``; edge LDM: smaller ones. Both work on the
  VAE latent and are conditioned on prompts through the local tokenizer (:mod:`dekag.miniature.tokenizer`).
* Feature network: a small CNN classifier whose penultimate features give the consistency metric.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dekag.miniature.tokenizer import MAX_LENGTH

LATENT_SHAPE = (4, 8, 8)


@dataclass(frozen=True)
class LdmSize:
    """Width of one text-conditioned LDM (UNet channels per level, text-encoder width = cross-attention dim)."""

    block_out_channels: tuple[int, int]
    text_hidden: int
    text_layers: int


CLOUD_SIZE = LdmSize(block_out_channels=(48, 96), text_hidden=48, text_layers=2)
EDGE_SIZE = LdmSize(block_out_channels=(32, 64), text_hidden=32, text_layers=2)


def build_vae():
    """``AutoencoderKL``: 32×32×3 ↔ 4×8×8 (3 blocks → ``vae_scale_factor`` 4)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 32),
                         down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                         layers_per_block=1, norm_num_groups=8, sample_size=32)


def build_text_encoder(size: LdmSize, vocab_size: int):
    """A from-config ``CLIPTextModel`` for the local tokenizer (ids 0 = start, 1 = end/pad)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=size.text_hidden, intermediate_size=2 * size.text_hidden,
        num_hidden_layers=size.text_layers, num_attention_heads=4, max_position_embeddings=MAX_LENGTH,
        bos_token_id=0, eos_token_id=1, pad_token_id=1))


def build_unet(size: LdmSize):
    """A ``UNet2DConditionModel`` on ``[B,4,8,8]`` latents with cross-attention at the lower level."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=LATENT_SHAPE[1], in_channels=LATENT_SHAPE[0], out_channels=LATENT_SHAPE[0],
        layers_per_block=1, block_out_channels=size.block_out_channels,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=size.text_hidden, attention_head_dim=8, norm_num_groups=16)


def build_schedulers():
    """(DDPM for training, DDIM for sampling), Stable Diffusion's noise schedule."""
    from diffusers import DDIMScheduler, DDPMScheduler

    ddpm = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                         beta_schedule="scaled_linear", clip_sample=False, steps_offset=1)
    return ddpm, DDIMScheduler.from_config(ddpm.config, set_alpha_to_one=False)


class FeatureNet(nn.Module):
    """CNN classifier for ``[B,3,32,32]`` images in [-1, 1]; ``features`` gives ``[B, feature_dim]``."""

    def __init__(self, feature_dim: int = 64, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(32, feature_dim, 3, stride=2, padding=1), nn.SiLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [B,3,H,W], got {tuple(images.shape)}")
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits ``[B, num_classes]``."""
        return self.head(self.features(images))
