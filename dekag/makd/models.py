"""The models one MAKD run uses, at either scale, behind one small interface (:class:`AlignmentModels`)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from dekag import ldm, metrics
from dekag.knowledge_package import BaseModel, base_model_from_folder
from dekag.makd.config import MakdConfig


@dataclass
class AlignmentModels:
    """``cloud`` pipeline; ``fresh_edge()`` → a newly loaded edge pipeline; ``edge_base`` its identity;
    ``score(edge_images, cloud_images)`` → consistency metrics; ``classify(images)`` → labels ``[B]`` or None;
    ``baselines``: the consistency metrics of real images of different classes (``chance``) and of the same
    class (``ceiling``), :func:`dekag.metrics.real_image_baselines` (None without labelled real images)."""

    cloud: object
    fresh_edge: Callable[[], object]
    edge_base: BaseModel
    score: Callable[[torch.Tensor, torch.Tensor], dict[str, float]]
    classify: Callable[[torch.Tensor], torch.Tensor] | None
    baselines: dict | None = None


def _match_size(images: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if images.shape[-2:] == like.shape[-2:]:
        return images
    return F.interpolate(images, size=like.shape[-2:], mode="bilinear", align_corners=False)


def load_models(cfg: MakdConfig) -> AlignmentModels:
    """Miniature world (``cfg.world_dir``) or real-scale local folders (``cfg.cloud_dir``/``edge_dir``)."""
    if cfg.cloud_dir:
        cloud = ldm.load_pipeline(cfg.cloud_dir, device=cfg.device)
        feature_model = ImageFeatureModelScore(cfg.feature_model_dir, cfg.device)
        return AlignmentModels(cloud=cloud, fresh_edge=lambda: ldm.load_pipeline(cfg.edge_dir, device=cfg.device),
                               edge_base=base_model_from_folder(cfg.edge_dir), score=feature_model,
                               classify=None)
    from dekag.miniature.world import CHECKPOINT_DIR, load_world

    world = load_world(Path(cfg.world_dir) if cfg.world_dir else CHECKPOINT_DIR)
    net = world.features

    def classify(x: torch.Tensor) -> torch.Tensor:
        return net(x).argmax(1)

    baselines = metrics.real_image_baselines(net.features, world.dataset.images, world.dataset.labels,
                                             classify=classify)
    centre = baselines.pop("centre")

    def score(edge: torch.Tensor, cloud: torch.Tensor) -> dict[str, float]:
        return {**metrics.consistency(net.features, edge, cloud, centre, classify), **metrics.psnr_ssim(edge, cloud)}

    return AlignmentModels(cloud=world.cloud, fresh_edge=world.fresh_edge,
                           edge_base=base_model_from_folder(world.folder / "edge", "dekag-miniature-edge"),
                           score=score, classify=classify, baselines=baselines)


class ImageFeatureModelScore:
    """Real-scale score: DINO/CLIP feature cosine (local folder) + PSNR/SSIM."""

    def __init__(self, folder: str, device: str):
        self.model = metrics.ImageFeatureModel(folder, device=device)

    def __call__(self, edge: torch.Tensor, cloud: torch.Tensor) -> dict[str, float]:
        edge = _match_size(edge, cloud)
        return {"feature_cosine": self.model.cosine(edge, cloud), **metrics.psnr_ssim(edge, cloud)}
