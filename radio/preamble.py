"""The frame preamble: a Schmidl-Cox symbol followed by two identical long training symbols.

::

    | CP | A | A |   G   |  LTS  |  LTS  |
     cp   N/2 N/2  Gp       N       N        (samples; Gp = preamble_cp_length)

* The Schmidl-Cox (SC) symbol uses only even subcarriers (amplitude √2, so its power equals a
  normal symbol's), which makes its two halves ``A`` identical: the half-lag autocorrelation finds
  the frame whatever the CFO and channel, and its phase gives the fractional CFO (± 1 subcarrier).
* The long training symbol (LTS) fills all used subcarriers with known QPSK. The differential
  product SC→LTS on the even subcarriers gives the integer CFO; the matched filter on the LTS pair
  gives fine timing; the two copies give the channel (LS, averaged) and, from their difference,
  the noise variance and a residual CFO with ± 0.5 subcarrier range. The guard ``G`` is a cyclic
  prefix of the LTS longer than the data CP, so both copies stay ISI-free up to ``Gp`` samples of
  excess delay.
"""
from __future__ import annotations

import numpy as np

from radio.config import FrameConfig
from radio.ofdm import ResourceGrid, qpsk_sequence

_SC_SEED = 0x5EED_0003
_LTS_SEED = 0x5EED_0004


class Preamble:
    """Known preamble values and waveform for one :class:`FrameConfig`.

    Attributes:
        sc_values: SC symbol on the used subcarriers, shape (U,), zero on odd subcarriers.
        lts_values: LTS on the used subcarriers, shape (U,), unit modulus.
        waveform: complex128 time samples of the whole preamble, shape (length,).
        lts_time: one LTS body in time (N samples), used as the matched-filter template.
        sc_offset, lts1_offset, lts2_offset: start of the SC body (after its CP) and of the two LTS
            bodies, in samples from the preamble start.
    """

    def __init__(self, cfg: FrameConfig, grid: ResourceGrid | None = None):
        self.cfg = cfg
        grid = grid or ResourceGrid(cfg)
        n, cp, gp = cfg.fft_size, cfg.cp_length, cfg.preamble_cp_length
        even = grid.subcarriers % 2 == 0
        self.sc_even = np.flatnonzero(even)
        self.sc_values = np.zeros(cfg.num_used_subcarriers, np.complex128)
        self.sc_values[even] = np.sqrt(2) * qpsk_sequence(int(even.sum()), _SC_SEED)
        self.lts_values = qpsk_sequence(cfg.num_used_subcarriers, _LTS_SEED)
        sc = grid.modulate(self.sc_values[None], cp)
        lts_sym = grid.modulate(self.lts_values[None], 0)
        self.lts_time = lts_sym
        self.waveform = np.concatenate([sc, lts_sym[n - gp:], lts_sym, lts_sym])
        self.sc_offset = cp
        self.lts1_offset = cp + n + gp
        self.lts2_offset = self.lts1_offset + n

    def matched_filter_energy(self, window: int) -> float:
        """Largest energy of the LTS's cyclic autocorrelation over ``window`` + 1 consecutive lags
        (what the timing window collects from a single noiseless unit path)."""
        ac = np.abs(np.fft.ifft(np.abs(np.fft.fft(self.lts_time)) ** 2)) ** 2
        ext = np.concatenate([ac, ac[:window]])
        return float(np.convolve(ext, np.ones(window + 1), "valid").max())

    @property
    def length(self) -> int:
        return self.waveform.size
