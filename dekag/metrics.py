"""Edge-vs-cloud consistency and fidelity metrics.

* Miniature scale: :func:`feature_consistency` with the world's feature network (cosine of features and
  agreement of predicted labels) — the stand-in for DINO/CLIP.
* Real scale: :class:`ImageFeatureModel` wraps a DINO/DINOv2/ViT or CLIP model loaded from a *local*
  transformers folder (no download) and gives image-feature cosine the same way.
* :func:`psnr_ssim` via torchmetrics.
* What a consistency figure means: :func:`consistency` adds the *centred* cosine (features minus the mean
  feature of real images, so an unrelated pair scores about 0, not 0.9 as non-negative features do);
  :func:`real_image_baselines` gives every metric's *chance* (real images of different classes) and
  *ceiling* (real images of the same class); :func:`wilson_interval` a confidence interval for a rate
  (label agreement, classifier accuracy) over samples drawn with different seeds.

Images everywhere are float ``[B, 3, H, W]`` in [-1, 1].
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.dim() != 4 or a.shape[1] != 3:
        raise ValueError(f"expected two image batches [B,3,H,W] of equal shape, got {tuple(a.shape)}, "
                         f"{tuple(b.shape)}")


@torch.no_grad()
def feature_consistency(net, a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Mean feature cosine and label agreement of image pairs ``a[i]``, ``b[i]`` under a classifier ``net``
    with a ``features`` method and ``forward`` logits (e.g. :class:`dekag.miniature.models.FeatureNet`)."""
    _check_pair(a, b)
    fa, fb = net.features(a), net.features(b)
    agree = (net.head(fa).argmax(1) == net.head(fb).argmax(1)).float()
    return {"feature_cosine": F.cosine_similarity(fa, fb, dim=1).mean().item(),
            "label_agreement": agree.mean().item()}


@torch.no_grad()
def psnr_ssim(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """PSNR (dB) and SSIM of ``a`` against reference ``b``, both mapped to [0, 1]."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    _check_pair(a, b)
    a01, b01 = (a.float().clamp(-1, 1) + 1) / 2, (b.float().clamp(-1, 1) + 1) / 2
    return {"psnr_db": peak_signal_noise_ratio(a01, b01, data_range=1.0).item(),
            "ssim": structural_similarity_index_measure(a01, b01, data_range=1.0).item()}


@torch.no_grad()
def consistency(features, a: torch.Tensor, b: torch.Tensor, centre: torch.Tensor | None = None,
                classify=None) -> dict[str, float]:
    """Consistency of image pairs ``a[i]``, ``b[i]`` under ``features(images) → [B, D]``: mean
    ``feature_cosine``; ``centred_cosine`` (the cosine of ``f − centre``, ``centre`` ``[D]`` the mean
    feature of real images) when ``centre`` is given; ``label_agreement`` when ``classify(images) → [B]``
    labels is given."""
    _check_pair(a, b)
    fa, fb = features(a).float(), features(b).float()
    out = {"feature_cosine": F.cosine_similarity(fa, fb, dim=1).mean().item()}
    if centre is not None:
        c = centre.to(fa)
        out["centred_cosine"] = F.cosine_similarity(fa - c, fb - c, dim=1).mean().item()
    if classify is not None:
        out["label_agreement"] = (classify(a) == classify(b)).float().mean().item()
    return out


@torch.no_grad()
def real_image_baselines(features, images: torch.Tensor, labels: torch.Tensor, n_pairs: int = 512, seed: int = 0,
                         classify=None) -> dict[str, dict[str, float]]:
    """``{"chance": ..., "ceiling": ..., "centre": [D] list}`` for :func:`consistency` on real images
    ``[N, 3, H, W]`` with class ``labels`` ``[N]``: ``n_pairs`` random pairs of *different* classes (chance:
    what an unrelated image scores) and of the *same* class (ceiling: what two real members of one class
    score). The centre is the mean feature of all ``images``."""
    if images.shape[0] != labels.shape[0] or labels.unique().numel() < 2:
        raise ValueError("need real images with labels of at least two classes")
    gen = torch.Generator().manual_seed(seed)
    centre = torch.cat([features(images[i:i + 256]).float() for i in range(0, len(images), 256)]).mean(0)
    out: dict = {}
    for name, same in (("chance", False), ("ceiling", True)):
        i = torch.randint(len(labels), (n_pairs,), generator=gen)
        j = torch.empty_like(i)
        for k, first in enumerate(i.tolist()):
            pool = torch.nonzero((labels == labels[first]) == same).flatten()
            pool = pool[pool != first]
            j[k] = pool[torch.randint(len(pool), (1,), generator=gen)]
        out[name] = {**consistency(features, images[i], images[j], centre, classify), "pairs": n_pairs}
    out["centre"] = centre
    return out


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95 % for ``z`` = 1.96) of a rate ``successes / n`` (e.g. label agreement over
    ``n`` images generated with ``n`` different seeds)."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes}/{n}")
    p = successes / n
    denom = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / denom
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / denom
    return max(0.0, mid - half), min(1.0, mid + half)


class ImageFeatureModel:
    """Image features from a local transformers folder: CLIP (``get_image_features``) or a ViT-style model
    such as DINO/DINOv2 (CLS token of ``last_hidden_state``). Preprocessing is done in torch (resize to the
    model's ``image_size``, normalise with ``image_mean``/``image_std`` of ``preprocessor_config.json``, or
    ImageNet statistics when absent) because torchvision-backed image processors are unusable here."""

    _IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu"):
        from transformers import AutoConfig, AutoModel

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} is not a local transformers model folder (no config.json)")
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        self.is_clip = config.model_type == "clip"
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).eval().to(device)
        vision = config.vision_config if self.is_clip else config
        self.image_size = int(vision.image_size)
        mean, std = self._IMAGENET
        pre = folder / "preprocessor_config.json"
        if pre.is_file():
            cfg = json.loads(pre.read_text())
            mean, std = cfg.get("image_mean", mean), cfg.get("image_std", std)
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1)
        self.device = device

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, D]`` features of images ``[B, 3, H, W]`` in [-1, 1]."""
        x = (images.float().to(self.device).clamp(-1, 1) + 1) / 2
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic", align_corners=False)
        x = (x - self.mean) / self.std
        if self.is_clip:
            out = self.model.get_image_features(pixel_values=x)
            return out if isinstance(out, torch.Tensor) else out.pooler_output
        return self.model(pixel_values=x).last_hidden_state[:, 0]

    def cosine(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """Mean cosine of features of image pairs ``a[i]``, ``b[i]``."""
        _check_pair(a, b)
        return F.cosine_similarity(self.features(a), self.features(b), dim=1).mean().item()
