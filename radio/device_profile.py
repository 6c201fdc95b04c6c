"""Per-device calibration profiles: the data format, the file of profiles, and the corrections.

A *profile* is what the routines of ``calibration/`` measured on one radio (a Pluto, or an emulator
configured to impersonate one). The radio layer owns the format and applies it; ``calibration/``
only measures and writes it (``radio`` never imports ``calibration``).

A *profile file* is TOML with one table per device, keyed by the device serial (``iio_attr -C
hw_serial``) or, failing that, its libiio URI::

    ["104473dc5993000b0b002500f5e1b5e1c3"]        # serial
    date = "2026-11-30"
    firmware = "v0.39"
    oscillator_ppm = 3.81                          # RX LO offset against the TX reference
    dc_offset_i = 0.0012                           # full-scale units (±1 = ±2048 ADC codes)
    ...
    [ "104473dc5993000b0b002500f5e1b5e1c3".conditions ]
    center_frequency_hz = 915e6
    link = "SMA cable + 30 dB attenuator"

Corrections the Pluto backend applies on its own when ``PlutoConfig.profile`` names a file
(:func:`correct_dc_iq`, :func:`derotate`, :meth:`DeviceProfile.expected_snr_db`), and the emulator
settings that impersonate the device (:meth:`DeviceProfile.impairments`,
:meth:`DeviceProfile.emulator_config`).

>>> p = DeviceProfile(oscillator_ppm=2.0, iq_amplitude_db=0.3, gain_snr_offset_db=45.0)
>>> p.impairments().cfo_ppm, p.expected_snr_db(tx_gain_db=-30.0, rx_gain_db=30.0)
(2.0, 15.0)
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tomli_w

from common.tomlconfig import ConfigError, TomlConfig
from radio.errors import RadioError
from radio.impairments import Impairments

if TYPE_CHECKING:
    from radio.emulator import EmulatorConfig


class ProfileNotFound(RadioError, ConfigError):
    """No profile in the file under the device's serial or URI."""


@dataclass
class MeasurementConditions(TomlConfig):
    """Under which conditions a profile was measured (it is valid near them).

    Attributes:
        center_frequency_hz: LO frequency, Hz.
        sample_rate_hz: baseband sample rate, samples/s.
        tx_gain_db, rx_gain_db: device gains during the measurement (DC offset and the gain→SNR
            offset depend on them); None for a backend without gains.
        link: what connected TX and RX ("SMA cable + 30 dB attenuator", "two devices, 1 m", "emulator").
        backend: the backend the routines ran on ("pluto", "emulator").
        temperature_c: board temperature if read (``ad9361-phy`` ``temp0``); None when unknown.
    """

    center_frequency_hz: float = 915e6
    sample_rate_hz: float = 3.84e6
    tx_gain_db: float | None = -30.0
    rx_gain_db: float | None = 30.0
    link: str = ""
    backend: str = ""
    temperature_c: float | None = None


