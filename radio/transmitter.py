"""Transmitter: complex payload symbols → one frame of complex64 IQ at unit mean power."""
from __future__ import annotations

import numpy as np

from radio.config import FrameConfig
from radio.errors import ConfigurationError
from radio.frame_layout import FrameLayout
from radio.header import FrameHeader


class Transmitter:
    """Builds frames: preamble | polar-coded header | OFDM payload with pilots.

    Example:
        >>> import numpy as np, radio
        >>> cfg = radio.FrameConfig()
        >>> iq = radio.Transmitter(cfg).modulate(np.ones(10, complex), frame_id=7, condition=(10.0, 100e-9))
        >>> iq.dtype, iq.size
        (dtype('complex64'), 1760)
    """

    def __init__(self, cfg: FrameConfig | None = None):
        self.cfg = cfg or FrameConfig()
        self.layout = FrameLayout(self.cfg)

    def modulate(self, symbols: np.ndarray, frame_id: int = 0,
                 condition: tuple[float, float] | None = None, flags: int = 0) -> np.ndarray:
        """Build one frame.

        Args:
            symbols: 1-D complex payload, length 1..``max_payload_symbols``; any values (JSCC
                symbols are continuous); unit average power is expected but not enforced.
            frame_id: 0..65535, carried in the header.
            condition: the encoder's (snr_db, delay_spread_s), carried quantised in the header.
            flags: application flags 0..7.

        Returns:
            complex64 IQ, shape (``layout.frame_length(len(symbols))``,), unit mean power for
            unit-power symbols (each resource element has power 1, time samples mean power 1).
        """
        symbols = np.asarray(symbols)
        if symbols.ndim != 1 or symbols.size == 0:
            raise ConfigurationError(f"symbols must be a non-empty 1-D array, got shape {symbols.shape}")
        if not np.all(np.isfinite(symbols)):
            raise ConfigurationError("symbols contain NaN or Inf")
        if symbols.size > self.cfg.max_payload_symbols:
            raise ConfigurationError(f"{symbols.size} symbols exceed max_payload_symbols "
                                     f"{self.cfg.max_payload_symbols}")
        snr_db, ds_s = condition if condition is not None else (None, None)
        header = FrameHeader(frame_id=frame_id, payload_len=symbols.size,
                             numerology_id=self.cfg.numerology_id, snr_db=snr_db,
                             delay_spread_s=ds_s, flags=flags)
        lay, grid = self.layout, self.layout.grid
        d = grid.num_data
        hdr_res = lay.header.encode(header.to_bits(), grid.filler(lay.header.num_res))
        n_pay = lay.payload_symbols(symbols.size)
        pay_res = np.concatenate([symbols.astype(np.complex128),
                                  grid.filler(n_pay * d - symbols.size)])
        data = np.concatenate([hdr_res, pay_res]).reshape(-1, d)
        ofdm = grid.modulate(grid.map(data, grid.pilots(0, data.shape[0])))
        return np.concatenate([lay.preamble.waveform, ofdm]).astype(np.complex64)
