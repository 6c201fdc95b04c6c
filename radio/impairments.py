"""Hardware impairments of an SDR link, each switched on/off with a value: :class:`Impairments` + functions.

Each function is pure (arrays in, arrays out; randomness from the ``numpy.random.Generator`` passed in) and
models one effect on complex baseband samples at the frame's sample rate ``fs``:

=====================  ==========================================================================
impairment             model
=====================  ==========================================================================
CFO                    ``y[n] = x[n] · exp(j 2π cfo_hz n / fs)``, ``cfo_hz = cfo_ppm · 1e-6 · f_c``
start offset           ``U{0..start_offset_max_samples}`` noise-only samples before the signal
sample-clock offset    RX clock at ``fs (1 + ppm·1e-6)``: ``y[n] = x(n / (1 + ppm·1e-6))``, Kaiser-windowed
                       sinc interpolation (32 taps, Farrow structure)
DC offset              constant ``c`` added, ``|c|² = 10^(dbc/10) ×`` nominal received power, random phase
IQ imbalance           ``y = K1 x + K2 x*``, ``K1 = (1 + g e^{-jφ})/2``, ``K2 = (1 - g e^{jφ})/2``,
                       ``g = 10^(amplitude_db/20)``, ``φ = phase_deg``
phase noise            Wiener: ``φ[n] = Σ N(0, 2π·linewidth_hz/fs)``, ``y = x·e^{jφ}``
quantisation           per rail: gain so the nominal power sits ``backoff_db`` below full scale (±1),
                       round to ``bits`` (two's complement codes ``-2^(b-1) .. 2^(b-1)-1``), saturate,
                       undo the gain. Applied at the DAC (TX) and at the ADC (RX).
=====================  ==========================================================================
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft

from common.tomlconfig import ConfigError, TomlConfig


@dataclass
class Impairments(TomlConfig):
    """Which hardware impairments the emulator applies, and how strongly. All off by default.

    Attributes:
        cfo: carrier frequency offset on; ``cfo_ppm`` of the carrier frequency (Pluto TCXO: ±25 ppm).
        start_offset: random number of leading noise-only samples on, drawn in ``0..start_offset_max_samples``.
        sample_clock: sample-clock offset on; ``sample_clock_ppm``.
        dc_offset: DC offset on; ``dc_offset_dbc`` relative to the nominal received power.
        iq_imbalance: RX IQ imbalance on; amplitude ``iq_amplitude_db`` and phase ``iq_phase_deg``.
        phase_noise: Wiener phase noise on; ``phase_noise_linewidth_hz`` (3-dB linewidth of the LO).
        quantization: DAC and ADC quantisation with saturation on; ``quantization_bits``; ``dac_backoff_db``:
            unit TX power per rail below full scale; ``adc_backoff_db``: the call's received power (signal
            through this channel realisation + noise + DC, i.e. an ideal slow AGC) per rail below full scale.
            Small or negative values provoke saturation.
    """

    cfo: bool = False
    cfo_ppm: float = 10.0
    start_offset: bool = False
    start_offset_max_samples: int = 2000
    sample_clock: bool = False
    sample_clock_ppm: float = 10.0
    dc_offset: bool = False
    dc_offset_dbc: float = -25.0
    iq_imbalance: bool = False
    iq_amplitude_db: float = 0.2
    iq_phase_deg: float = 1.0
    phase_noise: bool = False
    phase_noise_linewidth_hz: float = 10.0
    quantization: bool = False
    quantization_bits: int = 12
    dac_backoff_db: float = 20.0  # the default frame's rail peak-to-RMS is 19.6 dB (preamble)
    adc_backoff_db: float = 20.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name in ("cfo_ppm", "sample_clock_ppm", "dc_offset_dbc", "iq_amplitude_db", "iq_phase_deg",
                     "phase_noise_linewidth_hz", "dac_backoff_db", "adc_backoff_db"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"Impairments.{name} must be finite, got {getattr(self, name)}")
        if abs(self.cfo_ppm) > 1000:
            raise ConfigError(f"cfo_ppm must be within ±1000, got {self.cfo_ppm}")
        if abs(self.sample_clock_ppm) > 1000:
            raise ConfigError(f"sample_clock_ppm must be within ±1000, got {self.sample_clock_ppm}")
        if self.start_offset_max_samples < 0:
            raise ConfigError(f"start_offset_max_samples must be ≥ 0, got {self.start_offset_max_samples}")
        if abs(self.iq_phase_deg) >= 45:
            raise ConfigError(f"iq_phase_deg must be within ±45, got {self.iq_phase_deg}")
        if self.phase_noise_linewidth_hz < 0:
            raise ConfigError(f"phase_noise_linewidth_hz must be ≥ 0, got {self.phase_noise_linewidth_hz}")
        if not 2 <= self.quantization_bits <= 24:
            raise ConfigError(f"quantization_bits must be in 2..24, got {self.quantization_bits}")

    @classmethod
    def typical(cls) -> Impairments:
        """Every impairment on at values typical of an ADALM-Pluto at 2.4 GHz (the benchmark setting)."""
        return cls(cfo=True, start_offset=True, sample_clock=True, dc_offset=True, iq_imbalance=True,
                   phase_noise=True, quantization=True)

    def only(self, name: str) -> Impairments:
        """A copy with every impairment off except ``name`` (one of the on/off fields)."""
        switches = ("cfo", "start_offset", "sample_clock", "dc_offset", "iq_imbalance", "phase_noise",
                    "quantization")
        if name not in switches:
            raise ConfigError(f"unknown impairment {name!r}; known: {list(switches)}")
        values = self.to_dict()
        values.update({s: s == name for s in switches})
        return Impairments.from_dict(values)


def quantize(x: np.ndarray, bits: int, backoff_db: float, reference_power: float) -> tuple[np.ndarray, float]:
    """Quantise both rails to ``bits`` with saturation.

    The gain puts ``reference_power / 2`` (nominal power per rail) ``backoff_db`` below the full-scale
    power 1. Returns the de-scaled samples (same units as ``x``) and the fraction of rail samples that
    saturated.
    """
    gain = math.sqrt(10 ** (-backoff_db / 10) / (reference_power / 2))
    scale = gain * 2 ** (bits - 1)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    rails = np.stack([x.real, x.imag]) * scale
    codes = np.round(rails)
    clipped = float(np.mean((codes < lo) | (codes > hi))) if x.size else 0.0
    codes = np.clip(codes, lo, hi)
    return (codes[0] + 1j * codes[1]).astype(np.complex64) / np.float32(scale), clipped


def resample_clock(x: np.ndarray, ppm: float) -> np.ndarray:
    """Samples ``x`` (at ``fs``) as a receiver whose clock runs at ``fs (1 + ppm·1e-6)``.

    Output sample ``n`` is ``x`` interpolated at ``t = n / (1 + ppm·1e-6)`` with a 32-tap Kaiser-windowed
    sinc whose taps are a degree-6 polynomial in the fractional delay (Farrow structure,
    :func:`_farrow_coefficients`): seven fixed FIR filters (one FFT, one batched inverse FFT), then Horner's
    rule per output sample. The output
    covers ``t ≤ len(x) - 1``; interpolation error −91 dB for a tone at 0.3 fs, −80 dB at the edge of the
    used band (0.375 fs).
    """
    coeffs = _farrow_coefficients()  # [degree + 1, taps]: tap j is lag j - half + 1
    half = coeffs.shape[1] // 2
    ratio = 1.0 + ppm * 1e-6
    n_out = int(math.floor((len(x) - 1) * ratio)) + 1
    padded = np.concatenate([np.zeros(half, np.complex64), x.astype(np.complex64), np.zeros(half + 1, np.complex64)])
    t = np.arange(n_out) / ratio
    i = np.floor(t).astype(np.int64)
    mu = (t - i).astype(np.float32)
    # z_p[i] = sum_j padded[i + 1 + j] * coeffs[p, j]  (= sum over lags k of x[i + k] * c_p[k]):
    # all degree + 1 correlations with one forward FFT and one batched inverse FFT
    taps = coeffs.shape[1]
    n_fft = scipy.fft.next_fast_len(len(padded) + taps - 1)
    full = scipy.fft.ifft(scipy.fft.fft(padded, n_fft) * scipy.fft.fft(coeffs[:, ::-1], n_fft, axis=1), axis=1)
    z = full[:, i + taps]
    out = z[-1]
    for zp in z[-2::-1]:
        out = out * mu + zp
    return out.astype(np.complex64, copy=False)


@functools.cache
def _farrow_coefficients(half_length: int = 16, degree: int = 6, beta: float = 8.0) -> np.ndarray:
    """``[degree + 1, 2·half_length]`` float32: least-squares polynomial (in the fractional delay μ ∈ [0, 1))
    of the Kaiser-windowed sinc taps at lags ``-half_length+1 .. half_length``, each normalised to unit DC
    gain (tap fit error 2e-5)."""
    mu = np.arange(4096) / 4096
    u = np.arange(-half_length + 1, half_length + 1)[None, :] - mu[:, None]
    w = np.sinc(u) * np.i0(beta * np.sqrt(1.0 - np.clip(u / half_length, -1.0, 1.0) ** 2)) / np.i0(beta)
    w /= w.sum(axis=1, keepdims=True)
    coeffs, *_ = np.linalg.lstsq(np.vander(mu, degree + 1, increasing=True), w, rcond=None)
    return coeffs.astype(np.float32)


def carrier_phase(num_samples: int, cfo_hz: float, linewidth_hz: float, sample_rate_hz: float,
                  rng: np.random.Generator) -> np.ndarray:
    """``[num_samples]`` phase in rad of the RX LO against the TX LO: CFO ramp plus Wiener phase noise."""
    n = np.arange(num_samples)
    phase = 2 * np.pi * cfo_hz / sample_rate_hz * n
    if linewidth_hz > 0:
        steps = rng.normal(0.0, math.sqrt(2 * np.pi * linewidth_hz / sample_rate_hz), num_samples)
        phase = phase + np.cumsum(steps)
    return phase


def iq_imbalance(x: np.ndarray, amplitude_db: float, phase_deg: float) -> tuple[np.ndarray, float]:
    """Apply RX IQ imbalance; returns the samples and the image rejection ratio ``|K1|²/|K2|²`` in dB."""
    g = 10 ** (amplitude_db / 20)
    phi = math.radians(phase_deg)
    k1 = (1 + g * np.exp(-1j * phi)) / 2
    k2 = (1 - g * np.exp(1j * phi)) / 2
    irr_db = 10 * math.log10(abs(k1) ** 2 / abs(k2) ** 2) if abs(k2) > 0 else math.inf
    return (k1 * x + k2 * np.conj(x)).astype(np.complex64), irr_db
