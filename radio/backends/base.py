"""The one small interface every radio backend implements: :class:`RadioBackend`.

A backend moves complex baseband between the transmitter's digital output and the receiver's
digital input. IQ is ``numpy.complex64``, 1-D; the transmitter hands over unit-average-power samples
and the backend does any device scaling; ``receive`` returns samples normalised to the device's full
scale (Pluto: ±1.0 = ±2048 ADC codes), so levels differ from backend to backend.

Semantics shared by all backends:

* ``transmit(iq)`` sends one burst. Pluto repeats it cyclically until the next ``transmit``; the
  stream backends (ZeroMQ virtual RF, emulator) send it once and fill idle time with zeros.
* ``receive(num_samples)`` returns the next ``num_samples`` samples at the receiver, complex64.
* ``counters`` reports events worth recording (overflows, clipped samples, timeouts ...).
* ``describe()`` is the metadata a recording needs (SigMF: sample rate, centre frequency, gains, device).
"""
from __future__ import annotations

import abc

import numpy as np

from radio.errors import RadioError


class BackendError(RadioError, RuntimeError):
    """A radio backend cannot do what was asked (bad input, device error, closed backend)."""


class PeerTimeout(BackendError, TimeoutError):
    """The other end of a link (a ZeroMQ peer, a libiio device) did not answer in time."""


def as_iq(iq: np.ndarray, *, name: str = "iq") -> np.ndarray:
    """Check a transmit burst: 1-D, complex, finite, non-empty. Returns it as complex64."""
    iq = np.asarray(iq)
    if iq.ndim != 1 or iq.size == 0:
        raise BackendError(f"{name} must be a non-empty 1-D array, got shape {iq.shape}")
    if not np.iscomplexobj(iq):
        raise BackendError(f"{name} must be complex, got dtype {iq.dtype}")
    if not np.all(np.isfinite(iq)):
        raise BackendError(f"{name} contains NaN or infinite samples")
    return iq.astype(np.complex64, copy=False)


def check_num_samples(num_samples: int) -> int:
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples <= 0:
        raise BackendError(f"num_samples must be a positive integer, got {num_samples!r}")
    return int(num_samples)


class RadioBackend(abc.ABC):
    """Base class: sample rate, centre frequency, gains, transmit, receive, close; a context manager."""

    #: short device name recorded in metadata ("pluto", "zmq", "sigmf-replay", "emulator")
    device: str = "radio"

    @property
    @abc.abstractmethod
    def sample_rate_hz(self) -> float:
        """Baseband sample rate, samples/s."""

    @property
    @abc.abstractmethod
    def center_frequency_hz(self) -> float:
        """RF centre frequency (LO), Hz."""

    @property
    def gains(self) -> dict[str, float]:
        """``{"tx_gain_db": ..., "rx_gain_db": ...}`` as the device reports them (empty if it has none)."""
        return {}

    @abc.abstractmethod
    def transmit(self, iq: np.ndarray) -> None:
        """Send one burst of unit-average-power complex64 samples, shape (N,)."""

    @abc.abstractmethod
    def receive(self, num_samples: int) -> np.ndarray:
        """The next ``num_samples`` received samples, complex64, shape (num_samples,)."""

    @property
    def counters(self) -> dict[str, int]:
        """Event counters since the backend was opened."""
        return {}

    def describe(self) -> dict[str, object]:
        """Metadata for recordings and result rows."""
        return {"device": self.device, "sample_rate_hz": self.sample_rate_hz,
                "center_frequency_hz": self.center_frequency_hz, **self.gains}

    def close(self) -> None:  # noqa: B027 - a no-op by default: backends without resources need not override it
        """Release the device or sockets; idempotent."""

    def __enter__(self) -> RadioBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
