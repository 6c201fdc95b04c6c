"""Link adaptation of the digital baseline: the MCS table, the choice by SNR, and how an MCS fills K symbols.

>>> from dekag.digital.config import DigitalCodecConfig
>>> cfg = DigitalCodecConfig()
>>> mcs = select_mcs(cfg.mcs_table, snr_db=12.0, margin_db=cfg.margin_db)   # 8 dB after the margin
>>> mcs.name
'16QAM 1/2'
>>> lay = frame_layout(mcs, num_symbols=128)
>>> lay.num_codewords, lay.coded_bits, lay.info_bits, lay.payload_bits
(1, (512,), (256,), 240)

Segmentation (5G-like): a frame of K symbols carries ``C`` LDPC codewords, as few as keep every codeword's
information bits k ≤ 8448 (5G base graph 1). Codeword ``c`` takes the symbols ``c, c + C, c + 2C, …``
(round-robin, so every codeword spans the whole frame in frequency and time), carries
``n_c = m × symbols`` coded bits and ``k_c = ⌈r × n_c⌉`` information bits, of which the last 16 (k_c ≤ 3824)
or 24 (CRC24A) are its CRC. The payload is what the CRCs leave.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

MAX_INFO_BITS = 8448
"""Largest LDPC information block of 5G base graph 1 (38.212 §5.2.2)."""
CRC16_MAX_INFO_BITS = 3824
"""Up to this many payload bits a codeword uses CRC16, above it CRC24A (the 5G transport-block rule)."""

_MODULATION = {2: "QPSK", 4: "16QAM", 6: "64QAM", 8: "256QAM"}


@dataclass(frozen=True)
class Mcs:
    """One row of the MCS table.

    Attributes:
        index: row index in the table (what the frame header can carry).
        bits_per_symbol: m (2 QPSK, 4 16-QAM, 6 64-QAM, 8 256-QAM).
        code_rate: LDPC rate r.
        threshold_snr_db: lowest SNR − margin (dB) at which the row is chosen.
    """

    index: int
    bits_per_symbol: int
    code_rate: float
    threshold_snr_db: float

    @property
    def name(self) -> str:
        rate = Fraction(self.code_rate).limit_denominator(16)
        return f"{_MODULATION[self.bits_per_symbol]} {rate.numerator}/{rate.denominator}"

    @property
    def spectral_efficiency(self) -> float:
        """Information bits per symbol before the CRC, m × r."""
        return self.bits_per_symbol * self.code_rate


def mcs_table(rows) -> list[Mcs]:
    """The config's ``(bits_per_symbol, code_rate, threshold_snr_db)`` rows as :class:`Mcs` objects."""
    return [Mcs(i, int(m), float(r), float(t)) for i, (m, r, t) in enumerate(rows)]


def select_mcs(rows, snr_db: float, margin_db: float) -> Mcs:
    """The last row whose threshold ≤ ``snr_db − margin_db``; the first row when none is (nothing more robust
    exists: the frame is sent anyway and its CRC says whether it arrived)."""
    if not math.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite to choose an MCS, got {snr_db}")
    table = mcs_table(rows)
    chosen = table[0]
    for mcs in table:
        if mcs.threshold_snr_db <= snr_db - margin_db:
            chosen = mcs
    return chosen


def _crc_bits(info_bits: int) -> int:
    return 16 if info_bits - 16 <= CRC16_MAX_INFO_BITS else 24


@dataclass(frozen=True)
class FrameLayout:
    """How one MCS fills a frame of K symbols.

    Attributes:
        mcs: the row.
        num_symbols: K.
        symbols: symbols of each codeword (codeword c holds frame symbols c, c + C, …).
        coded_bits: n_c = m × symbols of each codeword.
        info_bits: k_c = ⌈r × n_c⌉ LDPC information bits of each codeword (payload + CRC).
        crc_bits: CRC length of each codeword (16 or 24).
    """

    mcs: Mcs
    num_symbols: int
    symbols: tuple[int, ...]
    coded_bits: tuple[int, ...]
    info_bits: tuple[int, ...]
    crc_bits: tuple[int, ...]

    @property
    def num_codewords(self) -> int:
        return len(self.symbols)

    @property
    def codeword_payload_bits(self) -> tuple[int, ...]:
        return tuple(k - c for k, c in zip(self.info_bits, self.crc_bits))

    @property
    def payload_bits(self) -> int:
        """Bits per frame left for the quantised latent."""
        return sum(self.codeword_payload_bits)


def frame_layout(mcs: Mcs, num_symbols: int) -> FrameLayout:
    """Split ``num_symbols`` symbols into the fewest codewords whose information blocks fit 5G LDPC."""
    c = 1
    while math.ceil(mcs.code_rate * mcs.bits_per_symbol * math.ceil(num_symbols / c)) > MAX_INFO_BITS:
        c += 1
    symbols = tuple(len(range(i, num_symbols, c)) for i in range(c))
    coded = tuple(mcs.bits_per_symbol * s for s in symbols)
    info = tuple(math.ceil(mcs.code_rate * n) for n in coded)
    crc = tuple(_crc_bits(k) for k in info)
    if min(k - b for k, b in zip(info, crc)) < 12:
        raise ValueError(f"{mcs.name} on {num_symbols} symbols leaves fewer than 12 payload bits per codeword")
    return FrameLayout(mcs, num_symbols, symbols, coded, info, crc)
