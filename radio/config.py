"""Frame numerology and format (:class:`FrameConfig`) and receiver settings (:class:`ReceiverConfig`).

Numerologies are named presets (:mod:`radio.numerology`). The default (``"narrow"``) fits an ADALM-Pluto
over USB 2.0 (≤ 5 MS/s sustained): 3.84 MS/s, 128-point FFT
(30 kHz subcarrier spacing), 96 used subcarriers around a null DC (2.88 MHz occupied), a 16-sample
(4.17 µs) cyclic prefix. The CP covers the excess delay of the 3GPP TDL profiles up to about 430 ns
RMS delay spread (TDL-A, the longest normalised profile, has its last tap at 9.66 × the RMS delay
spread). The preamble's long training symbols carry a longer guard (``preamble_cp_length``, 64
samples = 16.7 µs) so channel, noise and delay spread are still measured cleanly beyond the data CP.
See ``docs/frame_format.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from common.tomlconfig import ConfigError, TomlConfig
from radio.numerology import CUSTOM, PRESETS

_CUSTOM_ID = 15
_PRESET_IDS = frozenset(p["numerology_id"] for p in PRESETS.values())


@dataclass
class FrameConfig(TomlConfig):
    """OFDM numerology and frame layout shared by transmitter, receiver and emulator.

    The numerology comes from a named preset (:mod:`radio.numerology`): ``FrameConfig(preset="wide-30.72")``
    or ``preset = "wide-30.72"`` in the TOML's ``[frame]`` section. Numerology fields left unset take the
    preset's values; setting one to another value is an error unless ``preset = "custom"`` (then unset
    fields take the narrow preset's values and ``numerology_id`` defaults to 15, an id no preset uses).

    Attributes:
        preset: preset name (``"narrow"`` id 0, ``"wide-7.68"`` 1, ``"wide-15.36"`` 2, ``"wide-30.72"`` 3)
            or ``"custom"``.
        sample_rate_hz: baseband sample rate in samples/s.
        fft_size: OFDM FFT size N (subcarrier spacing = sample_rate_hz / fft_size).
        cp_length: cyclic-prefix length in samples of header and payload symbols.
        num_used_subcarriers: active subcarriers, split evenly around DC (DC itself is never used).
        numerology_id: 4-bit id carried in the header (the preset's id) so a receiver can refuse a frame
            built with another numerology.
        pilot_spacing: every ``pilot_spacing``-th used subcarrier (counted from the lowest) is a
            pilot in every header and payload symbol (default 6: 16 pilots + 80 data subcarriers).
        preamble_cp_length: guard before the two long training symbols of the preamble (samples);
            channel, noise and delay spread are measured without ISI up to this excess delay.
        max_payload_symbols: largest payload a header may announce (≤ 2**20 - 1).
    """

    preset: str = "narrow"
    sample_rate_hz: float | None = None
    fft_size: int | None = None
    cp_length: int | None = None
    num_used_subcarriers: int | None = None
    numerology_id: int | None = None
    pilot_spacing: int | None = None
    preamble_cp_length: int | None = None
    max_payload_symbols: int = 2**20 - 1

    def __post_init__(self) -> None:
        if self.preset == CUSTOM:
            base = {**PRESETS["narrow"], "numerology_id": _CUSTOM_ID}
        elif self.preset in PRESETS:
            base = PRESETS[self.preset]
        else:
            raise ConfigError(f"unknown numerology preset {self.preset!r}; known: {sorted(PRESETS)} or {CUSTOM!r}")
        for name, value in base.items():
            given = getattr(self, name)
            if given is None:
                object.__setattr__(self, name, value)  # works for a frozen dataclass too
            elif self.preset != CUSTOM and given != value:
                raise ConfigError(f"{name}={given!r} conflicts with preset {self.preset!r} ({value!r}); "
                                  f"use preset = {CUSTOM!r} for a numerology of your own")
        self.validate()

    def validate(self) -> None:
        self.check_range("sample_rate_hz", 0.0, 1e10, open_low=True)
        if self.fft_size < 16 or self.fft_size & (self.fft_size - 1):
            raise ConfigError(f"fft_size must be a power of two ≥ 16, got {self.fft_size}")
        if not 0 < self.cp_length < self.fft_size or self.cp_length % 8:
            raise ConfigError(f"cp_length must be a multiple of 8 in (0, fft_size), got {self.cp_length}")
        if self.num_used_subcarriers % 4 or not 0 < self.num_used_subcarriers < self.fft_size - 8:
            raise ConfigError("num_used_subcarriers must be a multiple of 4 and leave ≥ 8 guard "
                              f"subcarriers, got {self.num_used_subcarriers}")
        if not 0 <= self.numerology_id < 16:
            raise ConfigError(f"numerology_id must fit 4 bits, got {self.numerology_id}")
        if self.preset == CUSTOM and self.numerology_id in _PRESET_IDS:
            raise ConfigError(f"a custom numerology needs an id no preset uses (not {sorted(_PRESET_IDS)}), "
                              f"got {self.numerology_id}")
        if not 2 <= self.pilot_spacing <= self.num_used_subcarriers // 4:
            raise ConfigError(f"pilot_spacing must be in [2, num_used_subcarriers/4], got {self.pilot_spacing}")
        if not 2 * self.cp_length <= self.preamble_cp_length <= self.fft_size or self.preamble_cp_length % 8:
            raise ConfigError("preamble_cp_length must be a multiple of 8 in [2 cp_length, fft_size], "
                              f"got {self.preamble_cp_length}")
        if not 1 <= self.max_payload_symbols <= 2**20 - 1:
            raise ConfigError(f"max_payload_symbols must be in [1, 2**20-1], got {self.max_payload_symbols}")

    @classmethod
    def at_sample_rate(cls, sample_rate_hz: float) -> FrameConfig:
        """The preset running at ``sample_rate_hz`` (S/s), else the narrow numerology at that rate (custom)."""
        for name, preset in PRESETS.items():
            if preset["sample_rate_hz"] == sample_rate_hz:
                return cls(preset=name)
        return cls(preset=CUSTOM, sample_rate_hz=sample_rate_hz)

    @property
    def subcarrier_spacing_hz(self) -> float:
        return self.sample_rate_hz / self.fft_size

    @property
    def symbol_length(self) -> int:
        """Samples per OFDM symbol including the cyclic prefix."""
        return self.fft_size + self.cp_length

    @property
    def occupied_bandwidth_hz(self) -> float:
        """Bandwidth spanned by the used subcarriers (sets the delay resolution ≈ 1 / bandwidth)."""
        return self.num_used_subcarriers * self.subcarrier_spacing_hz


@dataclass
class ReceiverConfig(TomlConfig):
    """Receiver algorithm settings (not part of the air interface; both ends need not agree).

    Attributes:
        channel_estimator: ``"ls"`` (raw least squares on the long training symbols), ``"dft"``
            (LS projected onto the delay window: DFT-domain denoising, exact with guard bands) or
            ``"lmmse"`` (Wiener filter with a uniform power-delay profile over the same window).
        detection_threshold: detection metric (0..1, :func:`radio.sync.detection_metric`) that opens a
            candidate, for the narrow preset's occupancy (96/128 used subcarriers); presets with fewer used
            subcarriers per FFT bin scale it by the square of the ratio (the wide presets: 0.61×). About 70 % of
            what a −7 dB preamble reads: noise opens candidates at most every half preamble, and the coherent
            check (``candidate_false_pass``) drops them.
        candidate_false_pass: probability (0..1) that a noise candidate passes the coherent check on the long
            training region (:class:`radio.preamble_detector.PreambleCheck`) and is examined further.
        verify_threshold: fraction (0..1) of the received long-training energy that the
            matched-filter channel window must hold for a candidate to be accepted as a frame.
        min_snr_db: a verified candidate whose preamble SNR estimate is below this is noise: dropped
            before the header is decoded (the header code needs about −7 dB).
        report_threshold: a candidate whose header fails is reported (status ``"header_crc"``) only if
            its verification fraction reaches this; weaker ones are counted in
            ``stats.unconfirmed_candidates`` (noise candidates stayed below 0.17 over 8·10⁶ samples).
        max_cfo_subcarriers: integer CFO search range, in subcarrier spacings (± this).
        max_clock_offset_ppm: largest sample-clock offset tracked (bounds the pilot phase slope).
        clip_fraction: a frame with more than this fraction of samples at the buffer's peak
            magnitude (|I| or |Q|) is flagged ``clipped`` (saturated ADC).
    """

    channel_estimator: Literal["ls", "dft", "lmmse"] = "lmmse"
    detection_threshold: float = 0.012
    candidate_false_pass: float = 1e-3
    verify_threshold: float = 0.13
    min_snr_db: float = -10.0
    report_threshold: float = 0.2
    max_cfo_subcarriers: int = 4
    max_clock_offset_ppm: float = 100.0
    clip_fraction: float = 1e-3

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.channel_estimator not in ("ls", "dft", "lmmse"):
            raise ConfigError(f"channel_estimator must be ls, dft or lmmse, got {self.channel_estimator!r}")
        for name in ("detection_threshold", "candidate_false_pass", "verify_threshold", "report_threshold"):
            if not 0 < getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if not -30 <= self.min_snr_db <= 10:
            raise ConfigError(f"min_snr_db must be in [-30, 10], got {self.min_snr_db}")
        if not 0 <= self.max_cfo_subcarriers <= 16:
            raise ConfigError(f"max_cfo_subcarriers must be in [0, 16], got {self.max_cfo_subcarriers}")
        if not 0 <= self.max_clock_offset_ppm <= 1000:
            raise ConfigError(f"max_clock_offset_ppm must be in [0, 1000], got {self.max_clock_offset_ppm}")
        if not 0 < self.clip_fraction < 1:
            raise ConfigError(f"clip_fraction must be in (0, 1), got {self.clip_fraction}")
