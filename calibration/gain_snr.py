"""TX gain → SNR: which gain setting gives which SNR over this link, to hit a target SNR over the air.

Method: at each TX gain of a sweep (RX gain fixed), transmit a burst of frames and take the median of
:class:`radio.Receiver`'s data-aided SNR estimates (the project's SNR: per used subcarrier, before
equalisation). A line ``snr_db = offset + slope · tx_gain_db`` is fitted through the points inside
``[min_snr_db, max_snr_db]``: below, frames are lost and the estimate floors; above, the device's EVM
(Pluto ≤ −40 dB) or ADC saturation caps it. The fit's offset, slope and gain range go into the profile
(:meth:`radio.device_profile.DeviceProfile.tx_gain_for_snr` inverts it).

Needs a backend with ``set_gains`` (:class:`radio.backends.PlutoBackend`; :class:`radio.backends.EmulatedBackend`,
whose TX gain scales the burst into the channel so the SNR moves dB for dB).

Tolerances (tests): emulator AWGN with 5 dB SNR at 0 dB TX gain, sweep 0…16 dB: **offset ±0.3 dB,
slope ±0.03 dB/dB**; fake Pluto (path loss 26 dB, 2 codes of noise per rail): **offset within 0.5 dB**
of the SNR computed from the fake's gains, DAC scaling and noise.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from calibration.probe import capture, frame_burst, receive_frames
from radio import FrameConfig
from radio.backends import RadioBackend
from radio.device_profile import DeviceProfile

TOLERANCE_OFFSET_DB = 0.3
TOLERANCE_SLOPE = 0.03


@dataclass
class GainSnrResult:
    """Attributes:
        tx_gain_db: swept TX gains.
        snr_db: median SNR estimate per gain (NaN: no frame decoded).
        frames: frames decoded per gain.
        used: whether each point entered the fit.
        rx_gain_db: the fixed RX gain (NaN if the backend reports none).
        offset_db, slope: the fit ``snr_db = offset_db + slope · tx_gain_db`` (NaN if < 2 points).
    """

    tx_gain_db: list[float]
    snr_db: list[float]
    frames: list[int]
    used: list[bool]
    rx_gain_db: float
    offset_db: float
    slope: float

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def fitted_range_db(self) -> tuple[float, float]:
        gains = [g for g, u in zip(self.tx_gain_db, self.used) if u]
        return (min(gains), max(gains)) if gains else (math.nan, math.nan)

    def update(self, profile: DeviceProfile) -> DeviceProfile:
        if not math.isfinite(self.offset_db):
            raise ValueError("fewer than two gains gave an SNR in the linear range: nothing to store; "
                             "widen --tx-gains-db")
        return replace(profile, gain_snr_offset_db=self.offset_db, gain_snr_slope=self.slope,
                       gain_snr_tx_range_db=self.fitted_range_db,
                       conditions=replace(profile.conditions,
                                          rx_gain_db=self.rx_gain_db if math.isfinite(self.rx_gain_db) else None))

    def plot(self, path: Path) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        g, s, u = np.asarray(self.tx_gain_db), np.asarray(self.snr_db), np.asarray(self.used)
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        ax.plot(g[u], s[u], "o", label="measured (fitted)")
        ax.plot(g[~u], s[~u], "x", color="grey", label="measured (outside the linear range)")
        if math.isfinite(self.offset_db):
            ax.plot(g, self.offset_db + self.slope * g, "r--", lw=1,
                    label=f"fit: {self.offset_db:+.2f} dB + {self.slope:.3f}·TX gain")
        ax.set(xlabel="TX gain (dB)", ylabel="estimated SNR (dB, per used subcarrier)",
               title=f"TX gain → SNR at RX gain {self.rx_gain_db:g} dB")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def measure_gain_snr(backend: RadioBackend, cfg: FrameConfig, tx_gains_db: list[float], *, frames: int = 4,
                     payload_len: int = 240, min_snr_db: float = 3.0, max_snr_db: float = 35.0,
                     seed: int = 0) -> GainSnrResult:
    """Sweep the TX gain and fit the linear part of gain → SNR.

    Args:
        backend: a backend with ``set_gains(tx_gain_db=...)``.
        cfg: numerology of the probe frames (its sample rate must be the backend's).
        tx_gains_db: TX gains to visit, dB.
        frames: frames per burst (one burst per gain).
        min_snr_db, max_snr_db: the linear range: points outside are not fitted.
    """
    if not hasattr(backend, "set_gains"):
        raise ValueError(f"gain→SNR needs a backend with adjustable gains (Pluto, emulator); "
                         f"{type(backend).__name__} has no set_gains")
    burst = frame_burst(cfg, frames, payload_len, gap=400, rng=np.random.default_rng(seed))
    snrs, counts = [], []
    for gain in tx_gains_db:
        backend.set_gains(tx_gain_db=gain)
        decoded = receive_frames(cfg, capture(backend, burst, 2 * burst.size))
        counts.append(len(decoded))
        snrs.append(float(np.median([f.snr_db for f in decoded])) if decoded else math.nan)
    s = np.asarray(snrs)
    used = np.isfinite(s) & (s >= min_snr_db) & (s <= max_snr_db)
    slope = offset = math.nan
    if used.sum() >= 2:
        slope, offset = (float(v) for v in np.polyfit(np.asarray(tx_gains_db, float)[used], s[used], 1))
    return GainSnrResult(tx_gain_db=[float(g) for g in tx_gains_db], snr_db=snrs, frames=counts,
                         used=used.tolist(), rx_gain_db=float(backend.gains.get("rx_gain_db", math.nan)),
                         offset_db=offset, slope=slope)
