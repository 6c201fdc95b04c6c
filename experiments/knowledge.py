"""The ``dekag`` side of the nodes: what the edge generates and encodes, what the user decodes and measures.

Both runtimes load the models of ``[models]`` (:func:`dekag.model_set.load_model_set`: the miniature world,
or local diffusers folders of any edge and cloud, UNet or transformer, through the same code path) and the
downlink knowledge package (metaword + G-LoRA + JSCC codec with CALA, :mod:`dekag.downlink`), verified
against the edge model it was made for.

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
from dekag.knowledge_package import KnowledgePackageError  # noqa: E402
from dekag.metrics import consistency, psnr_ssim  # noqa: E402
from dekag.model_set import ModelSet, load_model_set  # noqa: E402
from experiments.config import TestbedConfig  # noqa: E402
from experiments.frame_link import unbiased  # noqa: E402


def to_png_array(image: torch.Tensor) -> np.ndarray:
    """Image [3, H, W] (or [1, 3, H, W]) in [-1, 1] → H×W×3 float in [0, 1]."""
    image = image.detach().float().reshape(-1, *image.shape[-3:])[0]
    return ((image.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).cpu().numpy()


def save_png(image: np.ndarray, path: Path) -> None:
    plt.imsave(path, np.clip(image, 0, 1))


def _load(config: TestbedConfig) -> tuple[ModelSet, Downlink]:
    """The ``[models]`` and the verified knowledge package, with the codec's latent shape checked."""
    torch.set_num_threads(1)
    m = config.models
    models = load_model_set(m.edge_dir, m.cloud_dir, m.vae_dir, m.feature_model_dir, device=m.device)
    downlink = load_downlink(config.edge.knowledge_package or None, expected_base=models.edge_base)
    codec = downlink.codec.config
    shape = (codec.latent_channels, codec.latent_height, codec.latent_width)
    if shape != models.latent_shape:
        raise KnowledgePackageError(f"{downlink.package.folder}: the codec takes latents {shape} but the edge in "
                                    f"[models] makes {models.latent_shape}; use a package made for this edge")
    return models, downlink


def _gates(downlink: Downlink, snr_db: float, delay_spread_s: float) -> list[float]:
    return [round(float(g), 4) for g in downlink.gate_weights(snr_db, delay_spread_s)]


DIGITAL_CODEC = Path(__file__).resolve().parents[1] / "dekag" / "miniature" / "checkpoints" \
    / "digital_codec.safetensors"
"""The digital baseline fitted on the miniature world's aligned-edge latents (S_EG training split)."""


class FrameCodec:
    """The codec the frames carry (``edge.codec``): the package's JSCC + CALA, or the digital baseline.

    Both have ``encode(latent, condition)`` / ``decode(symbols, noise_var, condition)`` and ``num_symbols``. The
    digital codec picks its MCS from the condition, so it is fed the condition exactly as the frame header
    carries it (0.25 dB / 1 ns steps), which is what the user decodes with.
    """

    def __init__(self, config: TestbedConfig, downlink: Downlink):
        self.kind = config.edge.codec
        self.downlink = downlink
        if self.kind == "digital":
            from dekag.digital import DigitalCodec
            self.codec = DigitalCodec.load(config.edge.digital_codec or DIGITAL_CODEC)
            if self.codec.num_symbols != downlink.codec.num_symbols:
                raise ValueError(f"the digital codec sends {self.codec.num_symbols} symbols, the package's JSCC "
                                 f"codec {downlink.codec.num_symbols}: fit one for this latent shape")
        else:
            self.codec = downlink.codec
        self.num_symbols = self.codec.num_symbols

    def condition(self, snr_db: float, delay_spread_s: float) -> tuple[float, float]:
        if self.kind == "digital":
            from experiments.closed_loop import header_quantised
            return header_quantised((snr_db, delay_spread_s))
        return (snr_db, delay_spread_s)

    def gates(self, snr_db: float, delay_spread_s: float) -> list[float]:
        """CALA's gates (JSCC) or ``[MCS index]`` (digital) at this condition."""
        if self.kind == "digital":
            return [float(self.codec.mcs_for(self.condition(snr_db, delay_spread_s))[0].index)]
        return _gates(self.downlink, snr_db, delay_spread_s)


