"""Channel impulse responses for the emulator: 3GPP TDL-A..E and flat Rayleigh (drawn with Sionna), AWGN-only.

A :class:`ChannelModel` draws path coefficients ``a`` and delays ``tau`` with Sionna (sionna-no-rt 2.2.0,
keyword arguments only) and turns them into the discrete-time channel at the frame's sample rate with
Sionna's band-limited sinc interpolation (:func:`sionna.phy.channel.cir_to_time_channel`)::

    h[b, l] = sum_m a_m(b) * sinc(l - fs * tau_m),   l = l_min .. l_max

with ``l_min = -6`` (sinc precursor, as Sionna's ``time_lag_discrete_time_channel``) and
``l_max = ceil(fs * max(tau)) + 6``. ``b`` indexes blocks of the time-varying channel (one block when the
channel is static). The taps are scaled by one deterministic constant so that their energy averages to
exactly 1 over realisations (the truncated sinc loses up to ~3 % at fractional delays).

Randomness: every draw uses the ``torch.Generator`` handed in, never Sionna's global generators (setting
``sionna.phy.config.seed`` would also reseed torch's global RNG).

>>> import torch
>>> m = ChannelModel("TDL-C", sample_rate_hz=3.84e6, delay_spread_s=100e-9, carrier_frequency_hz=2.4e9)
>>> r = m.draw(num_blocks=1, block_rate_hz=3.84e6, generator=torch.Generator().manual_seed(1))
>>> r.taps.shape
(1, 17)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import torch
from sionna.phy.channel import RayleighBlockFading, cir_to_time_channel
from sionna.phy.channel.tr38901 import TDL

from common.tomlconfig import ConfigError
from radio.block_convolution import convolve_blocks
from radio.workspace import Workspace

TDL_PROFILES = ("TDL-A", "TDL-B", "TDL-C", "TDL-D", "TDL-E")
PROFILES = TDL_PROFILES + ("AWGN", "Rayleigh")
SINC_PRECURSOR = 6  # lags kept before 0 and after the last path (Sionna's time_lag_discrete_time_channel)


class _OwnGenerator:
    """Mixin for Sionna objects: draw from ``self.generator`` instead of Sionna's global per-device one."""

    generator: torch.Generator

    @property
    def torch_rng(self) -> torch.Generator:
        return self.generator


class SeededTDL(_OwnGenerator, TDL):
    """Sionna's :class:`~sionna.phy.channel.tr38901.TDL` drawing from the ``torch.Generator`` in ``.generator``."""


class SeededRayleighBlockFading(_OwnGenerator, RayleighBlockFading):
    """Sionna's :class:`~sionna.phy.channel.RayleighBlockFading` drawing from ``.generator``."""


@dataclass(frozen=True)
class ChannelRealisation:
    """One drawn channel.

    Attributes:
        taps: ``[num_blocks, num_lags]`` complex64 discrete-time taps; column ``j`` is lag ``l_min + j``
            samples; row ``b`` applies to block ``b`` of the input.
        l_min: lag of column 0 (≤ 0; the sinc precursor).
        path_powers: ``[num_paths]`` path powers ``|a_m|²`` averaged over the blocks (linear).
        path_delays_s: ``[num_paths]`` path delays in seconds.
    """

    taps: np.ndarray
    l_min: int
    path_powers: np.ndarray
    path_delays_s: np.ndarray

    @property
    def rms_delay_spread_s(self) -> float:
        """Realised RMS delay spread of the paths (the formula of Sionna's ``rms_delay_spread`` on ``|a|²``
        and ``tau``)."""
        p = self.path_powers / np.sum(self.path_powers)
        mean = float(np.dot(p, self.path_delays_s))
        return math.sqrt(max(0.0, float(np.dot(p, self.path_delays_s ** 2)) - mean ** 2))

    def apply(self, x: np.ndarray, block_length: int, clock_offset_ppm: float = 0.0,
              blocks_per_row: int = 1, lead: int = 0, scratch: Workspace | None = None) -> np.ndarray:
        """Convolve ``x`` (``[n]`` complex64) with the taps: ``[n + num_lags - 1]``, lag ``l_min`` at index 0.

        Input block ``b`` (samples ``b·block_length`` onwards) is convolved with row
        ``min(b // blocks_per_row, num_blocks - 1)`` and the blocks overlap-add (one row: a plain
        convolution); a ``clock_offset_ppm`` resamples the result onto the RX clock in the same pass
        (:func:`radio.block_convolution.convolve_blocks`, which also puts ``lead`` zeros in front).
        """
        return convolve_blocks(x, self.taps, block_length, clock_offset_ppm, blocks_per_row, lead, scratch)

    def used_band_gain(self, lag_weights: np.ndarray) -> float:
        """Mean of ``|H_k|²`` over the used subcarriers and the blocks, from the taps' autocorrelation.

        ``lag_weights[d]`` is ``mean_k cos(2π f_k d / fs)`` over the used subcarrier frequencies ``f_k``
        (a band symmetric about DC) for lag differences ``d = 0 .. num_lags - 1``
        (:func:`radio.emulator.used_band_lag_weights`).
        """
        num_lags = self.taps.shape[1]
        n_fft = scipy.fft.next_fast_len(2 * num_lags - 1)
        power = np.mean(np.abs(scipy.fft.fft(self.taps, n_fft, axis=1)) ** 2, axis=0)
        autocorr = scipy.fft.ifft(power).real[:num_lags]  # Σ_j t[j + d] t*[j] averaged over blocks, d ≥ 0
        return float(lag_weights[0] * autocorr[0] + 2 * np.dot(lag_weights[1:num_lags], autocorr[1:]))

    def frequency_response(self, frequencies_hz: np.ndarray, sample_rate_hz: float) -> np.ndarray:
        """``[num_blocks, len(frequencies_hz)]`` DFT of the taps, lag 0 as the time origin."""
        lags = self.l_min + np.arange(self.taps.shape[1])
        phase = np.exp(-2j * np.pi * np.outer(lags, np.asarray(frequencies_hz)) / sample_rate_hz)
        return np.einsum("bl,lk->bk", self.taps.astype(np.complex128), phase)  # no BLAS threads: tiny sizes


