"""The ``dekag`` side of the nodes: what the edge generates and encodes, what the user decodes and measures.

Both runtimes load the miniature world (or a real-scale one, through the same code path) and the
downlink knowledge package (metaword + G-LoRA + JSCC codec with CALA, :mod:`dekag.downlink`).

The radio receiver returns MMSE (biased) symbol estimates ``ŝ`` with error variance ``e`` per symbol;
the JSCC decoder reads unbiased estimates with effective noise ``N/|H|²``.
:func:`~experiments.frame_link.unbiased` converts: ``s = ŝ / (1 − e)``, ``no_eff = e / (1 − e)``.

Every condition reaches the codec through the package's
:class:`~dekag.jscc.condition_domain.ConditionDomain` (``condition_domain``): the nodes map each reported
condition with it, record the rules applied, and hand the codec only conditions inside its domain.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from dekag import ldm  # noqa: E402
from dekag.downlink import Downlink, load_downlink  # noqa: E402
from dekag.jscc import symbols_from_numpy, symbols_to_numpy  # noqa: E402
from dekag.metrics import feature_consistency, psnr_ssim  # noqa: E402
from dekag.miniature.world import World, load_world  # noqa: E402
from experiments.config import TestbedConfig  # noqa: E402
from experiments.frame_link import unbiased  # noqa: E402


def to_png_array(image: torch.Tensor) -> np.ndarray:
    """Image [3, H, W] (or [1, 3, H, W]) in [-1, 1] → H×W×3 float in [0, 1]."""
    image = image.detach().float().reshape(-1, *image.shape[-3:])[0]
    return ((image.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).cpu().numpy()


def save_png(image: np.ndarray, path: Path) -> None:
    plt.imsave(path, np.clip(image, 0, 1))


def _gates(downlink: Downlink, snr_db: float, delay_spread_s: float) -> list[float]:
    return [round(float(g), 4) for g in downlink.gate_weights(snr_db, delay_spread_s)]


class EdgeRuntime:
    """Generation with the aligned edge model and JSCC encoding with CALA (the edge node's ``knowledge``)."""

    def __init__(self, world: World, downlink: Downlink, images_dir: Path):
        self.world = world
        self.downlink = downlink
        self.pipe = downlink.aligned_edge(world)
        self.images_dir = images_dir
        self.condition_domain = downlink.condition_domain

    @classmethod
    def load(cls, config: TestbedConfig, images_dir: Path) -> EdgeRuntime:
        torch.set_num_threads(1)
        world = load_world()
        return cls(world, load_downlink(config.edge.knowledge_package or None, world=world), images_dir)

    def prompt(self, template: str) -> str:
        return template.format(metaword=self.downlink.metaword, subject=self.downlink.subject_word)

    @torch.no_grad()
    def generate(self, prompt: str, seed: int) -> torch.Tensor:
        return ldm.generate_latents(self.pipe, [prompt], [seed], **self.downlink.sampling)

    @torch.no_grad()
    def save_reference(self, path: Path, prompt: str, seed: int, latent: torch.Tensor) -> dict:
        """What the user's metrics compare against: the sent latent, its image, and the cloud's image of
        the same prompt (subject word instead of the metaword) and seed."""
        from safetensors.torch import save_file

        cloud_prompt = prompt.replace(self.downlink.metaword, self.downlink.subject_word)
        cloud_latent = ldm.generate_latents(self.world.cloud, [cloud_prompt], [seed], **self.downlink.sampling)
        edge_image = ldm.decode_latents(self.world.vae, latent)
        cloud_image = ldm.decode_latents(self.world.vae, cloud_latent)
        save_file({"latent": latent.contiguous(), "edge_image": edge_image.contiguous(),
                   "cloud_image": cloud_image.contiguous()}, str(path))
        stem = path.stem
        save_png(to_png_array(edge_image), self.images_dir / f"{stem}_edge.png")
        save_png(to_png_array(cloud_image), self.images_dir / f"{stem}_cloud.png")
        return {"cloud_prompt": cloud_prompt}

    @torch.no_grad()
    def encode(self, latent: torch.Tensor, snr_db: float, delay_spread_s: float) -> tuple[np.ndarray, list[float]]:
        symbols = self.downlink.codec.encode(latent, (snr_db, delay_spread_s))
        return symbols_to_numpy(symbols[0]), _gates(self.downlink, snr_db, delay_spread_s)


class UserRuntime:
    """JSCC decoding with CALA gated on a condition, VAE decoding and metrics (the user node's ``knowledge``)."""

    def __init__(self, world: World, downlink: Downlink):
        self.world = world
        self.downlink = downlink
        self.num_symbols = downlink.codec.num_symbols
        self.condition_domain = downlink.condition_domain

    @classmethod
    def load(cls, config: TestbedConfig) -> UserRuntime:
        torch.set_num_threads(1)
        world = load_world()
        return cls(world, load_downlink(config.edge.knowledge_package or None, world=world))

    @torch.no_grad()
    def decode(self, symbols: np.ndarray, noise_var: np.ndarray, snr_db: float,
               delay_spread_s: float) -> tuple[torch.Tensor, list[float]]:
        s, no_eff = unbiased(symbols, noise_var)
        latent = self.downlink.codec.decode(symbols_from_numpy(s, self.num_symbols),
                                            torch.from_numpy(no_eff)[None], (snr_db, delay_spread_s))
        return latent, _gates(self.downlink, snr_db, delay_spread_s)

    @torch.no_grad()
    def to_image(self, latent: torch.Tensor) -> torch.Tensor:
        return ldm.decode_latents(self.world.vae, latent)

    @torch.no_grad()
    def measure(self, latent: torch.Tensor, image: torch.Tensor | None, reference_path: Path) -> dict:
        """Latent PSNR against the sent latent (peak: the package's ``latent_peak``, the range of the latents
        the codec was trained on; packages without one use the sent latent's own range); image PSNR/SSIM
        against the edge's clean image; consistency (feature cosine, label agreement) against the cloud's
        image. Empty without a reference."""
        from safetensors.torch import load_file

        if not Path(reference_path).is_file():
            return {}
        ref = load_file(str(reference_path))
        sent = ref["latent"]
        mse = torch.mean((latent - sent) ** 2).item()
        peak = self.downlink.latent_peak or (sent.max() - sent.min()).item()
        out = {"psnr_latent_db": 10 * np.log10(peak ** 2 / max(mse, 1e-12))}
        if image is not None:
            q = psnr_ssim(image, ref["edge_image"])
            out.update(psnr_image_db=q["psnr_db"], ssim=q["ssim"])
            c = feature_consistency(self.world.features, image, ref["cloud_image"])
            out.update(consistency_cos=c["feature_cosine"], label_agree=c["label_agreement"])
        return out

    def save_image(self, image: torch.Tensor, path: Path) -> None:
        save_png(to_png_array(image), path)

    def save_latent(self, latent: torch.Tensor, path: Path) -> None:
        from safetensors.torch import save_file
        save_file({"latent": latent.contiguous()}, str(path))

    def load_latent(self, path: Path) -> torch.Tensor:
        from safetensors.torch import load_file
        return load_file(str(path))["latent"]
