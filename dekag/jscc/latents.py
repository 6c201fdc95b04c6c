"""Latent datasets the codec trains and is measured on.

* :func:`world_latents`: VAE latents of the miniature world's dataset ([N, 4, 8, 8], the VAE's scaled
  latent space), with the world's VAE decoder for decoded-image PSNR. The default once the world exists.
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


@torch.no_grad()
def world_latents(world=None) -> LatentSet:
    """VAE latents (posterior means, scaled) of the miniature world's dataset, decoded by ``world.vae``.

    ``world`` defaults to :func:`dekag.miniature.world.load_world` (the shipped checkpoints).
    """
    if world is None:
        from dekag.miniature.world import load_world
        world = load_world()
    vae = world.vae
    sf = float(vae.config.scaling_factor)
    images = world.dataset.images
    latents = torch.cat([vae.encode(images[i:i + 256]).latent_dist.mean * sf for i in range(0, len(images), 256)])

    def decode_image(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return vae.decode(z / sf).sample.clamp(-1.0, 1.0)

    return LatentSet(latents.float().contiguous(), "miniature world: VAE latents of the digits dataset",
                     decode_image, 2.0)
