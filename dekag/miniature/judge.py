"""An independent judge of generated digits: a scikit-learn SVC on the world's real images, at the world's
image size. It shares nothing with the world's models (not the feature network consistency is measured with),
so "the edge draws a seven" is checked by a classifier alignment never optimised against.

>>> from dekag.miniature.data import load_digits_dataset
>>> judge = fit_judge(load_digits_dataset())
>>> judge.held_out_accuracy > 0.95
True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dekag.miniature.data import DigitsDataset


def _flat(images: torch.Tensor) -> np.ndarray:
    """Images ``[B, 3, H, W]`` in [-1, 1] → grey ``[B, H·W]`` in [0, 1] (the SVC's input)."""
    return ((images.detach().float().cpu().mean(1).clamp(-1, 1) + 1) / 2).flatten(1).numpy()


@dataclass
class Judge:
    """``predict(images [B, 3, H, W] in [-1, 1]) → labels [B]``; ``held_out_accuracy`` on real images it did not
    see; ``image_size`` (H = W) it was fitted at (other sizes are resized bilinearly)."""

    svc: object
    image_size: int
    held_out_accuracy: float

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [B, 3, H, W], got {tuple(images.shape)}")
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            images = torch.nn.functional.interpolate(images.float(), size=(self.image_size, self.image_size),
                                                     mode="bilinear", align_corners=False)
        return torch.as_tensor(self.svc.predict(_flat(images)), dtype=torch.int64)

    def per_class_accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> dict[int, tuple[int, int]]:
        """``{class: (correct, n)}`` of images whose prompt named ``labels[i]``."""
        pred = self.predict(images)
        return {int(c): (int((pred[labels == c] == c).sum()), int((labels == c).sum())) for c in labels.unique()}


def fit_judge(dataset: DigitsDataset, test_fraction: float = 0.2, seed: int = 0) -> Judge:
    """An RBF SVC (``gamma="scale"``, C = 10) on a seeded split of ``dataset``; about a second."""
    from sklearn.svm import SVC

    train, test = dataset.split(test_fraction, seed)
    svc = SVC(C=10.0, gamma="scale").fit(_flat(train.images), train.labels.numpy())
    acc = float((svc.predict(_flat(test.images)) == test.labels.numpy()).mean())
    return Judge(svc=svc, image_size=int(dataset.images.shape[-1]), held_out_accuracy=acc)
