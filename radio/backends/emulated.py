"""In-process emulator backend: ``transmit`` runs the channel, ``receive`` reads its output.

For fast studies without sockets or hardware. Each ``transmit(iq)`` calls the channel once
(``rx_iq, truth = channel(iq)``, the API of :class:`radio.emulator.Emulator`) and appends ``rx_iq``
to a receive queue; ``receive(n)`` pops ``n`` samples, filling with zeros (counted) when the queue
runs dry. The truth of every burst is kept with the index of its first received sample.
Gains act as on a radio whose noise enters in the channel: ``tx_gain_db`` scales the burst's amplitude
into the channel (0 dB: the unit power the emulator's SNR refers to, so the SNR moves dB for dB) and
``rx_gain_db`` scales what comes out (signal and noise alike).

>>> import numpy as np
>>> from radio.backends import EmulatedBackend
>>> def ideal(iq):                       # any callable with the Emulator's signature
...     return iq, {"snr_db": float("inf")}
>>> radio = EmulatedBackend(ideal, sample_rate_hz=3.84e6)
>>> radio.transmit(np.ones(8, np.complex64))
>>> radio.receive(10).real.tolist(), radio.last_truth, radio.counters["rx_zero_fill_samples"]
([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0], {'snr_db': inf}, 2)

With the project's Sionna emulator (imported only here, it takes seconds):
``EmulatedBackend.from_frame_config(FrameConfig(), profile="TDL-C", snr_db=10.0, delay_spread_s=100e-9, seed=1)``.
"""
from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import numpy as np

from radio.backends.base import BackendError, RadioBackend, as_iq, check_num_samples
from radio.config import FrameConfig


class EmulatedBackend(RadioBackend):
    """Args:
        channel: ``channel(iq) -> (rx_iq, truth)``, e.g. a :class:`radio.emulator.Emulator`.
        sample_rate_hz: recorded sample rate.
        center_frequency_hz: recorded carrier frequency.
        tx_gain_db, rx_gain_db: initial gains (see :meth:`set_gains`).
    """

    device = "emulator"

    def __init__(self, channel: Callable[[np.ndarray], tuple[np.ndarray, Any]], *, sample_rate_hz: float,
                 center_frequency_hz: float = 2.4e9, tx_gain_db: float = 0.0, rx_gain_db: float = 0.0) -> None:
        self.channel = channel
        self._gains = {"tx_gain_db": float(tx_gain_db), "rx_gain_db": float(rx_gain_db)}
        self._rate = float(sample_rate_hz)
        self._fc = float(center_frequency_hz)
        self._queue: collections.deque[np.ndarray] = collections.deque()
        self._queued = 0
        self.rx_time_samples = 0            # stream index of the next sample receive() returns
        self._rx_end = 0                    # stream index after the last queued sample
        self.truths: list[tuple[int, Any]] = []   # (stream index of the burst's first sample, truth)
        self._counters = {"bursts": 0, "rx_zero_fill_samples": 0}

    @classmethod
    def from_frame_config(cls, cfg: FrameConfig, **emulator_kwargs: Any) -> EmulatedBackend:
        """Build a :class:`radio.emulator.Emulator` (``profile``, ``snr_db``, ``delay_spread_s``, ``seed``, ...)."""
        from radio.emulator import Emulator  # lazy: Sionna

        emulator = Emulator(cfg, **emulator_kwargs)
        return cls(emulator, sample_rate_hz=cfg.sample_rate_hz,
                   center_frequency_hz=emulator.config.carrier_frequency_hz)

    @property
    def sample_rate_hz(self) -> float:
        return self._rate

    @property
    def center_frequency_hz(self) -> float:
        return self._fc

    @property
    def gains(self) -> dict[str, float]:
        return dict(self._gains)

    def set_gains(self, *, rx_gain_db: float | None = None, tx_gain_db: float | None = None) -> None:
        """TX gain: burst amplitude into the channel, dB re unit power; RX gain: output scaling, dB."""
        for name, value in (("tx_gain_db", tx_gain_db), ("rx_gain_db", rx_gain_db)):
            if value is not None:
                self._gains[name] = float(value)

    @property
    def last_truth(self) -> Any:
        return self.truths[-1][1] if self.truths else None

    def transmit(self, iq: np.ndarray) -> None:
        tx_scale, rx_scale = (np.float32(10 ** (self._gains[k] / 20)) for k in ("tx_gain_db", "rx_gain_db"))
        rx, truth = self.channel(as_iq(iq) * tx_scale)
        rx = np.asarray(rx) * rx_scale
        if rx.ndim != 1 or not np.iscomplexobj(rx):
            raise BackendError(f"channel returned {rx.dtype} {rx.shape}, expected 1-D complex")
        self.truths.append((self._rx_end, truth))
        self._queue.append(rx.astype(np.complex64, copy=False))
        self._rx_end += rx.size
        self._counters["bursts"] += 1

    def receive(self, num_samples: int) -> np.ndarray:
        n = check_num_samples(num_samples)
        out = np.zeros(n, np.complex64)
        have = 0
        while have < n and self._queue:
            head = self._queue[0]
            take = min(head.size, n - have)
            out[have:have + take] = head[:take]
            have += take
            if take == head.size:
                self._queue.popleft()
            else:
                self._queue[0] = head[take:]
        self._counters["rx_zero_fill_samples"] += n - have
        self.rx_time_samples += n
        self._rx_end = max(self._rx_end, self.rx_time_samples)   # idle air: the next burst starts after it
        return out

    @property
    def pending_samples(self) -> int:
        """Received samples queued and not yet read."""
        return sum(part.size for part in self._queue)

    @property
    def counters(self) -> dict[str, int]:
        return dict(self._counters)
