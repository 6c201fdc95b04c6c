"""A light stand-in for the dekag runtimes, so link tests exercise radio + feedback + nodes in seconds.

The "latent" is 256 Gaussian numbers; the "codec" maps them to 128 unit-power complex symbols and back,
so the user's latent PSNR is the symbol SNR after the real transmitter, channel and receiver. Like the real
codec it refuses a condition outside the domain (delay spread ≤ 0, non-finite SNR), so the nodes must map
every reported condition through ``condition_domain`` first.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dekag.jscc.condition import Condition
from dekag.jscc.condition_domain import ConditionDomain


class StubKnowledge:
    """Args: generate_delay_s: time each ``generate`` takes (stands in for the diffusion model)."""

    num_symbols = 128
    condition_domain = ConditionDomain(resolution_s=1 / 2.88e6)

    def __init__(self, generate_delay_s: float = 0.0):
        self.generate_delay_s = generate_delay_s

    def prompt(self, template: str) -> str:
        return template.format(metaword="<meta>", subject="seven")

    def generate(self, prompt: str, seed: int) -> np.ndarray:
        time.sleep(self.generate_delay_s)
        return np.random.default_rng(seed).standard_normal(2 * self.num_symbols).astype(np.float32)

    def save_reference(self, path: Path, prompt: str, seed: int, latent: np.ndarray) -> dict:
        np.save(Path(path).with_suffix(".npy"), latent)
        return {}

    def encode(self, latent, snr_db: float, delay_spread_s: float):
        Condition(snr_db, delay_spread_s).normalised(1)   # raises outside the domain, as the codec does
        s = (latent[0::2] + 1j * latent[1::2]).astype(np.complex64)
        return s / np.sqrt(np.mean(np.abs(s) ** 2)), [snr_db / 20, delay_spread_s * 1e6]

    def decode(self, symbols, noise_var, snr_db: float, delay_spread_s: float):
        Condition(snr_db, delay_spread_s).normalised(1)
        out = np.empty(2 * symbols.size, np.float32)
        out[0::2], out[1::2] = symbols.real, symbols.imag
        return out, [snr_db / 20, delay_spread_s * 1e6]

    def to_image(self, latent) -> np.ndarray:
        return np.full((8, 8, 3), 0.5)

    def measure(self, latent, image, reference_path) -> dict:
        ref = Path(reference_path).with_suffix(".npy")
        if not ref.is_file():
            return {}
        sent = np.load(ref)
        sent = sent / np.sqrt(2 * np.mean(sent ** 2))  # as encode() scales it
        return {"psnr_latent_db": float(10 * np.log10(np.mean(sent ** 2) / np.mean((latent - sent) ** 2)))}

    def save_latent(self, latent, path) -> None:
        np.save(Path(path).with_suffix(".npy"), latent)

    def save_image(self, image, path) -> None:
        import matplotlib.pyplot as plt
        plt.imsave(path, image)
