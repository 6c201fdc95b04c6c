"""Test-only numpy channel for receiver tests: multipath with fractional delays, CFO, sample-clock
offset, AWGN at a given per-used-subcarrier SNR, leading/trailing noise."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import resample

import radio


@dataclass
class Truth:
    start: int              # index of the frame's first sample (first path) in the output
    snr_db: float           # realised mean per-used-subcarrier Es/N0
    delay_spread_s: float   # RMS delay spread of the taps
    cfo_hz: float


def apply_channel(iq: np.ndarray, cfg: radio.FrameConfig, rng: np.random.Generator, snr_db: float = 30.0,
                  taps: list[tuple[float, complex]] | None = None, cfo_subcarriers: float = 0.0,
                  lead: int = 500, tail: int = 500, sco_ppm: float = 0.0, scale: float = 1.0
                  ) -> tuple[np.ndarray, Truth]:
    """Pass ``iq`` through the channel. ``taps``: (delay in samples ≥ 0, complex gain) pairs;
    default a single unit tap. Noise is set from the *nominal* SNR (unit-power taps sum)."""
    taps = taps or [(0.0, 1.0)]
    delays = np.array([t[0] for t in taps], float)
    gains = np.array([t[1] for t in taps], complex)
    x = np.concatenate([np.zeros(lead), iq, np.zeros(tail + int(np.ceil(delays.max())) + 8)])
    f = np.fft.fftfreq(x.size)
    x = np.fft.ifft(np.fft.fft(x) * (gains[None, :] * np.exp(-2j * np.pi * f[:, None] * delays[None, :])).sum(1))
    if sco_ppm:
        x = resample(x, int(round(x.size * (1 + sco_ppm * 1e-6))))
    n = np.arange(x.size)
    x = x * np.exp(2j * np.pi * cfo_subcarriers * n / cfg.fft_size)
    n_fft, u = cfg.fft_size, cfg.num_used_subcarriers
    sigma2 = n_fft / (u * 10 ** (snr_db / 10))
    x = x + np.sqrt(sigma2 / 2) * (rng.normal(size=x.size) + 1j * rng.normal(size=x.size))
    k = radio.ofdm.ResourceGrid(cfg).subcarriers
    h = (gains[None, :] * np.exp(-2j * np.pi * np.outer(k, delays) / n_fft)).sum(1)
    realised = 10 * np.log10(np.mean(np.abs(h) ** 2) * n_fft / (u * sigma2))
    p = np.abs(gains) ** 2
    mean = (p * delays).sum() / p.sum()
    ds = np.sqrt(max((p * delays ** 2).sum() / p.sum() - mean ** 2, 0.0)) / cfg.sample_rate_hz
    truth = Truth(start=lead + int(round(delays.min())), snr_db=float(realised), delay_spread_s=float(ds),
                  cfo_hz=cfo_subcarriers * cfg.subcarrier_spacing_hz)
    return (scale * x).astype(np.complex64), truth


def random_symbols(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power complex Gaussian symbols (like JSCC output: continuous, not a constellation)."""
    return (rng.normal(size=n) + 1j * rng.normal(size=n)) / np.sqrt(2)