class EdgeRuntime:
    """Generation with the aligned edge model and JSCC encoding with CALA (the edge node's ``knowledge``)."""

    def __init__(self, models: ModelSet, downlink: Downlink, images_dir: Path, codec: FrameCodec | None = None):
        self.models = models
        self.downlink = downlink
        self.codec = codec
        self.pipe = downlink.aligned_edge(models)
        self.images_dir = images_dir
        self.condition_domain = downlink.condition_domain

    @classmethod
    def load(cls, config: TestbedConfig, images_dir: Path) -> EdgeRuntime:
        models, downlink = _load(config)
        return cls(models, downlink, images_dir, FrameCodec(config, downlink))

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
        cloud = self.models.cloud
        cloud_latent = ldm.generate_latents(cloud, [cloud_prompt], [seed], **self.downlink.sampling)
        edge_image = ldm.decode_latents(self.models.vae, latent)
        cloud_image = ldm.decode_latents(cloud.vae, cloud_latent)
        save_file({"latent": latent.contiguous(), "edge_image": edge_image.contiguous(),
                   "cloud_image": cloud_image.contiguous()}, str(path))
        stem = path.stem
        save_png(to_png_array(edge_image), self.images_dir / f"{stem}_edge.png")
        save_png(to_png_array(cloud_image), self.images_dir / f"{stem}_cloud.png")
        return {"cloud_prompt": cloud_prompt}

    @torch.no_grad()
    def encode(self, latent: torch.Tensor, snr_db: float, delay_spread_s: float) -> tuple[np.ndarray, list[float]]:
        """Symbols of ``latent`` at this condition and the gates (CALA) or MCS index (digital) used."""
        if self.codec is None or self.codec.kind == "jscc":
            symbols = self.downlink.codec.encode(latent, (snr_db, delay_spread_s))
            return symbols_to_numpy(symbols[0]), _gates(self.downlink, snr_db, delay_spread_s)
        condition = self.codec.condition(snr_db, delay_spread_s)
        return symbols_to_numpy(self.codec.codec.encode(latent, condition)[0]), self.codec.gates(*condition)


class UserRuntime:
    """JSCC decoding with CALA gated on a condition, VAE decoding and metrics (the user node's ``knowledge``)."""

    def __init__(self, models: ModelSet, downlink: Downlink, codec: FrameCodec | None = None):
        self.models = models
        self.downlink = downlink
        self.codec = codec
        self.num_symbols = downlink.codec.num_symbols
        self.condition_domain = downlink.condition_domain
        self.centre = None
        if models.real is not None:
            images = models.real[0]
            self.centre = torch.cat([models.features(images[i:i + 512]) for i in range(0, len(images), 512)]).mean(0)

    @classmethod
    def load(cls, config: TestbedConfig) -> UserRuntime:
        models, downlink = _load(config)
        return cls(models, downlink, FrameCodec(config, downlink))

    @torch.no_grad()
    def decode(self, symbols: np.ndarray, noise_var: np.ndarray, snr_db: float,
               delay_spread_s: float) -> tuple[torch.Tensor, list[float]]:
        s, no_eff = unbiased(symbols, noise_var)
        if self.codec is None or self.codec.kind == "jscc":
            latent = self.downlink.codec.decode(symbols_from_numpy(s, self.num_symbols),
                                                torch.from_numpy(no_eff)[None], (snr_db, delay_spread_s))
            return latent, _gates(self.downlink, snr_db, delay_spread_s)
        latent = self.codec.codec.decode(symbols_from_numpy(s, self.num_symbols), torch.from_numpy(no_eff)[None],
                                         (snr_db, delay_spread_s))
        return latent, self.codec.gates(snr_db, delay_spread_s)

    @torch.no_grad()
    def to_image(self, latent: torch.Tensor) -> torch.Tensor:
        return ldm.decode_latents(self.models.vae, latent)

    @torch.no_grad()
    def measure(self, latent: torch.Tensor, image: torch.Tensor | None, reference_path: Path) -> dict:
        """Latent PSNR against the sent latent (peak: the package's ``latent_peak``, the range of the latents
        the codec was trained on; packages without one use the sent latent's own range); image PSNR/SSIM
        against the edge's clean image; consistency against the cloud's image: feature cosine, centred cosine
        (features minus the mean feature of real images, where the models have real images) and label
        agreement (where they have a classifier). Empty without a reference."""
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
            cloud = ref["cloud_image"]
            if cloud.shape != image.shape:
                cloud = torch.nn.functional.interpolate(cloud, size=image.shape[-2:], mode="bilinear")
            c = consistency(self.models.features, image, cloud, self.centre, self.models.classify)
            out["consistency_cos"] = c["feature_cosine"]
            if "centred_cosine" in c:
                out["consistency_centred"] = c["centred_cosine"]
            if "label_agreement" in c:
                out["label_agree"] = c["label_agreement"]
        return out

    def save_image(self, image: torch.Tensor, path: Path) -> None:
        save_png(to_png_array(image), path)

    def save_latent(self, latent: torch.Tensor, path: Path) -> None:
        from safetensors.torch import save_file
        save_file({"latent": latent.contiguous()}, str(path))

    def load_latent(self, path: Path) -> torch.Tensor:
        from safetensors.torch import load_file
        return load_file(str(path))["latent"]
