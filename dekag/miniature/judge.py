"""An independent judge of generated digits: a scikit-learn SVC on rendered digits the world never trained on.

It is fitted on renders with their own seed (``JUDGE_SEED``) of the world's fonts *and* of Computer Modern
fonts the world never saw (:data:`~dekag.miniature.data.JUDGE_ONLY_FONTS`), and shares nothing with the world's
models (not the feature network consistency is measured with), so "the edge draws a seven" is checked by a
classifier alignment never optimised against. ``held_out_accuracy`` is its accuracy on the world's own
training images, none of which it saw. A classifier must name *some* digit for any image (a lone bar reads as a
seven), so :meth:`Judge.typical` adds a check that an image looks like a printed digit at all: its nearest
neighbour in the world's dataset is no farther than that of 95 % of the judge's own renders.

>>> judge = fit_judge()
>>> judge.held_out_accuracy > 0.95
True
>>> bar = -torch.ones(1, 3, 32, 32); bar[..., 8:11, 6:26] = 1.0          # a lone bar: "a seven", but no digit
>>> int(judge.predict(bar)), bool(judge.typical(bar))
(7, False)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dekag.miniature import data as D

JUDGE_SEED = 9_999
"""Seed of the judge's renders (the world's dataset uses seed 0)."""


def _flat(images: torch.Tensor) -> np.ndarray:
    """Images ``[B, 3, H, W]`` in [-1, 1] → grey ``[B, H·W]`` in [0, 1] (the SVC's input)."""
    return ((images.detach().float().cpu().mean(1).clamp(-1, 1) + 1) / 2).flatten(1).numpy()


@dataclass
class Judge:
    """``predict(images [B, 3, H, W] in [-1, 1]) → labels [B]``; ``held_out_accuracy`` on the world's dataset
    (images it did not see); ``image_size`` (H = W) it was fitted at (other sizes are resized bilinearly)."""

    svc: object
    image_size: int
    held_out_accuracy: float
    reference: torch.Tensor
    """The world's dataset, grey ``[N, H·W]`` in [0, 1]."""
    typical_distance: float
    """95th percentile of the nearest-neighbour L2 distance from the judge's renders to ``reference``."""

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.svc.predict(_flat(self._resize(images))), dtype=torch.int64)

    def typical(self, images: torch.Tensor) -> torch.Tensor:
        """Bool ``[B]``: the image's nearest neighbour in the world's dataset is within ``typical_distance``."""
        return torch.cdist(self.grey(images), self.reference).min(1).values <= self.typical_distance

    def grey(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` in [-1, 1] as the judge sees them: grey ``[B, image_size²]`` in [0, 1], the
        space of ``reference`` and ``typical_distance``."""
        return torch.as_tensor(_flat(self._resize(images)))

    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [B, 3, H, W], got {tuple(images.shape)}")
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            images = torch.nn.functional.interpolate(images.float(), size=(self.image_size, self.image_size),
                                                     mode="bilinear", align_corners=False)
        return images

    def per_class_accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> dict[int, tuple[int, int]]:
        """``{class: (correct, n)}`` of images whose prompt named ``labels[i]``."""
        pred = self.predict(images)
        return {int(c): (int((pred[labels == c] == c).sum()), int((labels == c).sum())) for c in labels.unique()}


def fit_judge(per_font_class: int = 20, seed: int = JUDGE_SEED) -> Judge:
    """An RBF SVC (``gamma="scale"``, C = 10) on ``per_font_class`` renders per digit of every world and
    judge-only font (seed ``seed``), scored on the world's dataset (:func:`~dekag.miniature.data.load_digits_dataset`);
    a few seconds."""
    from sklearn.svm import SVC

    if seed == 0:
        raise ValueError("seed 0 renders the world's own dataset; the judge needs images the world never saw")
    train = D.render_digits(D.WORLD_FONTS + D.JUDGE_ONLY_FONTS, per_font_class, seed)
    test = D.load_digits_dataset()
    svc = SVC(C=10.0, gamma="scale").fit(_flat(train.images), train.labels.numpy())
    acc = float((svc.predict(_flat(test.images)) == test.labels.numpy()).mean())
    reference = torch.as_tensor(_flat(test.images))
    nearest = torch.cdist(torch.as_tensor(_flat(train.images)), reference).min(1).values
    return Judge(svc=svc, image_size=D.IMAGE_SIZE, held_out_accuracy=acc, reference=reference,
                 typical_distance=float(nearest.quantile(0.95)))
