"""TOML configuration of the digital baseline codec (:class:`~dekag.digital.codec.DigitalCodec`).

::

    latent_channels = 4
    latent_height = 8
    latent_width = 8
    num_symbols = 128
    margin_db = 4.0
    mcs_table = [[2, 0.2, -2.7], [2, 0.3333333333333333, -0.3], ...]   # [bits/symbol, code rate, threshold dB]

The default MCS thresholds are the AWGN SNRs (Es/N0 per symbol, dB) at which one codeword of the entry, at
K = 128 symbols with ``ldpc_iterations`` = 20, reaches a block error rate of 10 % (300 frames per SNR, 0.25 dB
steps, measured by ``bench/digital_baseline.py --measure-thresholds``; see ``docs/digital_baseline.md``). Longer frames
(more symbols per codeword) need slightly less SNR, so the table is conservative there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from common.tomlconfig import ConfigError, TomlConfig

BITS_PER_SYMBOL = (2, 4, 6, 8)
"""QPSK, 16-, 64- and 256-QAM (Sionna's Gray-labelled 38.211 constellations)."""
MIN_CODE_RATE, MAX_CODE_RATE = 0.2, 0.925
"""5G LDPC limits: Sionna refuses rates below 1/5; 38.212 caps the effective rate near 948/1024."""

DEFAULT_MCS_TABLE: tuple[tuple[int, float, float], ...] = (
    (2, 1 / 5, -2.7), (2, 1 / 3, -0.3), (2, 1 / 2, 1.8), (2, 2 / 3, 3.7),
    (4, 1 / 2, 6.8), (4, 2 / 3, 9.4), (4, 3 / 4, 10.8),
    (6, 2 / 3, 14.3), (6, 3 / 4, 15.7), (6, 5 / 6, 17.4),
    (8, 3 / 4, 20.7), (8, 5 / 6, 22.6),
)


@dataclass(frozen=True)
class DigitalCodecConfig(TomlConfig):
    """Shape, link adaptation and quantiser of the digital baseline.

    Attributes:
        latent_channels, latent_height, latent_width: latent shape C, H, W (miniature world: 4, 8, 8).
        num_symbols: K, complex channel symbols per latent (use the JSCC codec's K: :meth:`matching`).
        mcs_table: rows ``(bits_per_symbol, code_rate, threshold_snr_db)`` in increasing threshold and
            spectral efficiency. The entry used is the last one whose threshold ≤ SNR − ``margin_db``
            (the first one when none is).
        margin_db: SNR back-off (dB) for channel-estimation loss and fading on top of the AWGN thresholds;
            larger = more robust, fewer payload bits. The default 4 dB gave the best mean latent PSNR over
            SNR −5…20 dB through the training channel (LS estimates from one pilot symbol cost ≈ 3 dB;
            TDL-E 30 ns / A 300 ns / C 1000 ns best at 3 / 4 / 6 dB; a genie-CSI AWGN link at 0 dB).
        ldpc_iterations: belief-propagation iterations of the LDPC decoder (decode time grows with them).
        max_bits: largest bit depth a single latent coefficient may get.
        transform: "dct" (orthonormal 2-D DCT-II per channel before quantisation, like JPEG) or
            "identity" (quantise latent elements directly).
    """

    latent_channels: int = 4
    latent_height: int = 8
    latent_width: int = 8
    num_symbols: int = 128
    mcs_table: tuple[tuple[int, float, float], ...] = DEFAULT_MCS_TABLE
    margin_db: float = 4.0
    ldpc_iterations: int = 20
    max_bits: int = 12
    transform: Literal["dct", "identity"] = "dct"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if min(self.latent_channels, self.latent_height, self.latent_width) < 1:
            raise ConfigError("latent_channels/height/width must be ≥ 1")
        if not self.mcs_table:
            raise ConfigError("mcs_table must hold at least one (bits_per_symbol, code_rate, threshold_snr_db) row")
        for i, (m, r, _) in enumerate(self.mcs_table):
            if m not in BITS_PER_SYMBOL:
                raise ConfigError(f"mcs_table[{i}]: bits_per_symbol must be one of {BITS_PER_SYMBOL}, got {m}")
            if not MIN_CODE_RATE <= r <= MAX_CODE_RATE:
                raise ConfigError(f"mcs_table[{i}]: code rate {r} outside the 5G LDPC range "
                                  f"[{MIN_CODE_RATE}, {MAX_CODE_RATE}]")
        for i in range(1, len(self.mcs_table)):
            (m0, r0, t0), (m1, r1, t1) = self.mcs_table[i - 1], self.mcs_table[i]
            if not (t1 > t0 and m1 * r1 > m0 * r0):
                raise ConfigError(f"mcs_table rows {i - 1} and {i} must increase in threshold and in "
                                  f"bits_per_symbol × code_rate")
        # the most robust entry must leave room for an LDPC codeword (k ≥ 12 after the CRC is added)
        m, r, _ = self.mcs_table[0]
        if self.num_symbols < 1 or r * m * self.num_symbols < 40:
            raise ConfigError(f"num_symbols {self.num_symbols} too small: the first MCS row carries "
                              f"{r * m * self.num_symbols:.0f} coded information bits, at least 40 are needed")
        if self.ldpc_iterations < 1:
            raise ConfigError(f"ldpc_iterations must be ≥ 1, got {self.ldpc_iterations}")
        if not 1 <= self.max_bits <= 16:
            raise ConfigError(f"max_bits must be in 1..16, got {self.max_bits}")
        if self.transform not in ("dct", "identity"):
            raise ConfigError(f"transform must be 'dct' or 'identity', got {self.transform!r}")

    @classmethod
    def matching(cls, codec_config, **overrides) -> DigitalCodecConfig:
        """The digital config with the latent shape and K of a JSCC :class:`~dekag.jscc.CodecConfig`."""
        return cls(latent_channels=codec_config.latent_channels, latent_height=codec_config.latent_height,
                   latent_width=codec_config.latent_width, num_symbols=codec_config.num_symbols, **overrides)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, self.latent_height, self.latent_width)