class ChannelModel:
    """Draws :class:`ChannelRealisation` s of one profile at one sample rate.

    Args:
        profile: one of :data:`PROFILES` ("TDL-A".."TDL-E", "AWGN", "Rayleigh" = flat block fading).
        sample_rate_hz: sample rate of the discrete-time channel (= the sinc bandwidth).
        delay_spread_s: nominal RMS delay spread the TDL profile is scaled to (ignored for AWGN/Rayleigh).
        carrier_frequency_hz: carrier frequency (sets the Doppler of a given speed).
        min_speed_mps, max_speed_mps: the speed of each realisation is drawn uniformly in between (TDL only;
            0 gives a static channel).
    """

    def __init__(self, profile: str, *, sample_rate_hz: float, delay_spread_s: float = 100e-9,
                 carrier_frequency_hz: float = 2.4e9, min_speed_mps: float = 0.0,
                 max_speed_mps: float = 0.0) -> None:
        if profile not in PROFILES:
            raise ConfigError(f"unknown channel profile {profile!r}; known: {list(PROFILES)}")
        if not sample_rate_hz > 0:
            raise ConfigError(f"sample_rate_hz must be positive, got {sample_rate_hz}")
        if profile in TDL_PROFILES and not (math.isfinite(delay_spread_s) and delay_spread_s > 0):
            raise ConfigError(f"delay_spread_s must be positive and finite for {profile}, got {delay_spread_s}")
        if not (math.isfinite(carrier_frequency_hz) and carrier_frequency_hz > 0):
            raise ConfigError(f"carrier_frequency_hz must be positive, got {carrier_frequency_hz}")
        if not 0 <= min_speed_mps <= max_speed_mps or not math.isfinite(max_speed_mps):
            raise ConfigError(f"need 0 <= min_speed_mps <= max_speed_mps, got {min_speed_mps}, {max_speed_mps}")
        self.profile = profile
        self.sample_rate_hz = float(sample_rate_hz)
        self._sionna = None
        self.l_min = 0
        self.l_max = 0
        self._energy = 1.0
        if profile in TDL_PROFILES:
            self._sionna = SeededTDL(model=profile[-1], delay_spread=float(delay_spread_s),
                                carrier_frequency=float(carrier_frequency_hz), min_speed=float(min_speed_mps),
                                max_speed=float(max_speed_mps), device="cpu")
            delays = self._sionna.delays.double().numpy()
            powers = self._sionna.mean_powers.double().numpy()
            self.l_min = -SINC_PRECURSOR
            self.l_max = math.ceil(self.sample_rate_hz * float(delays.max())) + SINC_PRECURSOR
            lags = np.arange(self.l_min, self.l_max + 1)
            sinc2 = np.sinc(lags[None, :] - self.sample_rate_hz * delays[:, None]) ** 2
            self._energy = float(powers @ sinc2.sum(axis=1))  # expected tap energy before scaling
        elif profile == "Rayleigh":
            self._sionna = SeededRayleighBlockFading(num_rx=1, num_rx_ant=1, num_tx=1, num_tx_ant=1, device="cpu")

    @property
    def num_lags(self) -> int:
        return self.l_max - self.l_min + 1

    def mean_path_profile(self) -> tuple[np.ndarray, np.ndarray]:
        """``(delays_s, mean_powers)`` of the profile as Sionna defines it (sum of powers = 1)."""
        if self.profile in TDL_PROFILES:
            return self._sionna.delays.double().numpy(), self._sionna.mean_powers.double().numpy()
        return np.zeros(1), np.ones(1)

    def draw(self, num_blocks: int, block_rate_hz: float, generator: torch.Generator) -> ChannelRealisation:
        """Draw one realisation sampled at ``num_blocks`` instants spaced ``1 / block_rate_hz`` apart."""
        if self._sionna is None:  # AWGN
            return ChannelRealisation(np.ones((num_blocks, 1), np.complex64), 0, np.ones(1), np.zeros(1))
        self._sionna.generator = generator
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the tensors are tiny: torch's thread pool costs ~50x on a busy machine
        try:
            with torch.no_grad():
                # a: [1, 1, 1, 1, 1, num_paths, num_blocks]; tau: [1, 1, 1, num_paths]
                a, tau = self._sionna(batch_size=1, num_time_steps=num_blocks, sampling_frequency=block_rate_hz)
                taps = cir_to_time_channel(self.sample_rate_hz, a, tau, l_min=self.l_min, l_max=self.l_max)
        finally:
            torch.set_num_threads(threads)
        taps = taps[0, 0, 0, 0, 0].numpy() / np.sqrt(self._energy)  # [num_blocks, num_lags]
        path = a[0, 0, 0, 0, 0].numpy()  # [num_paths, num_blocks]
        return ChannelRealisation(taps=taps.astype(np.complex64), l_min=self.l_min,
                                  path_powers=np.mean(np.abs(path) ** 2, axis=1),
                                  path_delays_s=tau[0, 0, 0].double().numpy())
