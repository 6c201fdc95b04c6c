"""Where everything sits in a frame: preamble, header symbols, payload symbols (sample offsets).

::

    | preamble (SC + guard + 2 LTS) | header: H symbols | payload: ceil(L / D) symbols |

H = ceil(640 / D) (the header's polar-coded bits, :mod:`radio.header_code`), D = data subcarriers per symbol,
L = payload length.
Every header and payload symbol is ``cp_length + fft_size`` samples with pilots on the same
subcarriers; the last payload symbol is padded with known filler values.
"""
from __future__ import annotations

from radio.config import FrameConfig
from radio.header import HeaderCoder
from radio.ofdm import ResourceGrid
from radio.preamble import Preamble


class FrameLayout:
    """Shared tables of one numerology: grid, preamble, header coder and frame offsets."""

    def __init__(self, cfg: FrameConfig):
        self.cfg = cfg
        self.grid = ResourceGrid(cfg)
        self.preamble = Preamble(cfg, self.grid)
        self.header = HeaderCoder(self.grid.num_data)

    @property
    def header_offset(self) -> int:
        """First sample of the first header symbol (its CP), from the frame start."""
        return self.preamble.length

    @property
    def payload_offset(self) -> int:
        return self.header_offset + self.header.num_symbols * self.cfg.symbol_length

    def payload_symbols(self, payload_len: int) -> int:
        """OFDM symbols needed for ``payload_len`` complex symbols."""
        return -(-payload_len // self.grid.num_data)

    def frame_length(self, payload_len: int) -> int:
        """Total samples of a frame carrying ``payload_len`` symbols."""
        return self.payload_offset + self.payload_symbols(payload_len) * self.cfg.symbol_length
