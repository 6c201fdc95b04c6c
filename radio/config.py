"""Frame numerology and format: :class:`FrameConfig`.

The default fits an ADALM-Pluto over USB 2.0 (≤ 5 MS/s sustained): 3.84 MS/s, 128-point FFT
(30 kHz subcarrier spacing), 96 used subcarriers around a null DC, a 16-sample (4.17 µs) cyclic
prefix. The CP covers the excess delay of the 3GPP TDL profiles up to about 430 ns RMS delay spread
(TDL-A, the longest normalised profile, has its last tap at 9.66 × the RMS delay spread).
"""
from __future__ import annotations

from dataclasses import dataclass

from common.tomlconfig import ConfigError, TomlConfig


@dataclass
class FrameConfig(TomlConfig):
    """OFDM numerology and frame layout shared by transmitter, receiver and emulator.

    Attributes:
        sample_rate_hz: baseband sample rate in samples/s.
        fft_size: OFDM FFT size N (subcarrier spacing = sample_rate_hz / fft_size).
        cp_length: cyclic-prefix length in samples.
        num_used_subcarriers: active subcarriers, split evenly around DC (DC itself is never used).
        numerology_id: 4-bit id carried in the header so a receiver can refuse a frame built with
            another numerology.
    """

    sample_rate_hz: float = 3.84e6
    fft_size: int = 128
    cp_length: int = 16
    num_used_subcarriers: int = 96
    numerology_id: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.sample_rate_hz <= 0:
            raise ConfigError(f"sample_rate_hz must be positive, got {self.sample_rate_hz}")
        if self.fft_size < 16 or self.fft_size & (self.fft_size - 1):
            raise ConfigError(f"fft_size must be a power of two ≥ 16, got {self.fft_size}")
        if not 0 < self.cp_length < self.fft_size:
            raise ConfigError(f"cp_length must be in (0, fft_size), got {self.cp_length}")
        if self.num_used_subcarriers % 2 or not 0 < self.num_used_subcarriers < self.fft_size:
            raise ConfigError(f"num_used_subcarriers must be even and < fft_size, got {self.num_used_subcarriers}")
        if not 0 <= self.numerology_id < 16:
            raise ConfigError(f"numerology_id must fit 4 bits, got {self.numerology_id}")

    @property
    def subcarrier_spacing_hz(self) -> float:
        return self.sample_rate_hz / self.fft_size

    @property
    def symbol_length(self) -> int:
        """Samples per OFDM symbol including the cyclic prefix."""
        return self.fft_size + self.cp_length
