"""Latent datasets the codec trains and is measured on.

* :func:`vae_latents`: VAE latents of the miniature world's dataset ([N, 4, 8, 8], the VAE's scaled
  latent space), with the world's VAE decoder for decoded-image PSNR. The default.
* :func:`standin_latents`: a STAND-IN for development without the world: scikit-learn's bundled 8×8
  digits, stacked with their transpose and two flips into 4 channels and mixed by a fixed orthogonal
  4×4 matrix (seeded), standardised. Invertible, so the "image" (the digit, in [0, 1]) is recovered
  exactly from a latent and decoded-image PSNR is meaningful. Not a VAE latent: say so in any result.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class LatentSet:
    """Latents [N, C, H, W] float32 and, if available, a decoder latent → image for image PSNR.

    Attributes:
        latents: the dataset.
        source: human-readable label written into every result.
        decode_image: latents [B, C, H, W] → images [B, ...] (``None`` = no image metric).
        image_range: peak-to-peak range of decoded images (1 for [0, 1], 2 for [-1, 1]).
    """

    latents: torch.Tensor
    source: str
    decode_image: Callable[[torch.Tensor], torch.Tensor] | None = None
    image_range: float = 1.0

    def split(self, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Seeded (train, test) split of the latents."""
        perm = torch.randperm(len(self.latents), generator=torch.Generator().manual_seed(seed))
        n_test = max(1, int(round(test_fraction * len(perm))))
        return self.latents[perm[n_test:]], self.latents[perm[:n_test]]


def standin_latents(seed: int = 0) -> LatentSet:
    """Stand-in latents [1797, 4, 8, 8] from the bundled digits (see module docstring)."""
    from sklearn.datasets import load_digits

    x = torch.as_tensor(load_digits().images, dtype=torch.float32) / 16.0                 # [N, 8, 8] in [0, 1]
    stack = torch.stack([x, x.transpose(1, 2), x.flip(1), x.flip(2)], dim=1)              # [N, 4, 8, 8]
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(seed)))
    mixed = torch.einsum("ij,njhw->nihw", q, stack)
    mean, std = mixed.mean(dim=(0, 2, 3)), mixed.std(dim=(0, 2, 3))
    latents = (mixed - mean[:, None, None]) / std[:, None, None]

    def decode_image(z: torch.Tensor) -> torch.Tensor:
        unmixed = torch.einsum("ji,njhw->nihw", q, z * std[:, None, None] + mean[:, None, None])
        return unmixed[:, 0].clamp(0.0, 1.0)

    return LatentSet(latents.contiguous(), "STAND-IN: sklearn digits ×4 views, fixed orthogonal mix (not a VAE)",
                     decode_image, 1.0)


def load_vae(folder: str):
    """An ``AutoencoderKL`` from a local folder: the VAE's own folder or a pipeline folder with ``vae/``."""
    from pathlib import Path

    from diffusers import AutoencoderKL

    path = Path(folder)
    path = path / "vae" if (path / "vae" / "config.json").is_file() else path
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no AutoencoderKL here (need config.json, or a pipeline folder with vae/)")
    return AutoencoderKL.from_pretrained(path, local_files_only=True).eval()


def latent_file(path: str, key: str = "latents", vae=None) -> LatentSet:
    """Latents [N, C, H, W] from a safetensors file (e.g. aligned-edge latents S_EG saved by MAKD), decoded by
    ``vae`` (any size; e.g. SD's 4×64×64) or, for 4×8×8 latents without one, the miniature world's VAE."""
    from safetensors.torch import load_file

    tensors = load_file(path)
    if key not in tensors or tensors[key].dim() != 4:
        raise ValueError(f"{path}: need a 4-D tensor under key {key!r}; found {sorted(tensors)}")
    z = tensors[key].float().contiguous()
    decoder = None
    if vae is not None or tuple(z.shape[1:]) == (4, 8, 8):
        scale = 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 4
        decoder = vae_latents(vae, images=torch.zeros(1, 3, z.shape[2] * scale, z.shape[3] * scale))
    return LatentSet(z, f"latent file {path}[{key}]", decoder.decode_image if decoder else None,
                     decoder.image_range if decoder else 1.0)


@torch.no_grad()
def vae_latents(vae=None, images: torch.Tensor | None = None, batch_size: int = 256) -> LatentSet:
    """VAE latents (posterior means × scaling factor) of the miniature dataset, decoded by the same VAE.

    ``vae`` defaults to the miniature world's committed VAE (``dekag/miniature/checkpoints/vae``, diffusers
    ``AutoencoderKL``), ``images`` to the world's digits dataset ([N, 3, 32, 32] in [-1, 1]).
    Decoded images are in [-1, 1] (``image_range`` 2).
    """
    if vae is None:
        from diffusers import AutoencoderKL

        from dekag.miniature.world import CHECKPOINT_DIR
        vae = AutoencoderKL.from_pretrained(CHECKPOINT_DIR / "vae").eval()
    if images is None:
        from dekag.miniature.data import load_digits_dataset
        images = load_digits_dataset().images
    sf = float(vae.config.scaling_factor)
    latents = torch.cat([vae.encode(images[i:i + batch_size]).latent_dist.mean * sf
                         for i in range(0, len(images), batch_size)])

    @torch.no_grad()
    def decode_image(z: torch.Tensor) -> torch.Tensor:
        return torch.cat([vae.decode(z[i:i + batch_size] / sf).sample.clamp(-1.0, 1.0)
                          for i in range(0, len(z), batch_size)])

    return LatentSet(latents.float().contiguous(), "miniature world VAE: latents of the digits dataset",
                     decode_image, 2.0)
