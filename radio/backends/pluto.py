"""ADALM-Pluto through pyadi-iio: :class:`PlutoBackend` and its :class:`PlutoConfig`.

pyadi-iio is imported only when a backend is opened without a ``device`` (so the rest of the project
runs without it). The backend handles the quirks of the real device (``sdr-phy-facts.md`` §1.6):

* gain control mode is set to ``manual`` *before* the RX gain (the setter is a silent no-op
  otherwise) and the gain is read back;
* unit-power complex64 bursts are scaled to DAC codes (peak → 2^14, or RMS with a back-off and a
  clipping guard that counts clipped samples), rounded, and handed over as integer-valued values
  (pyadi casts with ``astype(int16)``, so unscaled floats would become 0/±1 codes and overflow wraps);
* bursts go out in a cyclic TX buffer, destroyed before every update (a cyclic buffer cannot be
  pushed twice, and its length is frozen);
* after any (re)configuration, new TX burst or buffer resize the RX buffer is destroyed and
  ``flush_buffers`` reads are discarded (kernel blocks hold stale samples, the first block after
  creation a transient);
* ``rx_buffer_size`` changes only with the buffer destroyed first; the kernel block count is set
  before the buffer is created;
* the libiio timeout is raised for captures longer than the default 5 s;
* RX overflow and TX underflow are read from DMA status register 0x80000088 after every capture,
  cleared by writing the bits back, and counted;
* raw ±2048 RX codes (complex128) are returned as complex64 with ±1.0 = ADC full scale;
* with a calibration profile (``profile``: a profile file of :mod:`radio.device_profile`, looked up by
  ``profile_key`` — the device serial — then by URI) every capture has its DC offset and IQ imbalance
  removed and its carrier offset corrected (``cfo_correction``: ``digital`` derotation, ``lo`` trim of the
  RX LO, or ``off``), and :attr:`PlutoBackend.expected_snr_db` predicts the SNR from the gains.

Example with the fake device used in CI (a real Pluto: leave out ``device``)::

    >>> import numpy as np
    >>> from radio.backends import FakePluto, PlutoBackend, PlutoConfig
    >>> cfg = PlutoConfig(uri="ip:192.168.2.1", sample_rate_hz=3.84e6, center_frequency_hz=915e6)
    >>> with PlutoBackend(cfg, device=FakePluto(seed=1)) as radio:
    ...     radio.transmit(np.exp(2j * np.pi * 0.01 * np.arange(1000)).astype(np.complex64))
    ...     rx = radio.receive(4000)
    >>> rx.dtype, rx.shape, radio.gains
    (dtype('complex64'), (4000,), {'tx_gain_db': -30.0, 'rx_gain_db': 30.0})
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.tomlconfig import ConfigError, TomlConfig
from radio.backends.base import (
    BackendError,
    PeerTimeout,
    RadioBackend,
    as_iq,
    check_num_samples,
)
from radio.device_profile import DeviceProfile, correct_dc_iq, derotate, find_profile

XFLOW_STATUS_REG = 0x80000088
"""ADI DMA status register: bit 2 RX overflow, bit 0 TX underflow; write the bits back to clear."""
RX_OVERFLOW_BIT = 0x4
TX_UNDERFLOW_BIT = 0x1
DAC_FULL_SCALE = 2**15      # TX int16 codes, 12-bit DAC MSB-aligned
ADC_FULL_SCALE = 2048.0     # RX codes, 12-bit LSB-aligned
_GAIN_MODES = ("manual", "slow_attack", "fast_attack", "hybrid")
_CFO_CORRECTIONS = ("digital", "lo", "off")


@dataclass
class PlutoConfig(TomlConfig):
    """Settings of one Pluto.

    Attributes:
        uri: libiio URI (``ip:192.168.2.1``, ``usb:1.2.5``, ``ip:pluto.local``).
        sample_rate_hz: RX/TX baseband rate (≥ 521e3; ≤ ~5e6 sustained over USB 2.0).
        center_frequency_hz: RX and TX LO, Hz (325 MHz–3.8 GHz guaranteed).
        rf_bandwidth_hz: analog filter bandwidth; 0 means equal to the sample rate.
        rx_gain_db: RX gain (−3…71 dB), applied in ``manual`` mode.
        tx_gain_db: TX gain = −attenuation (−89.75…0 dB, 0.25 dB steps).
        gain_control_mode: ``manual`` (default) or an AGC mode.
        tx_scaling: ``peak`` (burst peak |I| or |Q| → ``tx_peak_code``) or ``rms``.
        tx_peak_code: DAC code the burst peak maps to in ``peak`` mode (customary 2^14).
        tx_rms_backoff_db: ``rms`` mode: RMS of I/Q-magnitude this far below 2^15; peaks beyond
            ±32767 are clipped and counted.
        cyclic_tx: repeat each burst until the next one (burst frames); False: play it once.
        flush_buffers: RX reads discarded after each (re)configuration.
        kernel_buffers: libiio kernel blocks for RX (more survive higher rates without duplicates).
        min_timeout_s: lowest libiio timeout; raised to 2× the capture length + 1 s when longer.
        loopback: 0 off, 1 digital (BIST, no RF), 2 RF loopback.
        profile: calibration profile file (TOML, :mod:`radio.device_profile`); "" for none.
        profile_key: the device's key in that file (its serial); "" looks it up by ``uri``.
        cfo_correction: how the profile's oscillator offset is removed: ``digital`` (derotate each
            capture), ``lo`` (tune the RX LO by the offset) or ``off``.
    """

    uri: str = "ip:192.168.2.1"
    sample_rate_hz: float = 3.84e6
    center_frequency_hz: float = 915e6
    rf_bandwidth_hz: float = 0.0
    rx_gain_db: float = 30.0
    tx_gain_db: float = -30.0
    gain_control_mode: str = "manual"
    tx_scaling: str = "peak"
    tx_peak_code: float = 2.0**14
    tx_rms_backoff_db: float = 12.0
    cyclic_tx: bool = True
    flush_buffers: int = 2
    kernel_buffers: int = 4
    min_timeout_s: float = 5.0
    loopback: int = 0
    profile: str = ""
    profile_key: str = ""
    cfo_correction: str = "digital"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.sample_rate_hz < 521e3 or self.sample_rate_hz > 61.44e6:
            raise ConfigError(f"sample_rate_hz must be in [521e3, 61.44e6] for a Pluto, got {self.sample_rate_hz}")
        if not 70e6 <= self.center_frequency_hz <= 6e9:
            raise ConfigError(f"center_frequency_hz must be in [70e6, 6e9], got {self.center_frequency_hz}")
        if self.rf_bandwidth_hz < 0:
            raise ConfigError("rf_bandwidth_hz must be ≥ 0 (0 = sample rate)")
        if not -3 <= self.rx_gain_db <= 71:
            raise ConfigError(f"rx_gain_db must be in [-3, 71], got {self.rx_gain_db}")
        if not -89.75 <= self.tx_gain_db <= 0:
            raise ConfigError(f"tx_gain_db must be in [-89.75, 0] (it is an attenuation), got {self.tx_gain_db}")
        if self.gain_control_mode not in _GAIN_MODES:
            raise ConfigError(f"gain_control_mode must be one of {_GAIN_MODES}, got {self.gain_control_mode!r}")
        if self.tx_scaling not in ("peak", "rms"):
            raise ConfigError(f"tx_scaling must be 'peak' or 'rms', got {self.tx_scaling!r}")
        if not 0 < self.tx_peak_code < DAC_FULL_SCALE:
            raise ConfigError(f"tx_peak_code must be in (0, 32768), got {self.tx_peak_code}")
        if self.tx_rms_backoff_db < 0:
            raise ConfigError("tx_rms_backoff_db must be ≥ 0")
        if self.flush_buffers < 0 or not 1 <= self.kernel_buffers <= 64:
            raise ConfigError("flush_buffers must be ≥ 0 and kernel_buffers in [1, 64]")
        if self.min_timeout_s <= 0:
            raise ConfigError("min_timeout_s must be positive")
        if self.loopback not in (0, 1, 2):
            raise ConfigError("loopback must be 0 (off), 1 (digital) or 2 (RF)")
        if self.cfo_correction not in _CFO_CORRECTIONS:
            raise ConfigError(f"cfo_correction must be one of {_CFO_CORRECTIONS}, got {self.cfo_correction!r}")


def scale_for_dac(iq: np.ndarray, cfg: PlutoConfig) -> tuple[np.ndarray, int]:
    """Unit-power complex burst → integer-valued complex128 DAC codes, and the number of clipped samples.

    ``peak``: the largest |I| or |Q| of the burst maps to ``cfg.tx_peak_code`` (never clips).
    ``rms``: the burst RMS maps to 2^15 · 10^(−backoff/20); I and Q beyond ±32767 are clipped.
    """
    iq = iq.astype(np.complex128)
    if cfg.tx_scaling == "peak":
        peak = max(np.abs(iq.real).max(), np.abs(iq.imag).max())
        scale = cfg.tx_peak_code / peak if peak > 0 else 0.0
    else:
        rms = np.sqrt(np.mean(np.abs(iq) ** 2))
        scale = DAC_FULL_SCALE * 10 ** (-cfg.tx_rms_backoff_db / 20) / rms if rms > 0 else 0.0
    codes = np.round(iq * scale)
    limit = DAC_FULL_SCALE - 1
    clipped = int(np.count_nonzero((np.abs(codes.real) > limit) | (np.abs(codes.imag) > limit)))
    codes = np.clip(codes.real, -limit, limit) + 1j * np.clip(codes.imag, -limit, limit)
    return codes, clipped


class PlutoBackend(RadioBackend):
    """One ADALM-Pluto (or a :class:`~radio.backends.FakePluto`) behind :class:`RadioBackend`.

    Args:
        cfg: device settings.
        device: an ``adi.Pluto``-like object; default opens ``adi.Pluto(cfg.uri)``.
    """

    device = "pluto"

    def __init__(self, cfg: PlutoConfig, device: Any | None = None) -> None:
        self.cfg = cfg
        self.profile: DeviceProfile | None = (find_profile(cfg.profile, serial=cfg.profile_key, uri=cfg.uri)
                                              if cfg.profile else None)
        if device is None:
            device = _open_pluto(cfg.uri)
        self._sdr = device
        self._counters = {"bursts": 0, "captures": 0, "flushed_buffers": 0, "tx_clipped_samples": 0,
                          "rx_overflows": 0, "tx_underflows": 0}
        self._rx_size: int | None = None
        self._tx_active = False
        self._timeout_ms: int | None = None
        self._closed = False
        try:
            device.sample_rate = int(cfg.sample_rate_hz)
            bandwidth = int(cfg.rf_bandwidth_hz or cfg.sample_rate_hz)
            device.rx_rf_bandwidth = bandwidth
            device.tx_rf_bandwidth = bandwidth
            device.loopback = cfg.loopback
        except (ValueError, OSError) as exc:
            raise BackendError(f"Pluto {cfg.uri} refused the configuration: {exc}") from exc
        self._center_hz = 0.0
        self.tune(cfg.center_frequency_hz)
        self.set_gains(rx_gain_db=cfg.rx_gain_db, tx_gain_db=cfg.tx_gain_db)
        self._clear_xflow()

    # ------------------------------------------------------------------ settings
    @property
    def sample_rate_hz(self) -> float:
        return float(self._sdr.sample_rate)

    @property
    def center_frequency_hz(self) -> float:
        return self._center_hz

    @property
    def gains(self) -> dict[str, float]:
        return {"tx_gain_db": float(self._sdr.tx_hardwaregain_chan0),
                "rx_gain_db": float(self._sdr.rx_hardwaregain_chan0)}

    @property
    def expected_snr_db(self) -> float:
        """SNR (dB) the profile's gain→SNR map predicts at the current gains; NaN without a map."""
        if self.profile is None:
            return float("nan")
        gains = self.gains
        return self.profile.expected_snr_db(gains["tx_gain_db"], gains["rx_gain_db"])

    def tune(self, center_frequency_hz: float) -> None:
        """Set both LOs (the RX LO trimmed by the profile's offset with ``cfo_correction="lo"``); the
        next capture is flushed."""
        trim = self.profile.cfo_hz(center_frequency_hz) if self.profile and self.cfg.cfo_correction == "lo" else 0.0
        self._sdr.rx_lo = round(center_frequency_hz + trim)
        self._sdr.tx_lo = int(center_frequency_hz)
        self._center_hz = float(center_frequency_hz)
        self._stale = True

    def set_gains(self, *, rx_gain_db: float | None = None, tx_gain_db: float | None = None) -> None:
        """Set the gain mode first, then the RX gain (checked by reading it back), then the TX gain."""
        sdr = self._sdr
        sdr.gain_control_mode_chan0 = self.cfg.gain_control_mode
        if rx_gain_db is not None and self.cfg.gain_control_mode == "manual":
            sdr.rx_hardwaregain_chan0 = float(rx_gain_db)
            actual = float(sdr.rx_hardwaregain_chan0)
            if abs(actual - rx_gain_db) > 1.0:
                raise BackendError(f"RX gain did not take: asked {rx_gain_db} dB, device reports {actual} dB "
                                   f"(gain mode {sdr.gain_control_mode_chan0!r})")
        if tx_gain_db is not None:
            sdr.tx_hardwaregain_chan0 = float(tx_gain_db)
        self._stale = True

    # ------------------------------------------------------------------ data
    def transmit(self, iq: np.ndarray) -> None:
        """Scale to DAC codes and (re)start the TX buffer with this burst (cyclic unless configured off)."""
        self._check_open()
        codes, clipped = scale_for_dac(as_iq(iq), self.cfg)
        sdr = self._sdr
        if self._tx_active:
            sdr.tx_destroy_buffer()     # cyclic data can only be replaced by destroying the buffer
        sdr.tx_cyclic_buffer = self.cfg.cyclic_tx
        sdr.tx(codes)
        self._tx_active = True
        self._stale = True
        self._counters["bursts"] += 1
        self._counters["tx_clipped_samples"] += clipped

    def receive(self, num_samples: int) -> np.ndarray:
        """Capture ``num_samples`` samples; complex64 with ±1.0 = ADC full scale (2048 codes), corrected
        by the calibration profile when there is one."""
        self._check_open()
        n = check_num_samples(num_samples)
        sdr = self._sdr
        if n != self._rx_size:
            sdr.rx_destroy_buffer()     # the size only applies when the buffer is created
            sdr.rx_buffer_size = n
            self._rx_size = n
            self._stale = True
        timeout_ms = int(1000 * max(self.cfg.min_timeout_s, 2 * n / self.cfg.sample_rate_hz + 1.0))
        if timeout_ms != self._timeout_ms:
            sdr.ctx.set_timeout(timeout_ms)
            self._timeout_ms = timeout_ms
        try:
            if self._stale:
                sdr.rx_destroy_buffer()
                sdr._rxadc.set_kernel_buffers_count(self.cfg.kernel_buffers)
                for _ in range(self.cfg.flush_buffers):
                    sdr.rx()
                self._counters["flushed_buffers"] += self.cfg.flush_buffers
                self._stale = False
            raw = sdr.rx()
        except OSError as exc:
            if exc.errno == errno.ETIMEDOUT:
                raise PeerTimeout(f"Pluto {self.cfg.uri}: capture of {n} samples timed out "
                                  f"after {timeout_ms} ms") from exc
            raise BackendError(f"Pluto {self.cfg.uri}: capture failed: {exc}") from exc
        self._counters["captures"] += 1
        self._poll_xflow()
        iq = (np.asarray(raw) / ADC_FULL_SCALE).astype(np.complex64)
        return iq if self.profile is None else self._correct(iq)

    def _correct(self, iq: np.ndarray) -> np.ndarray:
        p = self.profile
        iq = correct_dc_iq(iq, p.dc_offset, p.iq_amplitude_db, p.iq_phase_deg)
        if self.cfg.cfo_correction == "digital" and p.oscillator_ppm:
            iq = derotate(iq, p.cfo_hz(self._center_hz), self.sample_rate_hz)
        return iq

    # ------------------------------------------------------------------ status
    def _poll_xflow(self) -> None:
        rx_status = self._sdr._rxadc.reg_read(XFLOW_STATUS_REG)
        tx_status = self._sdr._txdac.reg_read(XFLOW_STATUS_REG)
        if rx_status & RX_OVERFLOW_BIT:
            self._counters["rx_overflows"] += 1
        if tx_status & TX_UNDERFLOW_BIT:
            self._counters["tx_underflows"] += 1
        self._clear_xflow(rx_status, tx_status)

    def _clear_xflow(self, rx_status: int = RX_OVERFLOW_BIT, tx_status: int = TX_UNDERFLOW_BIT) -> None:
        if rx_status & RX_OVERFLOW_BIT:
            self._sdr._rxadc.reg_write(XFLOW_STATUS_REG, RX_OVERFLOW_BIT)
        if tx_status & TX_UNDERFLOW_BIT:
            self._sdr._txdac.reg_write(XFLOW_STATUS_REG, TX_UNDERFLOW_BIT)

    @property
    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def describe(self) -> dict[str, object]:
        meta = {**super().describe(), "uri": self.cfg.uri, "gain_control_mode": self.cfg.gain_control_mode,
                "tx_scaling": self.cfg.tx_scaling, "adc_full_scale_codes": ADC_FULL_SCALE}
        if self.profile is not None:
            meta["calibration_profile"] = {"file": self.cfg.profile, "serial": self.profile.serial,
                                           "date": self.profile.date, "cfo_correction": self.cfg.cfo_correction}
        return meta

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError("Pluto backend is closed")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sdr.tx_destroy_buffer()
        self._sdr.rx_destroy_buffer()
        self._sdr.close()


def _open_pluto(uri: str) -> Any:
    try:
        import adi  # lazy: only the Pluto backend needs pyadi-iio and libiio
    except ImportError as exc:
        raise BackendError("the Pluto backend needs pyadi-iio and libiio: pip install '.[sdr]' "
                           "and apt-get install libiio0") from exc
    try:
        return adi.Pluto(uri)
    except Exception as exc:  # pyadi raises bare Exception("No device found")
        raise BackendError(f"cannot open a Pluto at {uri!r}: {exc}") from exc
