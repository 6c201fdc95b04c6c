"""Frame header: fields, bit packing, CRC-16 and the mapping of its polar-coded bits to resource elements.

Layout (80 bits, most significant bit first)::

    frame_id 16 | payload_len 20 | numerology_id 4 | snr 8 | delay_spread 12 | flags 4 | CRC-16 16

* ``snr``: the encoder's condition SNR, 0.25 dB steps from -20 dB (code 0) to 43.75 dB (255).
* ``delay_spread``: the encoder's condition RMS delay spread in ns, 0..4095 ns (1 ns steps).
* ``flags``: bit 3 = a condition is present; bits 0-2 are free for the application.
* CRC-16/CCITT (poly 0x1021, init 0xFFFF, ``binascii.crc_hqx``) over the first 8 bytes.

The 80 bits are encoded by the 5G polar code of :mod:`radio.header_code` into 640 coded bits, sent as
BPSK on pseudo-randomly interleaved data resource elements of the header symbols.
"""
from __future__ import annotations

import binascii
from dataclasses import dataclass

import numpy as np

from radio.errors import ConfigurationError
from radio.header_code import N_CODED, PolarHeaderCode

HEADER_BITS = 80
_FIELDS = (("frame_id", 16), ("payload_len", 20), ("numerology_id", 4), ("snr", 8),
           ("delay_spread", 12), ("flags", 4))
_SNR_MIN_DB, _SNR_STEP_DB = -20.0, 0.25
_CONDITION_FLAG = 0x8
_INTERLEAVER_SEED = 0x5EED_0005


@dataclass(frozen=True)
class FrameHeader:
    """Decoded header fields.

    Attributes:
        frame_id: 0..65535.
        payload_len: payload length in complex symbols, ≥ 1.
        numerology_id: 0..15, the transmitter's ``FrameConfig.numerology_id``.
        snr_db: encoder's condition SNR (quantised to 0.25 dB), or None if none was sent.
        delay_spread_s: encoder's condition delay spread (quantised to 1 ns), or None.
        flags: application flags 0..7.
    """

    frame_id: int
    payload_len: int
    numerology_id: int
    snr_db: float | None = None
    delay_spread_s: float | None = None
    flags: int = 0

    def to_bits(self) -> np.ndarray:
        """Header with CRC as 80 bits (uint8 0/1, MSB first)."""
        if not 0 <= self.frame_id < 2**16:
            raise ConfigurationError(f"frame_id must be in [0, 65535], got {self.frame_id}")
        if not 1 <= self.payload_len < 2**20:
            raise ConfigurationError(f"payload_len must be in [1, 2**20-1], got {self.payload_len}")
        if not 0 <= self.flags < 8:
            raise ConfigurationError(f"flags must be in [0, 7], got {self.flags}")
        has_cond = self.snr_db is not None and self.delay_spread_s is not None
        snr_code = ds_code = 0
        if has_cond:
            snr_code = int(np.clip(round((self.snr_db - _SNR_MIN_DB) / _SNR_STEP_DB), 0, 255))
            ds_code = int(np.clip(round(self.delay_spread_s * 1e9), 0, 4095))
        values = {"frame_id": self.frame_id, "payload_len": self.payload_len,
                  "numerology_id": self.numerology_id, "snr": snr_code, "delay_spread": ds_code,
                  "flags": self.flags | (_CONDITION_FLAG if has_cond else 0)}
        word = 0
        for name, width in _FIELDS:
            word = (word << width) | values[name]
        payload = word.to_bytes(8, "big")
        crc = binascii.crc_hqx(payload, 0xFFFF)
        return np.unpackbits(np.frombuffer(payload + crc.to_bytes(2, "big"), np.uint8))

    @classmethod
    def from_bits(cls, bits: np.ndarray) -> FrameHeader | None:
        """80 hard bits → header, or None if the CRC fails."""
        raw = np.packbits(np.asarray(bits, np.uint8)).tobytes()
        if binascii.crc_hqx(raw[:8], 0xFFFF) != int.from_bytes(raw[8:10], "big"):
            return None
        word = int.from_bytes(raw[:8], "big")
        values = {}
        for name, width in reversed(_FIELDS):
            values[name] = word & ((1 << width) - 1)
            word >>= width
        has_cond = bool(values["flags"] & _CONDITION_FLAG)
        return cls(frame_id=values["frame_id"], payload_len=values["payload_len"],
                   numerology_id=values["numerology_id"],
                   snr_db=_SNR_MIN_DB + _SNR_STEP_DB * values["snr"] if has_cond else None,
                   delay_spread_s=values["delay_spread"] * 1e-9 if has_cond else None,
                   flags=values["flags"] & 0x7)


class HeaderCoder:
    """Header channel code (:class:`radio.header_code.PolarHeaderCode`) + interleaver between the 80
    header bits and the header's data resource elements (one BPSK coded bit per resource element).

    Args:
        num_data: data resource elements per OFDM symbol.

    Attributes:
        num_symbols: header OFDM symbols, ``ceil(640 / num_data)``.
        num_res: data resource elements of those symbols (those not carrying a coded bit take filler).
        positions: resource element carrying coded bit j, shape (640,).
    """

    def __init__(self, num_data: int):
        self.code = PolarHeaderCode()
        self.num_symbols = -(-N_CODED // num_data)
        self.num_res = self.num_symbols * num_data
        self.positions = np.random.default_rng(_INTERLEAVER_SEED).permutation(self.num_res)[:N_CODED]

    def bpsk(self, bits: np.ndarray) -> np.ndarray:
        """80 bits → the BPSK value (±1.0, +1 = coded bit 0) of each coded bit, shape (640,), carried by
        resource element ``positions[j]``."""
        return 1.0 - 2.0 * self.code.encode(bits)

    def encode(self, bits: np.ndarray, filler: np.ndarray) -> np.ndarray:
        """80 bits → BPSK values on all header data REs (unused REs take ``filler``), shape (num_res,)."""
        res = filler[:self.num_res].astype(np.complex128)
        res[self.positions] = self.bpsk(bits)
        return res

    def decode(self, soft: np.ndarray, noise: float) -> np.ndarray | None:
        """Matched-filter outputs of the header data REs → 80 hard bits, or None if the code found no
        codeword (the caller still checks the CRC-16).

        Args:
            soft: ``Re(conj(H)·y)`` per data RE, shape (num_res,): ``|H|²·x + N(0, |H|²·noise/2)`` for
                BPSK ``x`` (+1 = bit 0).
            noise: N0, the complex noise variance per resource element.
        """
        llr = (-4.0 / max(noise, 1e-30)) * soft[self.positions]
        bits, ok = self.code.decode(llr[None])
        return bits[0] if ok[0] else None
