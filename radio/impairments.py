"""Hardware impairments of an SDR link, each switched on/off with a value: :class:`Impairments` + functions.

Each function is pure (arrays in, arrays out) and models one effect on complex baseband samples at the
frame's sample rate ``fs``; the carrier (CFO, phase noise), the noise and the sample clock have their own
modules (:mod:`radio.carrier`, :mod:`radio.noise`, :mod:`radio.block_convolution`):

=====================  ==========================================================================
impairment             model
=====================  ==========================================================================
crystals               one reference per device (the Pluto derives LO and sample clock from one
                       40 MHz crystal): TX at ``(1 + tx_ppm·1e-6)``, RX at ``(1 + rx_ppm·1e-6)``
CFO                    ``y[n] = x[n] · exp(j 2π cfo_hz n / fs)``, ``cfo_hz = (tx_ppm - rx_ppm)·1e-6·f_c``
start offset           ``U{0..start_offset_max_samples}`` noise-only samples before the signal
sample-clock offset    RX clock at ``fs (1 + ppm·1e-6)`` relative to TX, ``1 + ppm·1e-6 = (1 + rx)/(1 + tx)``:
                       ``y[n] = x(n / (1 + ppm·1e-6))``, Kaiser-windowed sinc interpolation (32 taps, Farrow)
DC offset              constant ``c`` added, ``|c|² = 10^(dbc/10) ×`` nominal received power, random phase
IQ imbalance           ``y = K1 x + K2 x*``, ``K1 = (1 + g e^{-jφ})/2``, ``K2 = (1 - g e^{jφ})/2``,
                       ``g = 10^(amplitude_db/20)``, ``φ = phase_deg``
phase noise            Wiener: ``φ[n] = Σ N(0, 2π·linewidth_hz/fs)``, ``y = x·e^{jφ}``
quantisation           per rail: gain so the nominal power sits ``backoff_db`` below full scale (±1),
                       round to ``bits`` (two's complement codes ``-2^(b-1) .. 2^(b-1)-1``), saturate,
                       undo the gain. Applied at the DAC (TX) and at the ADC (RX).
=====================  ==========================================================================

The defaults are those of a pair of ADALM-Plutos at 2.4 GHz; ``docs/emulator.md`` gives the source of each
value and says which are assumptions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from common.tomlconfig import ConfigError, TomlConfig

MAX_PPM = 1000.0
"""Largest crystal or clock offset accepted, ppm."""
SWITCHES = ("cfo", "start_offset", "sample_clock", "dc_offset", "iq_imbalance", "phase_noise", "quantization")
"""The on/off fields of :class:`Impairments`."""


@dataclass
class Impairments(TomlConfig):
    """Which hardware impairments the emulator applies, and how strongly. All off by default.

    Attributes:
        cfo: carrier frequency offset on: the TX and RX local oscillators differ by
            ``(tx_crystal_ppm - rx_crystal_ppm)·1e-6·f_c``.
        start_offset: random number of leading noise-only samples on, drawn in ``0..start_offset_max_samples``.
        sample_clock: sample-clock offset on: the RX clock runs ``(1 + rx)/(1 + tx) - 1`` off the TX clock.
        tx_crystal_ppm, rx_crystal_ppm: frequency error of each device's reference crystal, ppm. The Pluto
            derives its LO and its sample clock from this one crystal, so both offsets follow from the two
            values (CFO ≈ tx - rx, sample clock ≈ rx - tx).
        cfo_ppm: optional override of the carrier offset in ppm of ``f_c`` (RX = TX·exp(+j2π·ppm·1e-6·f_c·t));
            None (default) derives it from the crystals. Kept so older configs load; set it only to study
            one effect alone.
        sample_clock_ppm: optional override of the RX sample-clock offset in ppm; None derives it from the
            crystals.
        dc_offset: DC offset on; ``dc_offset_dbc`` relative to the nominal received power.
        iq_imbalance: RX IQ imbalance on; amplitude ``iq_amplitude_db`` and phase ``iq_phase_deg``.
        phase_noise: Wiener phase noise on; ``phase_noise_linewidth_hz`` (3-dB linewidth of the TX-RX LO pair).
        quantization: DAC and ADC quantisation with saturation on; ``quantization_bits``; ``dac_backoff_db``:
            unit TX power per rail below full scale; ``adc_backoff_db``: the call's received power (signal
            through this channel realisation + noise + DC, i.e. an ideal slow AGC) per rail below full scale.
            Small or negative values provoke saturation.
    """

    cfo: bool = False
    start_offset: bool = False
    start_offset_max_samples: int = 2000
    sample_clock: bool = False
    tx_crystal_ppm: float = 5.0
    rx_crystal_ppm: float = -5.0
    cfo_ppm: float | None = None
    sample_clock_ppm: float | None = None
    dc_offset: bool = False
    dc_offset_dbc: float = -25.0
    iq_imbalance: bool = False
    iq_amplitude_db: float = 0.017  # 0.2 % gain error
    iq_phase_deg: float = 0.2
    phase_noise: bool = False
    phase_noise_linewidth_hz: float = 1.0
    quantization: bool = False
    quantization_bits: int = 12
    dac_backoff_db: float = 26.0  # the default frame's 19.6 dB rail peak-to-RMS + the customary peak at 2^14 of 2^15
    adc_backoff_db: float = 20.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in ("tx_crystal_ppm", "rx_crystal_ppm", "cfo_ppm", "sample_clock_ppm", "dc_offset_dbc",
                     "iq_amplitude_db", "iq_phase_deg", "phase_noise_linewidth_hz", "dac_backoff_db",
                     "adc_backoff_db"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"Impairments.{name} must be finite, got {value}")
        for name in ("tx_crystal_ppm", "rx_crystal_ppm", "cfo_ppm", "sample_clock_ppm"):
            value = getattr(self, name)
            if value is not None and abs(value) > MAX_PPM:
                raise ConfigError(f"{name} must be within ±{MAX_PPM:g}, got {value}")
        if self.start_offset_max_samples < 0:
            raise ConfigError(f"start_offset_max_samples must be ≥ 0, got {self.start_offset_max_samples}")
        if abs(self.iq_phase_deg) >= 45:
            raise ConfigError(f"iq_phase_deg must be within ±45, got {self.iq_phase_deg}")
        if self.phase_noise_linewidth_hz < 0:
            raise ConfigError(f"phase_noise_linewidth_hz must be ≥ 0, got {self.phase_noise_linewidth_hz}")
        if not 2 <= self.quantization_bits <= 24:
            raise ConfigError(f"quantization_bits must be in 2..24, got {self.quantization_bits}")

    @property
    def carrier_offset_ppm(self) -> float:
        """CFO in ppm of the carrier, RX = TX·exp(+j2π·ppm·1e-6·f_c·t): ``cfo_ppm`` if set, else tx - rx."""
        return self.cfo_ppm if self.cfo_ppm is not None else self.tx_crystal_ppm - self.rx_crystal_ppm

    @property
    def clock_offset_ppm(self) -> float:
        """RX sample clock at ``fs (1 + ppm·1e-6)`` against the TX clock: ``sample_clock_ppm`` if set, else
        ``((1 + rx·1e-6) / (1 + tx·1e-6) - 1)·1e6``."""
        if self.sample_clock_ppm is not None:
            return self.sample_clock_ppm
        return ((1 + self.rx_crystal_ppm * 1e-6) / (1 + self.tx_crystal_ppm * 1e-6) - 1) * 1e6

    @classmethod
    def typical(cls) -> Impairments:
        """Every impairment on at the defaults: a pair of ADALM-Plutos at 2.4 GHz (the benchmark setting)."""
        return cls(**{s: True for s in SWITCHES})

    def only(self, name: str) -> Impairments:
        """A copy with every impairment off except ``name`` (one of :data:`SWITCHES`)."""
        if name not in SWITCHES:
            raise ConfigError(f"unknown impairment {name!r}; known: {list(SWITCHES)}")
        return self.replace(**{s: s == name for s in SWITCHES})


def quantize(x: np.ndarray, bits: int, backoff_db: float, reference_power: float,
             out: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Quantise both rails of ``x`` (``[n]`` complex) to ``bits`` with saturation.

    The gain puts ``reference_power / 2`` (nominal power per rail) ``backoff_db`` below the full-scale
    power 1. Returns the de-scaled samples (complex64, same units as ``x``; written to ``out`` when given,
    which may be ``x`` itself) and the fraction of rail samples that saturated.
    """
    gain = math.sqrt(10 ** (-backoff_db / 10) / (reference_power / 2))
    scale = gain * 2 ** (bits - 1)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    rails = np.multiply(np.asarray(x, np.complex64).view(np.float32), np.float32(scale),
                        out=None if out is None else out.view(np.float32))
    np.rint(rails, out=rails)
    clipped = 0.0
    if rails.size and (rails.min() < lo or rails.max() > hi):
        clipped = float(np.count_nonzero(np.abs(rails + np.float32(0.5)) > 2 ** (bits - 1))) / rails.size
        np.clip(rails, lo, hi, out=rails)
    rails *= np.float32(1 / scale)
    return rails.view(np.complex64), clipped


def iq_imbalance(x: np.ndarray, amplitude_db: float, phase_deg: float,
                 scratch: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Apply RX IQ imbalance to ``x`` (``[n]`` complex64) in place; returns it and the image rejection ratio
    ``|K1|²/|K2|²`` in dB. ``scratch``: optional float32 array of ≥ ``n`` items to work in.

    ``K1 x + K2 x*`` with the ``K1, K2`` of the module table leaves I alone and makes
    ``Q' = g (cos φ · Q - sin φ · I)``: two passes over the Q rail.
    """
    g = 10 ** (amplitude_db / 20)
    phi = math.radians(phase_deg)
    k1 = (1 + g * np.exp(-1j * phi)) / 2
    k2 = (1 - g * np.exp(1j * phi)) / 2
    irr_db = 10 * math.log10(abs(k1) ** 2 / abs(k2) ** 2) if abs(k2) > 0 else math.inf
    rails = x.view(np.float32).reshape(-1, 2)
    rails[:, 1] *= np.float32(g * math.cos(phi))
    leak = np.multiply(rails[:, 0], np.float32(g * math.sin(phi)), out=None if scratch is None else scratch[:len(x)])
    rails[:, 1] -= leak
    return x, irr_db
