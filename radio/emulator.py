"""The channel emulator: :class:`Emulator` turns transmitted IQ into received IQ plus the ground truth.

>>> import numpy as np, radio
>>> cfg = radio.FrameConfig()
>>> ch = radio.Emulator(cfg, profile="TDL-C", snr_db=10.0, delay_spread_s=100e-9, seed=1)
>>> iq = (np.random.default_rng(0).standard_normal(4000) + 0j).astype(np.complex64)
>>> rx_iq, truth = ch(iq)
>>> rx_iq.dtype, truth.start
(dtype('complex64'), 6)

Signal chain of one call (each impairment only when switched on in :class:`radio.Impairments`):

1. DAC: 12-bit quantisation with saturation.
2. Multipath: a fresh Sionna channel realisation (``radio.channel_models``), applied as an FFT convolution
   (``scipy.signal.oaconvolve``) or, with Doppler, block-wise with one set of taps per ``block_length``
   samples (overlap-add).
3. Sample-clock offset (resampling), then the random number of leading noise-only samples.
4. CFO and phase noise (RX LO), then complex white Gaussian noise of variance
   ``noise_var = (fft_size / num_used_subcarriers) / 10^(snr_db / 10)`` per sample: a unit-power OFDM
   signal puts ``Es = fft_size / num_used_subcarriers`` on each used subcarrier (unitary FFT) and the
   noise ``noise_var`` on each bin, so the per-used-subcarrier Es/N0 is ``10^(snr_db / 10)``.
5. RX IQ imbalance, DC offset, ADC 12-bit quantisation with saturation (gain set from this realisation's
   received power, as a slow AGC would).

Each call draws a new, independent channel realisation; an emulator built with the same seed reproduces
the same sequence of calls exactly. Sionna (slow to import, ~5 s) is imported when the first Emulator is built.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from common.tomlconfig import ConfigError, TomlConfig
from radio.config import FrameConfig
from radio.errors import RadioError
from radio.impairments import Impairments, carrier_phase, iq_imbalance, quantize, resample_clock

if TYPE_CHECKING:
    from radio.channel_models import ChannelRealisation


MAX_DELAY_SPREAD_S = 10e-6
"""Largest RMS delay spread the emulator accepts, s (3GPP's "very long" is 1 µs; beyond, memory grows with
the profile's length)."""
MAX_SPEED_MPS = 1000.0
"""Largest terminal speed the emulator accepts, m/s."""


class EmulatorInputError(RadioError, ValueError):
    """The IQ handed to the emulator is not a non-empty, finite, 1-D complex array."""


@dataclass
class EmulatorConfig(TomlConfig):
    """Channel and impairment settings of an :class:`Emulator` (TOML-able).

    Attributes:
        profile: "TDL-A".."TDL-E" (3GPP TR 38.901 via Sionna), "AWGN" or "Rayleigh" (flat block fading).
        snr_db: nominal SNR: average per-used-subcarrier Es/N0 at the RX input for the average channel.
        delay_spread_s: nominal RMS delay spread of the TDL profile (ignored for AWGN/Rayleigh).
        carrier_frequency_hz: carrier frequency (Doppler and the CFO in ppm refer to it).
        min_speed_mps, max_speed_mps: speed range; each call draws a speed uniformly in between (TDL only).
        block_length: samples per block of the time-varying channel when ``max_speed_mps > 0``.
        seed: seed of every random draw of the emulator.
        impairments: hardware impairments (all off by default).
    """

    profile: str = "TDL-C"
    snr_db: float = 10.0
    delay_spread_s: float = 100e-9
    carrier_frequency_hz: float = 2.4e9
    min_speed_mps: float = 0.0
    max_speed_mps: float = 0.0
    block_length: int = 256
    seed: int = 0
    impairments: Impairments = field(default_factory=Impairments)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        self.check_range("delay_spread_s", 0.0, MAX_DELAY_SPREAD_S)
        self.check_range("carrier_frequency_hz", 0.0, 1e11, open_low=True)
        self.check_range("min_speed_mps", 0.0, MAX_SPEED_MPS)
        self.check_range("max_speed_mps", self.min_speed_mps, MAX_SPEED_MPS)
        if self.block_length < 1:
            raise ConfigError(f"block_length must be ≥ 1, got {self.block_length}")
        if self.seed < 0:
            raise ConfigError(f"seed must be ≥ 0, got {self.seed}")


@dataclass
class ChannelTruth:
    """What the emulator did in one call (scalars are JSON-able through :meth:`to_dict`).

    Attributes:
        snr_db: realised SNR = mean over used subcarriers of ``|H_k|²`` of this realisation (averaged over
            the blocks of a time-varying channel) × Es/N0, in dB; equals ``nominal_snr_db + channel_gain_db``.
            Thermal noise only: DAC/ADC quantisation, phase noise and IQ-imbalance distortion are not counted.
        delay_spread_s: realised RMS delay spread of the paths of this realisation (Sionna's formula on
            ``|a|²`` and ``tau``); 0 for AWGN and flat Rayleigh.
        cfo_hz: carrier frequency offset; the RX signal is ``tx · exp(+j 2π cfo_hz t)`` (0 when off).
        start: index in ``rx_iq`` of the first TX sample at zero propagation delay (the path at tau = 0).
        nominal_snr_db: the configured SNR.
        noise_var: thermal noise variance per complex sample.
        channel_gain_db: ``10 log10`` of the mean ``|H_k|²`` over used subcarriers.
        num_leading_samples: noise-only samples prepended (start offset).
        sample_clock_ppm: RX sample-clock offset (0 when off).
        image_rejection_db: IQ-imbalance image rejection ratio (inf when off).
        dac_clipped_fraction, adc_clipped_fraction: fraction of rail samples that saturated.
        profile: channel profile.
        realisation: the drawn channel (taps, lags, path powers/delays); not in :meth:`to_dict`.
        sample_rate_hz: sample rate of ``rx_iq``.
    """

    snr_db: float
    delay_spread_s: float
    cfo_hz: float
    start: int
    nominal_snr_db: float
    noise_var: float
    channel_gain_db: float
    num_leading_samples: int
    sample_clock_ppm: float
    image_rejection_db: float
    dac_clipped_fraction: float
    adc_clipped_fraction: float
    profile: str
    sample_rate_hz: float
    realisation: ChannelRealisation = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "realisation"}

    def frequency_response(self, cfg: FrameConfig) -> np.ndarray:
        """``[num_blocks, num_used_subcarriers]`` true channel on the used subcarriers (order of
        :func:`used_subcarriers`), with the time origin at ``start`` (lag 0)."""
        freqs = used_subcarriers(cfg) * cfg.subcarrier_spacing_hz
        return self.realisation.frequency_response(freqs, self.sample_rate_hz)


