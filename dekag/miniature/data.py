"""Miniature dataset: scikit-learn's bundled 8×8 handwritten digits, upsampled to 32×32×3 in [-1, 1].

Each image gets a text prompt naming its class ("a photo of a seven"). Prompt templates are split into
*training* templates (used to build S_CG during alignment) and *held-out* templates (only for evaluation,
the overfitting guard); the world models are trained on both.

>>> ds = load_digits_dataset()
>>> ds.images.shape, ds.images.dtype, float(ds.images.min()), float(ds.images.max())
(torch.Size([1797, 3, 32, 32]), torch.float32, -1.0, 1.0)
>>> prompt_for(7, TRAIN_TEMPLATES[0])
'a photo of a seven'
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: Class index → the word that names it in prompts.
CLASS_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: Templates used to generate S_CG and to train the aligned models.
TRAIN_TEMPLATES = ("a photo of a {}", "a handwritten {}", "a drawing of the digit {}")
#: Templates never used by alignment training (overfitting guard; the world models know them).
HELD_OUT_TEMPLATES = ("an image of the number {}", "a picture of a {}")
#: Non-class words of all templates (the tokenizer makes each a single token).
PROMPT_WORDS = tuple(sorted({w for t in TRAIN_TEMPLATES + HELD_OUT_TEMPLATES
                             for w in t.replace("{}", "").split()}))
IMAGE_SIZE = 32


@dataclass(frozen=True)
class DigitsDataset:
    """``images``: float32 ``[N, 3, 32, 32]`` in [-1, 1]; ``labels``: int64 ``[N]`` in 0..9."""

    images: torch.Tensor
    labels: torch.Tensor

    def without_class(self, label: int) -> DigitsDataset:
        keep = self.labels != label
        return DigitsDataset(self.images[keep], self.labels[keep])

    def split(self, test_fraction: float, seed: int) -> tuple[DigitsDataset, DigitsDataset]:
        """Random (train, test) split with a seeded ``torch.Generator``."""
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        perm = torch.randperm(len(self.labels), generator=torch.Generator().manual_seed(seed))
        n_test = int(round(test_fraction * len(perm)))
        te, tr = perm[:n_test], perm[n_test:]
        return DigitsDataset(self.images[tr], self.labels[tr]), DigitsDataset(self.images[te], self.labels[te])


def load_digits_dataset() -> DigitsDataset:
    """All 1797 digits of ``sklearn.datasets.load_digits`` (bundled, no download), bilinearly upsampled."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0       # [N,1,8,8] in [0,1]
    x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    x = (x.clamp(0.0, 1.0) * 2.0 - 1.0).repeat(1, 3, 1, 1)
    return DigitsDataset(x.contiguous(), torch.as_tensor(bunch.target, dtype=torch.int64))


def prompt_for(label: int, template: str) -> str:
    """The prompt naming class ``label`` in ``template`` (``"{}"`` is replaced by the class word)."""
    if not 0 <= label < len(CLASS_WORDS):
        raise ValueError(f"label must be in 0..9, got {label}")
    return template.format(CLASS_WORDS[label])


def random_shift(images: torch.Tensor, max_shift_px: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by an integer offset in [-max_shift_px, max_shift_px]² (background fill -1)."""
    n, _, h, w = images.shape
    pad = F.pad(images, [max_shift_px] * 4, value=-1.0)
    off = torch.randint(0, 2 * max_shift_px + 1, (n, 2), generator=generator)
    return torch.stack([pad[i, :, oy:oy + h, ox:ox + w] for i, (oy, ox) in enumerate(off.tolist())])
