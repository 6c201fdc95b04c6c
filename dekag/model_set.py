"""The models the nodes and benches need, at either scale, from one call: :func:`load_model_set`.

All folders empty = the shipped miniature world (its VAE, cloud and edge, its feature network and the real
digits for baselines). Otherwise local folders (nothing downloaded):

* ``edge_dir``: diffusers pipeline folder of the edge (UNet or transformer denoiser, :mod:`dekag.denoiser`);
  the knowledge package must have been made for it.
* ``cloud_dir``: diffusers pipeline folder of the cloud (the reference images; loaded on first use).
* ``vae_dir``: an ``AutoencoderKL`` folder to decode the edge's latents with; empty = the edge pipeline's VAE.
* ``feature_model_dir``: a transformers DINO/DINOv2/ViT/CLIP folder for consistency
  (:class:`~dekag.metrics.ImageFeatureModel`).

>>> ms = load_model_set()                      # the miniature world
>>> ms.latent_shape
(4, 8, 8)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dekag import denoiser, ldm
from dekag.knowledge_package import BaseModel, base_model_from_folder


@dataclass
class ModelSet:
    """``vae`` (decodes the edge's latents), ``fresh_edge()`` (a newly loaded edge pipeline), ``edge_base``
    (its identity for package checks), ``cloud`` (property, loaded on first use), ``features(images) → [B, D]``,
    ``classify(images) → [B]`` labels or None, ``real`` (``(images, labels)`` of real images for chance and
    ceiling baselines, or None)."""

    vae: object
    fresh_edge: Callable[[], object]
    edge_base: BaseModel
    load_cloud: Callable[[], object]
    features: Callable[[torch.Tensor], torch.Tensor]
    classify: Callable[[torch.Tensor], torch.Tensor] | None = None
    real: tuple[torch.Tensor, torch.Tensor] | None = None
    latent_shape: tuple[int, int, int] = (4, 8, 8)
    _cloud: object = field(default=None, repr=False)

    @property
    def cloud(self):
        """The cloud pipeline (loaded once, on first use)."""
        if self._cloud is None:
            self._cloud = self.load_cloud()
        return self._cloud


def _check_folder(kind: str, folder: str) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"{kind} {folder!r} is not a folder; give a local diffusers/transformers folder "
                                "(or leave every model folder empty for the miniature world)")
    return path


def load_model_set(edge_dir: str = "", cloud_dir: str = "", vae_dir: str = "", feature_model_dir: str = "",
                   device: str = "cpu") -> ModelSet:
    """Miniature world (all folders empty) or local folders (``edge_dir``, ``cloud_dir`` and
    ``feature_model_dir`` required together; ``vae_dir`` optional)."""
    given = {"edge_dir": edge_dir, "cloud_dir": cloud_dir, "feature_model_dir": feature_model_dir}
    if not any(given.values()) and not vae_dir:
        return _miniature()
    missing = [k for k, v in given.items() if not v]
    if missing:
        raise ValueError(f"local models need edge_dir, cloud_dir and feature_model_dir; missing {missing} "
                         "(leave all empty for the miniature world)")
    from diffusers import AutoencoderKL

    from dekag.metrics import ImageFeatureModel

    edge = _check_folder("edge_dir", edge_dir)
    cloud = _check_folder("cloud_dir", cloud_dir)
    fm = ImageFeatureModel(_check_folder("feature_model_dir", feature_model_dir), device=device)
    vae = (AutoencoderKL.from_pretrained(_check_folder("vae_dir", vae_dir), local_files_only=True).eval().to(device)
           if vae_dir else None)
    probe = ldm.load_pipeline(edge, device=device)
    vae = vae if vae is not None else probe.vae
    shape = (int(vae.config.latent_channels), denoiser.latent_size(probe), denoiser.latent_size(probe))
    return ModelSet(vae=vae, fresh_edge=lambda: ldm.load_pipeline(edge, vae=vae, device=device),
                    edge_base=base_model_from_folder(edge, name="edge"),
                    load_cloud=lambda: ldm.load_pipeline(cloud, device=device), features=fm.features,
                    latent_shape=shape)


def _miniature() -> ModelSet:
    from dekag.miniature.world import load_world

    world = load_world()
    net = world.features
    return ModelSet(vae=world.vae, fresh_edge=world.fresh_edge,
                    edge_base=base_model_from_folder(world.folder / "edge", name="edge"),
                    load_cloud=lambda: world.cloud, features=net.features, classify=lambda x: net(x).argmax(1),
                    real=(world.dataset.images, world.dataset.labels),
                    latent_shape=(int(world.vae.config.latent_channels), denoiser.latent_size(world.edge),
                                  denoiser.latent_size(world.edge)))