@dataclass
class DeviceProfile(TomlConfig):
    """What calibration measured on one device (read-only once built, like every config: update with
    ``replace``). Every field defaults to "no correction"; None means "not measured".

    Attributes:
        serial: device serial (``hw_serial`` of the libiio context); "" when unknown.
        uri: libiio URI used during calibration.
        date: ISO date of the measurement.
        firmware: device firmware version (``fw_version`` of the libiio context).
        conditions: measurement conditions.
        oscillator_ppm: carrier offset of what this device receives, in ppm of the carrier
            (``cfo_hz = oscillator_ppm · 1e-6 · f_c``; the received signal is ``x · e^{+j2π cfo_hz t}``),
            the convention of :class:`radio.Impairments` ``cfo_ppm``.
        dc_offset_i, dc_offset_q: DC offset of the received samples at the calibration gains, in the
            backend's units (Pluto: ±1.0 = ADC full scale).
        dc_offset_dbc: DC power relative to the received signal power, dB (None: not measured).
        iq_amplitude_db, iq_phase_deg: IQ imbalance, model ``y = K1 x + K2 x*`` of :mod:`radio.impairments`.
        loopback_delay_samples: delay from a burst's first sample to its arrival in the received stream,
            samples (fractional part: group delay of the filters and cable).
        gain_snr_offset_db, gain_snr_slope: linear region of the gain→SNR map at the RX gain of
            ``conditions``: ``snr_db = gain_snr_offset_db + gain_snr_slope · tx_gain_db``; offset None: not
            measured.
        gain_snr_tx_range_db: TX gains (lo, hi) over which the linear fit holds.
        snr_bias_db: mean (receiver SNR estimate − reference), dB.
        delay_spread_bias_s: mean (receiver delay-spread estimate − reference), s.
    """

    serial: str = ""
    uri: str = ""
    date: str = ""
    firmware: str = ""
    conditions: MeasurementConditions = field(default_factory=MeasurementConditions)
    oscillator_ppm: float = 0.0
    dc_offset_i: float = 0.0
    dc_offset_q: float = 0.0
    dc_offset_dbc: float | None = None
    iq_amplitude_db: float = 0.0
    iq_phase_deg: float = 0.0
    loopback_delay_samples: float = 0.0
    gain_snr_offset_db: float | None = None
    gain_snr_slope: float = 1.0
    gain_snr_tx_range_db: tuple[float, float] = (-89.75, 0.0)
    snr_bias_db: float = 0.0
    delay_spread_bias_s: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if abs(self.oscillator_ppm) > 1000:
            raise ConfigError(f"oscillator_ppm must be within ±1000, got {self.oscillator_ppm}")
        if abs(self.iq_phase_deg) >= 45:
            raise ConfigError(f"iq_phase_deg must be within ±45, got {self.iq_phase_deg}")
        if self.gain_snr_offset_db is not None and not 0.1 <= self.gain_snr_slope <= 10:
            raise ConfigError(f"gain_snr_slope must be in [0.1, 10] dB/dB, got {self.gain_snr_slope}")

    @property
    def dc_offset(self) -> complex:
        return complex(self.dc_offset_i, self.dc_offset_q)

    def cfo_hz(self, center_frequency_hz: float) -> float:
        """Carrier offset this device sees at ``center_frequency_hz``, Hz."""
        return self.oscillator_ppm * 1e-6 * center_frequency_hz

    def expected_snr_db(self, tx_gain_db: float, rx_gain_db: float | None = None) -> float:
        """SNR (dB, per used subcarrier) the gain→SNR map predicts; NaN if it was not measured.

        ``rx_gain_db`` must be the RX gain of the calibration (the map holds at that RX gain only).
        """
        if self.gain_snr_offset_db is None:
            return math.nan
        if rx_gain_db is not None and self.conditions.rx_gain_db is not None \
                and abs(rx_gain_db - self.conditions.rx_gain_db) > 0.5:
            raise ConfigError(f"the gain→SNR map was measured at rx_gain_db={self.conditions.rx_gain_db}, "
                              f"not {rx_gain_db}: recalibrate at that RX gain")
        return self.gain_snr_offset_db + self.gain_snr_slope * tx_gain_db

    def tx_gain_for_snr(self, snr_db: float) -> float:
        """TX gain (dB) that hits ``snr_db`` at the calibration RX gain, clipped to the fitted range."""
        if self.gain_snr_offset_db is None:
            raise ConfigError("this profile has no gain→SNR map: run `dekag-testbed calibrate gain-snr`")
        lo, hi = self.gain_snr_tx_range_db
        return float(min(max((snr_db - self.gain_snr_offset_db) / self.gain_snr_slope, lo), hi))

    def impairments(self, base: Impairments | None = None) -> Impairments:
        """Emulator impairments that impersonate this device: CFO, IQ imbalance and DC offset as
        measured (switched on when non-zero); everything else from ``base``."""
        base = base or Impairments()
        return replace(base, cfo=self.oscillator_ppm != 0, cfo_ppm=self.oscillator_ppm,
                       iq_imbalance=bool(self.iq_amplitude_db or self.iq_phase_deg),
                       iq_amplitude_db=self.iq_amplitude_db, iq_phase_deg=self.iq_phase_deg,
                       dc_offset=self.dc_offset_dbc is not None,
                       dc_offset_dbc=base.dc_offset_dbc if self.dc_offset_dbc is None else self.dc_offset_dbc)

    def emulator_config(self, tx_gain_db: float | None = None, **kwargs: Any) -> EmulatorConfig:
        """An :class:`radio.emulator.EmulatorConfig` impersonating this device: its impairments, its
        carrier frequency and, given ``tx_gain_db``, the SNR its gain→SNR map predicts. ``kwargs``
        override any other field (``profile``, ``delay_spread_s``, ``seed`` ...)."""
        from radio.emulator import EmulatorConfig

        values: dict[str, Any] = {"carrier_frequency_hz": self.conditions.center_frequency_hz,
                                  "impairments": self.impairments(kwargs.pop("impairments", None))}
        if tx_gain_db is not None:
            values["snr_db"] = self.expected_snr_db(tx_gain_db)
        return EmulatorConfig(**{**values, **kwargs})


