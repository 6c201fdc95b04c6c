"""Miniature dataset: printed digits rendered from the TrueType fonts matplotlib bundles, 32×32×3 in [-1, 1].

Every image is one glyph "0"…"9" in one font (DejaVu Sans / Sans Mono / Serif and STIX, regular, bold and
slanted variants; the seven has no crossbar in any of them), white on black, with a seeded random affine
jitter (rotation, scale, shear, shift) and stroke weight, rendered at 96×96 with PIL and downsampled with a
Lanczos filter. The dataset is a pure function of ``(fonts, per_font_class, seed)``: the same arguments give
the same images (``dataset_sha256`` fingerprints them; ``world.json`` records it).
Each image gets a text prompt naming its class ("a photo of a seven"). Prompt templates are split into
*training* templates (used to build S_CG during alignment) and *held-out* templates (only for evaluation, the
overfitting guard); the world models are trained on both.

>>> ds = load_digits_dataset()
>>> ds.images.shape, ds.images.dtype, float(ds.images.min()), float(ds.images.max())
(torch.Size([3000, 3, 32, 32]), torch.float32, -1.0, 1.0)
>>> prompt_for(7, TRAIN_TEMPLATES[0])
'a photo of a seven'
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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

#: Fonts (file names in matplotlib's ``mpl-data/fonts/ttf``) the world is trained on.
WORLD_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
               "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
               "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf")
#: Computer Modern fonts the world never sees; only the judge (:mod:`dekag.miniature.judge`) is fitted on them.
JUDGE_ONLY_FONTS = ("cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmb10.ttf", "cmti10.ttf")

_CANVAS = 96          # render size (px) before downsampling to IMAGE_SIZE
_FONT_PX = 68         # nominal font size on the canvas
_ROTATE_DEG = 10.0    # jitter ranges (uniform in ±range)
_SCALE = 0.12         # relative
_SHEAR = 0.2
_SHIFT_PX = 6.0       # on the canvas (÷3 at 32×32)
_MAX_STROKE_PX = 3    # extra stroke width on the canvas, uniform in 0…_MAX_STROKE_PX


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


def font_path(name: str) -> Path:
    """Path of a font bundled with matplotlib; a clear error for an unknown name."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    if not path.is_file():
        raise FileNotFoundError(f"font {name!r} is not bundled with this matplotlib ({path.parent})")
    return path


def render_glyph(char: str, font: str, rng: np.random.Generator) -> np.ndarray:
    """One glyph as uint8 ``[IMAGE_SIZE, IMAGE_SIZE]`` (white on black) with a random affine jitter and stroke
    weight drawn from ``rng``."""
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(str(font_path(font)), _FONT_PX)
    im = Image.new("L", (_CANVAS, _CANVAS), 0)
    stroke = int(rng.integers(0, _MAX_STROKE_PX + 1))
    ImageDraw.Draw(im).text((_CANVAS / 2, _CANVAS / 2), char, font=face, fill=255, anchor="mm",
                            stroke_width=stroke, stroke_fill=255)
    angle = np.deg2rad(rng.uniform(-_ROTATE_DEG, _ROTATE_DEG))
    scale = 1.0 + rng.uniform(-_SCALE, _SCALE)
    shear = rng.uniform(-_SHEAR, _SHEAR)
    shift = rng.uniform(-_SHIFT_PX, _SHIFT_PX, 2)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    inv = np.linalg.inv(scale * rot @ np.array([[1.0, shear], [0.0, 1.0]]))   # PIL maps output → input pixels
    centre = np.full(2, _CANVAS / 2)
    off = centre - inv @ (centre + shift)
    im = im.transform((_CANVAS, _CANVAS), Image.AFFINE, (*inv[0], off[0], *inv[1], off[1]),
                      resample=Image.BILINEAR)
    return np.asarray(im.resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS))


def render_digits(fonts: tuple[str, ...] = WORLD_FONTS, per_font_class: int = 25, seed: int = 0) -> DigitsDataset:
    """``per_font_class`` jittered renders of every digit in every font (``10·len(fonts)·per_font_class``
    images, ordered font → class → copy); deterministic in its arguments."""
    if per_font_class < 1:
        raise ValueError(f"per_font_class must be >= 1, got {per_font_class}")
    if not fonts:
        raise ValueError("fonts must not be empty")
    rng = np.random.default_rng(seed)
    glyphs, labels = [], []
    for font in fonts:
        for label in range(10):
            for _ in range(per_font_class):
                glyphs.append(render_glyph(str(label), font, rng))
                labels.append(label)
    x = torch.as_tensor(np.stack(glyphs), dtype=torch.float32)[:, None] / 127.5 - 1.0
    return DigitsDataset(x.repeat(1, 3, 1, 1).contiguous(), torch.as_tensor(labels, dtype=torch.int64))


def load_digits_dataset(per_font_class: int = 25, seed: int = 0) -> DigitsDataset:
    """The world's dataset: :func:`render_digits` of :data:`WORLD_FONTS` (3000 images by default)."""
    return render_digits(WORLD_FONTS, per_font_class, seed)


def dataset_sha256(ds: DigitsDataset) -> str:
    """SHA-256 of the images (float32, C order) and labels (int64): a fingerprint of a rendered dataset."""
    h = hashlib.sha256(ds.images.numpy().tobytes())
    h.update(ds.labels.numpy().tobytes())
    return h.hexdigest()


def prompt_for(label: int, template: str) -> str:
    """The prompt naming class ``label`` in ``template`` (``"{}"`` is replaced by the class word)."""
    if not 0 <= label < len(CLASS_WORDS):
        raise ValueError(f"label must be in 0..9, got {label}")
    return template.format(CLASS_WORDS[label])


def random_shift(images: torch.Tensor, max_shift_px: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by an integer offset in [-max_shift_px, max_shift_px]² (background fill -1)."""
    if max_shift_px == 0:
        return images
    n, _, h, w = images.shape
    pad = F.pad(images, [max_shift_px] * 4, value=-1.0)
    off = torch.randint(0, 2 * max_shift_px + 1, (n, 2), generator=generator)
    return torch.stack([pad[i, :, oy:oy + h, ox:ox + w] for i, (oy, ox) in enumerate(off.tolist())])
