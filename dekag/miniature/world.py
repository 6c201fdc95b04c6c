"""Load the miniature world from its checkpoint folder.

>>> world = load_world()                       # the shipped checkpoints, a few seconds
>>> z = world.generate_latents("edge", ["a photo of a seven"], seeds=[0], num_inference_steps=2)
>>> z.shape
torch.Size([1, 4, 8, 8])
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from dekag import ldm
from dekag.errors import DekagError
from dekag.knowledge_package import sha256_file
from dekag.miniature import data as D
from dekag.miniature.models import FeatureNet

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


class WorldChecksumError(DekagError, RuntimeError):
    """A checkpoint file does not match the SHA-256 recorded in ``world.json``."""


WORLD_PARTS = ("vae", "cloud", "edge", "features.safetensors")
"""What ``world.json`` covers (the folder may hold more, e.g. the downlink package, which has its own hashes)."""


def file_hashes(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file of the world's parts (:data:`WORLD_PARTS`) under ``folder``."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).parts[0] in WORLD_PARTS}


@dataclass
class World:
    """The miniature world: shared ``vae``, ``cloud`` and ``edge`` ``StableDiffusionPipeline``s, ``features``
    (:class:`FeatureNet`), ``dataset`` (:class:`DigitsDataset`), ``manifest`` (``world.json``), ``folder``."""

    vae: object
    cloud: object
    edge: object
    features: FeatureNet
    dataset: D.DigitsDataset
    manifest: dict
    folder: Path

    @property
    def subject_class(self) -> int:
        """The class the edge never saw in training."""
        return int(self.manifest["config"]["held_out_class"])

    def fresh_edge(self):
        """A newly loaded edge pipeline (no adapters, no added tokens), sharing the world's VAE."""
        return ldm.load_pipeline(self.folder / "edge", vae=self.vae)

    def generate_latents(self, which: str, prompts: Sequence[str], seeds: Sequence[int], **kw) -> torch.Tensor:
        """Scaled latents ``[B, 4, 8, 8]`` from ``"cloud"`` or ``"edge"``."""
        return ldm.generate_latents(self._pipe(which), prompts, seeds, **kw)

    def generate_images(self, which: str, prompts: Sequence[str], seeds: Sequence[int], **kw) -> torch.Tensor:
        """Images ``[B, 3, 32, 32]`` in [-1, 1] from ``"cloud"`` or ``"edge"``."""
        return ldm.decode_latents(self.vae, self.generate_latents(which, prompts, seeds, **kw))

    def _pipe(self, which: str):
        if which not in ("cloud", "edge"):
            raise ValueError(f"which must be 'cloud' or 'edge', got {which!r}")
        return self.cloud if which == "cloud" else self.edge

    @torch.no_grad()
    def class_accuracy(self, classify, per_class: int = 8, seed: int = 0, **sampling) -> dict[str, list[float]]:
        """Per model (``cloud``, ``edge``) and class 0..9: the fraction of ``per_class`` generated images (prompt
        "a photo of a <class>", seeds ``seed…``, ``sampling`` as for :meth:`generate_images`) that
        ``classify(images [B,3,32,32]) → labels [B]`` gives the prompted class (e.g.
        :meth:`dekag.miniature.judge.Judge.predict`)."""
        prompts = [D.prompt_for(c, D.TRAIN_TEMPLATES[0]) for c in range(10) for _ in range(per_class)]
        labels = torch.arange(10).repeat_interleave(per_class)
        seeds = [seed + i % per_class for i in range(len(prompts))]
        out = {}
        for which in ("cloud", "edge"):
            pred = classify(self.generate_images(which, prompts, seeds, **sampling))
            out[which] = [(pred[labels == c] == c).float().mean().item() for c in range(10)]
        return out


def load_world(folder: str | Path = CHECKPOINT_DIR, *, verify: bool = True) -> World:
    """Load the world; with ``verify`` every file's SHA-256 is checked against ``world.json``."""
    from diffusers import AutoencoderKL
    from safetensors.torch import load_file

    folder = Path(folder)
    manifest_path = folder / "world.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no miniature world in {folder} (world.json missing); "
                                "build one with: python -m dekag.miniature.train_world --out " + str(folder))
    manifest = json.loads(manifest_path.read_text())
    if verify:
        actual = file_hashes(folder)
        for rel, digest in manifest["files"].items():
            if actual.get(rel) != digest:
                raise WorldChecksumError(f"{folder / rel}: SHA-256 mismatch or missing file")
    vae = AutoencoderKL.from_pretrained(folder / "vae").eval()
    features = FeatureNet()
    features.load_state_dict(load_file(str(folder / "features.safetensors")))
    return World(vae=vae, cloud=ldm.load_pipeline(folder / "cloud", vae=vae),
                 edge=ldm.load_pipeline(folder / "edge", vae=vae), features=features.eval(),
                 dataset=D.load_digits_dataset(), manifest=manifest, folder=folder)