# ---------------------------------------------------------------------------------------------- the file

def load_profiles(path: str | Path) -> dict[str, DeviceProfile]:
    """Every profile of a profile file, by key (serial or URI). A missing file holds none."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    out = {}
    for key, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: top-level {key!r} must be a table (one per device serial or URI)")
        try:
            out[key] = DeviceProfile.from_dict(table)
        except ConfigError as exc:
            raise ConfigError(f"{path}: [{key}] {exc}") from None
    return out


def save_profile(path: str | Path, profile: DeviceProfile, key: str | None = None) -> str:
    """Write (or replace) ``profile`` under ``key`` (default: its serial, else its URI) in the file,
    keeping the other devices' profiles. Returns the key."""
    key = key or profile.serial or profile.uri
    if not key:
        raise ConfigError("a profile needs a key: give its serial, its URI or key=")
    path = Path(path)
    profiles = load_profiles(path)
    profiles[key] = profile
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps({k: p.to_dict() for k, p in profiles.items()}))
    return key


def find_profile(path: str | Path, *, serial: str = "", uri: str = "") -> DeviceProfile:
    """The profile of a device: looked up by ``serial`` first, then by ``uri``.

    Raises:
        ProfileNotFound: neither key is in the file (the message lists the keys it holds).
    """
    profiles = load_profiles(path)
    for key in (serial, uri):
        if key and key in profiles:
            return profiles[key]
    raise ProfileNotFound(f"{path}: no profile for serial {serial!r} or URI {uri!r}; "
                          f"it holds {sorted(profiles) or 'none'} — run `dekag-testbed calibrate` for this device")



# ---------------------------------------------------------------------------------------------- corrections

def correct_dc_iq(y: np.ndarray, dc: complex, amplitude_db: float, phase_deg: float) -> np.ndarray:
    """Undo a DC offset then an IQ imbalance (``y = K1 x + K2 x* + dc``, :func:`radio.impairments.iq_imbalance`).

    Args:
        y: ``[n]`` received samples.
        dc: the DC offset in the units of ``y``.
        amplitude_db, phase_deg: the imbalance to undo.

    Returns:
        ``[n]`` complex64 ``x = (K1* (y − dc) − K2 (y − dc)*) / (|K1|² − |K2|²)``.
    """
    g = 10 ** (amplitude_db / 20)
    phi = math.radians(phase_deg)
    k1 = (1 + g * np.exp(-1j * phi)) / 2
    k2 = (1 - g * np.exp(1j * phi)) / 2
    z = np.asarray(y, np.complex128) - dc
    return ((np.conj(k1) * z - k2 * np.conj(z)) / (abs(k1) ** 2 - abs(k2) ** 2)).astype(np.complex64)


def derotate(y: np.ndarray, cfo_hz: float, sample_rate_hz: float) -> np.ndarray:
    """Remove a carrier offset from one capture: ``[n]`` complex64 ``y[n] · e^{−j2π cfo_hz n / fs}``.
    The phase at ``n = 0`` is left as it is (the receiver estimates a common phase per frame anyway)."""
    turns = np.mod(cfo_hz / sample_rate_hz * np.arange(len(y)), 1.0)   # one turn kept exact in float64
    return (np.asarray(y) * np.exp(-2j * np.pi * turns)).astype(np.complex64)
