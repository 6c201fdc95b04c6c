"""A pure-Python stand-in for ``adi.Pluto`` that reproduces the real pyadi-iio quirks.

Used by CI in place of hardware (``PlutoBackend(cfg, device=FakePluto(...))``). Only the subset of
``adi.Pluto`` the backend uses is present, under the same names; ``tests/radio/test_backend_pluto.py``
checks every one of them against the real class, so the fake cannot drift from pyadi-iio.

Quirks reproduced (see ``shared/reference/sdr-phy-facts.md`` §1.6):

* ``sample_rate`` below 521e3 raises ``ValueError``.
* ``rx_hardwaregain_chan0`` silently does nothing unless ``gain_control_mode_chan0 == "manual"``
  (the device starts in ``"slow_attack"``).
* ``tx(data)`` casts real and imaginary parts with ``astype(int16)`` (plain floats become 0/±1 codes,
  values beyond ±32767 wrap); the TX length is frozen until ``tx_destroy_buffer()``; a cyclic buffer
  cannot be pushed twice; ``tx_cyclic_buffer`` cannot change while a TX buffer exists.
* ``rx()`` returns ``complex128`` raw 12-bit codes (integers, saturating at -2048…2047), length
  ``rx_buffer_size``, which only takes effect when the RX buffer is (re)created.
* After the RX buffer is created the first ``transient_buffers`` reads are a transient (DC offset);
  after TX data, LO or gain change while a buffer exists, the next ``kernel_buffers_count`` reads are
  stale (what was in the air before the change).
* One ``rx()`` that lasts longer than the context timeout (``ctx.set_timeout``, default 5000 ms)
  raises ``OSError(ETIMEDOUT)``.
* DMA status register 0x80000088 on ``_rxadc``/``_txdac``: bit 2 RX overflow, bit 0 TX underflow;
  writing the bits back clears them. A non-cyclic TX burst that has been played out sets underflow;
  :meth:`FakePluto.inject_overflow` sets overflow.

Digital loopback (``loopback = 1``) returns the TX codes shifted to 12 bits, without channel,
gains or noise, as the AD9361's BIST loopback does. Air model otherwise: TX codes (full scale 2^15) →
``channel`` (optional callable on the normalised burst) →
gain ``tx_gain_db + rx_gain_db − path_loss_db`` → ±2048 RX codes + complex Gaussian noise of
``noise_rms_codes`` per component → round → saturate.
"""
from __future__ import annotations

import errno
from collections.abc import Callable

import numpy as np

_XFLOW_REG = 0x80000088
_RX_OVERFLOW = 0x4
_TX_UNDERFLOW = 0x1
_TX_FULL_SCALE = 2.0**15
_RX_FULL_SCALE = 2048.0


class _FakeContext:
    """The part of ``iio.Context`` the backend uses."""

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms

    def set_timeout(self, timeout: int) -> None:
        self.timeout_ms = int(timeout)


class _FakeDevice:
    """The part of ``iio.Device`` the backend uses: register access and kernel buffer count."""

    def __init__(self, owner: FakePluto) -> None:
        self._owner = owner
        self.kernel_buffers_count = 4

    def reg_read(self, reg: int) -> int:
        if reg != _XFLOW_REG:
            raise OSError(errno.EINVAL, f"fake device has no register {reg:#x}")
        return self._owner._xflow

    def reg_write(self, reg: int, value: int) -> None:
        if reg != _XFLOW_REG:
            raise OSError(errno.EINVAL, f"fake device has no register {reg:#x}")
        self._owner._xflow &= ~int(value)

    def set_kernel_buffers_count(self, count: int) -> None:
        self.kernel_buffers_count = int(count)


