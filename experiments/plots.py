"""Figures of a run, drawn from its JSON-lines rows (matplotlib, Agg; PNG + SVG next to the JSON).

Each function takes the rows it plots and the output folder, writes ``<name>.png`` and ``<name>.svg``
and returns the PNG path, or ``None`` when the rows hold nothing to plot.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig: plt.Figure, out_dir: Path, name: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{name}.png"
    fig.savefig(png, dpi=120, bbox_inches="tight")
    fig.savefig(out_dir / f"{name}.svg", bbox_inches="tight")
    plt.close(fig)
    return png


def _series(rows: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([r[key] if isinstance(r.get(key), (int, float)) else np.nan for r in rows], dtype=float)


def psnr_over_time(rows: Sequence[dict[str, Any]], out_dir: Path) -> Path | None:
    """PSNR (latent and image) per frame, with the decoder's condition source marked."""
    rows = [r for r in rows if "frame_id" in r]
    if not rows:
        return None
    frame = _series(rows, "frame_id")
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for key, label in (("psnr_latent_db", "latent PSNR"), ("psnr_image_db", "image PSNR"),
                       ("psnr_latent_header_db", "latent PSNR, header condition")):
        y = _series(rows, key)
        if np.isfinite(y).any():
            ax.plot(frame, y, marker=".", label=label)
    ax.set_xlabel("frame id")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out_dir, "psnr_over_time")


def estimated_vs_true(rows: Sequence[dict[str, Any]], out_dir: Path) -> Path | None:
    """Receiver estimates against the emulator's truth: SNR (dB) and RMS delay spread (ns)."""
    snr_t, snr_e = _series(rows, "snr_db_true"), _series(rows, "snr_db_est")
    ds_t, ds_e = _series(rows, "delay_spread_s_true") * 1e9, _series(rows, "delay_spread_s_est") * 1e9
    if not (np.isfinite(snr_t) & np.isfinite(snr_e)).any():
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.5))
    for ax, t, e, unit in ((a, snr_t, snr_e, "SNR (dB)"), (b, ds_t, ds_e, "RMS delay spread (ns)")):
        ok = np.isfinite(t) & np.isfinite(e)
        ax.scatter(t[ok], e[ok], s=10)
        if ok.any():
            lo, hi = np.nanmin(np.r_[t[ok], e[ok]]), np.nanmax(np.r_[t[ok], e[ok]])
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"true {unit}")
        ax.set_ylabel(f"estimated {unit}")
        ax.grid(alpha=0.3)
    return _save(fig, out_dir, "estimated_vs_true")


def constellation(symbols: np.ndarray, out_dir: Path, name: str = "constellation") -> Path | None:
    """Equalised JSCC symbols of one frame in the complex plane (continuous, not a QAM grid)."""
    symbols = np.asarray(symbols).ravel()
    if symbols.size == 0:
        return None
    fig, ax = plt.subplots(figsize=(3.6, 3.6))
    ax.scatter(symbols.real, symbols.imag, s=4, alpha=0.6)
    ax.set_aspect("equal")
    ax.set_xlabel("I")
    ax.set_ylabel("Q")
    ax.grid(alpha=0.3)
    return _save(fig, out_dir, name)


def power_delay_profile(cir: np.ndarray, sample_rate_hz: float, out_dir: Path, name: str = "pdp") -> Path | None:
    """|h[n]|² in dB of an estimated impulse response (IDFT of the channel estimate on the used subcarriers),
    delays in ns from the receiver's FFT window start, which sits inside the cyclic prefix before the first path."""
    cir = np.asarray(cir).ravel()
    if cir.size == 0:
        return None
    p = np.abs(cir) ** 2
    p_db = 10 * np.log10(p / max(p.max(), 1e-30) + 1e-12)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.stem(np.arange(cir.size) / sample_rate_hz * 1e9, p_db, bottom=-40)
    ax.set_ylim(-40, 3)
    ax.set_xlabel("delay from the FFT window start (ns)")
    ax.set_ylabel("power (dB, rel. peak)")
    ax.grid(alpha=0.3)
    return _save(fig, out_dir, name)


def image_grid(rows_of_images: Sequence[tuple[str, Sequence[np.ndarray]]], out_dir: Path,
               name: str = "image_grid") -> Path | None:
    """Rows of images (each HxWx3 in [0,1], or None for a gap) with a label per row, e.g. cloud / edge sent /
    received; column c of every row is the same frame."""
    rows_of_images = [(label, list(imgs)) for label, imgs in rows_of_images
                      if any(i is not None for i in imgs)]
    if not rows_of_images:
        return None
    ncol = max(len(imgs) for _, imgs in rows_of_images)
    fig, axes = plt.subplots(len(rows_of_images), ncol, figsize=(1.2 * ncol + 1, 1.3 * len(rows_of_images)),
                             squeeze=False)
    for r, (label, imgs) in enumerate(rows_of_images):
        for c in range(ncol):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(imgs) and imgs[c] is not None:
                ax.imshow(np.clip(imgs[c], 0, 1), interpolation="nearest")
        axes[r][0].set_title(label, fontsize=8, loc="left")
    return _save(fig, out_dir, name)