def used_subcarriers(cfg: FrameConfig) -> np.ndarray:
    """Signed indices of the used subcarriers: ``-N_used/2 .. -1, 1 .. N_used/2`` (DC unused)."""
    half = cfg.num_used_subcarriers // 2
    return np.r_[np.arange(-half, 0), np.arange(1, half + 1)]


class Emulator:
    """Sionna-driven channel with hardware impairments: ``rx_iq, truth = emulator(iq)``.

    Args:
        cfg: the frame numerology (sample rate, FFT size, used subcarriers).
        config: an :class:`EmulatorConfig`; or give its fields as keyword arguments
            (``profile``, ``snr_db``, ``delay_spread_s``, ``seed``, ``carrier_frequency_hz``,
            ``max_speed_mps``, ``impairments``, ...).
    """

    def __init__(self, cfg: FrameConfig, config: EmulatorConfig | None = None, **kwargs: Any) -> None:
        from radio.channel_models import ChannelModel  # imports Sionna (~5 s): only when an emulator is built

        if config is not None and kwargs:
            raise ConfigError("give either an EmulatorConfig or keyword arguments, not both")
        self.cfg = cfg
        self.config = config if config is not None else EmulatorConfig(**kwargs)
        c = self.config
        self.model = ChannelModel(c.profile, sample_rate_hz=cfg.sample_rate_hz, delay_spread_s=c.delay_spread_s,
                                  carrier_frequency_hz=c.carrier_frequency_hz, min_speed_mps=c.min_speed_mps,
                                  max_speed_mps=c.max_speed_mps)
        # per-used-subcarrier Es/N0 = time-domain SNR × fft_size / num_used_subcarriers (unit-power TX)
        self.noise_var = cfg.fft_size / cfg.num_used_subcarriers / 10 ** (c.snr_db / 10)
        self._seeds = np.random.SeedSequence(c.seed)
        self._used_freqs_hz = used_subcarriers(cfg) * cfg.subcarrier_spacing_hz

    def __call__(self, iq: np.ndarray) -> tuple[np.ndarray, ChannelTruth]:
        """Pass ``iq`` (``[n]`` complex, unit average power) through the channel.

        Returns ``rx_iq`` (``[n_lead + n' + num_lags - 1]`` complex64, where ``n'`` is ``n`` after the
        sample-clock resampling) and the :class:`ChannelTruth` of this call. Several frames in one buffer see
        one channel realisation (static, or evolving block by block with Doppler) and one truth.
        """
        import torch  # already loaded with Sionna by __init__; not at module level, so `import radio` stays light

        x = _check_iq(iq)
        c, imp, fs = self.config, self.config.impairments, self.cfg.sample_rate_hz
        numpy_seed, torch_seed = self._seeds.spawn(2)
        rng = np.random.default_rng(numpy_seed)
        generator = torch.Generator().manual_seed(int(torch_seed.generate_state(1, np.uint64)[0]))

        dac_clipped = adc_clipped = 0.0
        if imp.quantization:
            x, dac_clipped = quantize(x, imp.quantization_bits, imp.dac_backoff_db, reference_power=1.0)

        num_blocks = math.ceil(len(x) / c.block_length) if c.max_speed_mps > 0 else 1
        realisation = self.model.draw(num_blocks, fs / c.block_length, generator)
        y = realisation.apply(x, c.block_length)

        ratio = 1.0
        if imp.sample_clock:
            y = resample_clock(y, imp.sample_clock_ppm)
            ratio += imp.sample_clock_ppm * 1e-6
        n_lead = int(rng.integers(0, imp.start_offset_max_samples + 1)) if imp.start_offset else 0
        y = np.concatenate([np.zeros(n_lead, np.complex64), y])

        cfo_hz = imp.cfo_ppm * 1e-6 * c.carrier_frequency_hz if imp.cfo else 0.0
        linewidth_hz = imp.phase_noise_linewidth_hz if imp.phase_noise else 0.0
        if cfo_hz or linewidth_hz:
            y = y * np.exp(1j * carrier_phase(len(y), cfo_hz, linewidth_hz, fs, rng)).astype(np.complex64)
        y = y + _complex_noise(len(y), self.noise_var, rng)

        irr_db = math.inf
        if imp.iq_imbalance:
            y, irr_db = iq_imbalance(y, imp.iq_amplitude_db, imp.iq_phase_deg)
        dc_power = 0.0
        if imp.dc_offset:
            dc_power = 10 ** (imp.dc_offset_dbc / 10) * (1.0 + self.noise_var)
            y = y + np.complex64(math.sqrt(dc_power) * np.exp(2j * np.pi * rng.random()))
        if imp.quantization:
            # an ideal slow AGC: the gain follows this realisation's received power
            rx_power = float(np.mean(np.sum(np.abs(realisation.taps) ** 2, axis=1))) + self.noise_var + dc_power
            y, adc_clipped = quantize(y, imp.quantization_bits, imp.adc_backoff_db, reference_power=rx_power)

        gain = float(np.mean(np.abs(realisation.frequency_response(self._used_freqs_hz, fs)) ** 2))
        truth = ChannelTruth(
            snr_db=c.snr_db + 10 * math.log10(gain), delay_spread_s=realisation.rms_delay_spread_s,
            cfo_hz=cfo_hz, start=n_lead + round(-realisation.l_min * ratio), nominal_snr_db=c.snr_db,
            noise_var=self.noise_var, channel_gain_db=10 * math.log10(gain), num_leading_samples=n_lead,
            sample_clock_ppm=imp.sample_clock_ppm if imp.sample_clock else 0.0, image_rejection_db=irr_db,
            dac_clipped_fraction=dac_clipped, adc_clipped_fraction=adc_clipped, profile=c.profile,
            sample_rate_hz=fs, realisation=realisation)
        return y.astype(np.complex64, copy=False), truth


def _complex_noise(n: int, var: float, rng: np.random.Generator) -> np.ndarray:
    """``[n]`` circular complex Gaussian noise of variance ``var``, complex64."""
    return (math.sqrt(var / 2) * rng.standard_normal(2 * n, np.float32)).view(np.complex64)


def _check_iq(iq: Any) -> np.ndarray:
    x = np.asarray(iq)
    if x.ndim != 1:
        raise EmulatorInputError(f"iq must be a 1-D array, got shape {x.shape}")
    if x.size == 0:
        raise EmulatorInputError("iq is empty")
    if not np.issubdtype(x.dtype, np.number):
        raise EmulatorInputError(f"iq must be numeric, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise EmulatorInputError(f"iq holds {int(np.sum(~np.isfinite(x)))} NaN/Inf samples")
    return x.astype(np.complex64)