class FakePluto:
    """Duck-typed ``adi.Pluto`` without hardware.

    Args:
        uri: recorded only.
        channel: optional callable applied to each normalised TX burst (complex128 → complex), e.g. a
            delay, CFO or the project's emulator.
        path_loss_db: attenuation between TX and RX beyond the two gains, dB.
        noise_rms_codes: receiver noise standard deviation per I/Q component, in ADC codes.
        transient_buffers: reads after RX buffer creation that return a transient.
        timeout_ms: initial libiio timeout (5000 ms network/USB, 1000 ms local in libiio 0.24).
        seed: seed of the noise and of the start phase of the cyclic replay.
    """

    _uri_auto = "ip:pluto.local"

    def __init__(self, uri: str = "ip:192.168.2.1", *, channel: Callable[[np.ndarray], np.ndarray] | None = None,
                 path_loss_db: float = 26.0, noise_rms_codes: float = 2.0, transient_buffers: int = 1,
                 timeout_ms: int = 5000, seed: int = 0) -> None:
        self.uri = uri
        self.channel = channel
        self.path_loss_db = path_loss_db
        self.noise_rms_codes = noise_rms_codes
        self.transient_buffers = transient_buffers
        self._rng = np.random.default_rng(seed)
        self._ctx = _FakeContext(timeout_ms)
        self._rxadc = _FakeDevice(self)
        self._txdac = _FakeDevice(self)
        self._xflow = 0
        self._sample_rate = 30_720_000
        self._rx_lo = self._tx_lo = 2_400_000_000
        self._rx_bw = self._tx_bw = 18_000_000
        self._gain_mode = "slow_attack"
        self._rx_gain = 71.0
        self._tx_gain = -10.0
        self.rx_buffer_size = 1024
        self._tx_cyclic = False
        self._txbuf: np.ndarray | None = None   # int16 codes pushed, complex
        self._rxbuf: bool | None = None
        self._tx_buffer_size = 0
        self._air: np.ndarray = np.zeros(0, complex)   # what the RX front end sees, ±1 = RX full scale
        self._air_cyclic = False
        self._air_pos = 0
        self._stale_air: np.ndarray | None = None
        self._stale_reads = 0
        self._transient_reads = 0
        self._loopback = 0
        self.closed = False

    # ------------------------------------------------------------------ attributes (same names as adi.Pluto)
    @property
    def ctx(self) -> _FakeContext:
        return self._ctx

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @sample_rate.setter
    def sample_rate(self, rate: float) -> None:
        if rate < 521e3:
            raise ValueError("Error: Does not currently support sample rates below 521e3")
        self._sample_rate = int(rate)
        self._air_changed()

    @property
    def rx_lo(self) -> int:
        return self._rx_lo

    @rx_lo.setter
    def rx_lo(self, value: int) -> None:
        self._rx_lo = int(value)
        self._air_changed()

    @property
    def tx_lo(self) -> int:
        return self._tx_lo

    @tx_lo.setter
    def tx_lo(self, value: int) -> None:
        self._tx_lo = int(value)
        self._air_changed()

    @property
    def rx_rf_bandwidth(self) -> int:
        return self._rx_bw

    @rx_rf_bandwidth.setter
    def rx_rf_bandwidth(self, value: int) -> None:
        self._rx_bw = int(value)

    @property
    def tx_rf_bandwidth(self) -> int:
        return self._tx_bw

    @tx_rf_bandwidth.setter
    def tx_rf_bandwidth(self, value: int) -> None:
        self._tx_bw = int(value)

    @property
    def gain_control_mode_chan0(self) -> str:
        return self._gain_mode

    @gain_control_mode_chan0.setter
    def gain_control_mode_chan0(self, value: str) -> None:
        if value not in ("manual", "slow_attack", "fast_attack", "hybrid"):
            raise OSError(errno.EINVAL, "Invalid argument")
        self._gain_mode = value

    @property
    def rx_hardwaregain_chan0(self) -> float:
        return self._rx_gain

    @rx_hardwaregain_chan0.setter
    def rx_hardwaregain_chan0(self, value: float) -> None:
        if self.gain_control_mode_chan0 == "manual":   # the real setter's silent no-op otherwise
            self._rx_gain = float(np.clip(round(value), -3, 71))
            self._air_changed()

    @property
    def tx_hardwaregain_chan0(self) -> float:
        return self._tx_gain

    @tx_hardwaregain_chan0.setter
    def tx_hardwaregain_chan0(self, value: float) -> None:
        self._tx_gain = float(np.clip(round(value * 4) / 4, -89.75, 0.0))
        self._air_changed()

    @property
    def loopback(self) -> int:
        return self._loopback

    @loopback.setter
    def loopback(self, value: int) -> None:
        if value not in (0, 1, 2):
            raise OSError(errno.EINVAL, "Invalid argument")
        self._loopback = int(value)
        self._air_changed()

    @property
    def tx_cyclic_buffer(self) -> bool:
        return self._tx_cyclic

    @tx_cyclic_buffer.setter
    def tx_cyclic_buffer(self, value: bool) -> None:
        if self._txbuf is not None:
            raise Exception("TX buffer exists; buffer must be destroyed then recreated to modify tx_cyclic_buffer")
        self._tx_cyclic = bool(value)

    # ------------------------------------------------------------------ buffers
    def tx(self, data_np: np.ndarray) -> None:
        if self._txbuf is not None and self._tx_cyclic:
            raise Exception("TX buffer has been submitted in cyclic mode. "
                            "To push more data the tx buffer must be destroyed first.")
        data_np = np.asarray(data_np)
        codes = np.real(data_np).astype(np.int16) + 1j * np.imag(data_np).astype(np.int16)
        if self._txbuf is None:
            self._tx_buffer_size = len(codes)
        if len(codes) != self._tx_buffer_size:
            raise Exception("Buffer length different than data length. Cannot change buffer length on the fly")
        self._txbuf = codes
        burst = codes / _TX_FULL_SCALE
        if self.channel is not None and self._loopback != 1:
            burst = np.asarray(self.channel(burst), dtype=complex)
        self._air_changed()
        self._air = burst
        self._air_cyclic = self._tx_cyclic
        self._air_pos = int(self._rng.integers(len(self._air))) if self._tx_cyclic else 0

    def tx_destroy_buffer(self) -> None:
        self._txbuf = None
        self._air_changed()
        self._air = np.zeros(0, complex)

    def rx_destroy_buffer(self) -> None:
        self._rxbuf = None
        self._stale_reads = 0

    def rx(self) -> np.ndarray:
        n = int(self.rx_buffer_size)
        if n / self._sample_rate * 1000 > self._ctx.timeout_ms:
            raise OSError(errno.ETIMEDOUT, "Connection timed out")
        if self._rxbuf is None:
            self._rxbuf = True
            self._transient_reads = self.transient_buffers
            self._stale_reads = 0
        if self._transient_reads > 0:
            self._transient_reads -= 1
            signal = np.full(n, 0.6 + 0.6j)   # front-end settling: a large DC step
        elif self._stale_reads > 0:
            self._stale_reads -= 1
            signal = np.resize(self._stale_air, n) if self._stale_air.size else np.zeros(n, complex)
            signal = signal * self._link_gain
        else:
            signal = self._next_air(n) * self._link_gain
        noise_rms = 0.0 if self._loopback == 1 else self.noise_rms_codes
        noise = self._rng.normal(scale=noise_rms, size=(2, n))
        codes = np.round(signal * _RX_FULL_SCALE + noise[0] + 1j * noise[1])
        codes = np.clip(codes.real, -2048, 2047) + 1j * np.clip(codes.imag, -2048, 2047)
        return codes.astype(np.complex128)

    @property
    def _link_gain(self) -> float:
        if self._loopback == 1:   # digital loopback: TX codes straight back, 16-bit → 12-bit
            return 1.0
        return 10 ** ((self._tx_gain + self._rx_gain - self.path_loss_db) / 20)

    def _next_air(self, n: int) -> np.ndarray:
        air = self._air
        if air.size == 0:
            return np.zeros(n, complex)
        if self._air_cyclic:
            idx = (self._air_pos + np.arange(n)) % air.size
            self._air_pos = (self._air_pos + n) % air.size
            return air[idx]
        out = np.zeros(n, complex)
        chunk = air[self._air_pos:self._air_pos + n]
        out[:chunk.size] = chunk
        self._air_pos += n
        if self._air_pos >= air.size:        # burst played out, DAC starved
            self._xflow |= _TX_UNDERFLOW
            self._air = np.zeros(0, complex)
        return out

    def _air_changed(self) -> None:
        """Blocks already queued in the kernel keep what was in the air before a change."""
        if self._rxbuf is not None and not self._stale_reads:
            self._stale_air = self._air.copy()
            self._stale_reads = self._rxadc.kernel_buffers_count

    # ------------------------------------------------------------------ fake-only helpers
    def inject_overflow(self) -> None:
        """Fake only: flag an RX overflow in register 0x80000088, as a late ``rx()`` would."""
        self._xflow |= _RX_OVERFLOW

    def close(self) -> None:
        self.closed = True
        self._txbuf = None
        self._rxbuf = None

    def __enter__(self) -> FakePluto:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
