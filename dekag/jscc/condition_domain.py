"""The condition domain: every condition a receiver or a feedback message can carry → a defined codec input.

A receiver reports what it measured: a delay spread of 0 (or any value below what the numerology can
resolve), an SNR far outside the range the codec was trained on, or a value it could not estimate
(NaN). :class:`ConditionDomain` maps each of them to the condition CALA is gated on and says which rule
it applied, so the loop never stops on a report and every row can record what the codec actually saw:

========================================  ==========================================================
reported                                  codec input (tag in ``applied``)
========================================  ==========================================================
SNR in [snr_db_min, snr_db_max]           as reported
SNR below / above the range, ±inf         the range's end (``snr_below_range`` / ``snr_above_range``)
SNR NaN or missing                        ``snr_db_min``, the pessimistic end (``snr_not_estimable``)
delay spread < ``resolution_s`` (0 too)   ``below_resolution_value`` (``delay_spread_below_resolution``)
flagged below resolution by the receiver  ``below_resolution_value`` (``delay_spread_below_resolution``),
                                          whatever the value (it is the receiver's floor)
delay spread ≥ floor but < range minimum  ``delay_spread_s_min`` (``delay_spread_below_range``)
delay spread above the range, +inf        ``delay_spread_s_max`` (``delay_spread_above_range``)
delay spread NaN, negative or missing     the range's geometric centre (``delay_spread_not_estimable``)
========================================  ==========================================================

The delay-resolution floor is the numerology's: a channel shorter than about one sample of the occupied
bandwidth (``1 / (num_used_subcarriers · subcarrier_spacing)``, 347 ns for the default 96 × 30 kHz) cannot
be told apart from a single path, so every such report means "somewhere between the trained minimum and
the floor" and maps to the geometric centre of that interval. A receiver with its own floor (the
testbed's is half of this one) reports "below resolution" as a flag (``below_resolution``), which maps by
the same rule whatever the value, so a domain with another floor, or with the rule off by value
(``resolution_s = 0``), still acts on it. T-KA trains through the same mapping
(:mod:`experiments.frame_link`), so the gate it learns for "below resolution" is the one the loop uses.

>>> d = ConditionDomain(resolution_s=347e-9)
>>> c = d.apply(43.0, 0.0)
>>> round(c.snr_db, 1), round(c.delay_spread_s * 1e9), c.applied
(20.0, 102, ('snr_above_range', 'delay_spread_below_resolution'))
>>> d.apply(float("nan"), 1e-6).applied
('snr_not_estimable',)
>>> d.apply(10.0, 400e-9, below_resolution=True).applied    # the receiver's own floor said so
('delay_spread_below_resolution',)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from dekag.jscc.condition import Condition, ConditionError


@dataclass(frozen=True)
class DomainCondition:
    """A condition inside the codec's domain and the rules applied to reach it.

    Attributes:
        snr_db: SNR the codec is gated on, dB.
        delay_spread_s: RMS delay spread the codec is gated on, s (> 0).
        applied: tags of the rules applied (empty when the report was used as is).
    """

    snr_db: float
    delay_spread_s: float
    applied: tuple[str, ...] = ()

    @property
    def condition(self) -> Condition:
        return Condition(self.snr_db, self.delay_spread_s)

    def as_tuple(self) -> tuple[float, float]:
        return (self.snr_db, self.delay_spread_s)


@dataclass(frozen=True)
class ConditionDomain:
    """The codec's condition domain.

    Attributes:
        snr_db_min, snr_db_max: SNR range the codec was trained on (dB).
        delay_spread_s_min, delay_spread_s_max: delay-spread range the codec was trained on (s).
        resolution_s: smallest delay spread the numerology can measure (s); reports below it are
            "below resolution". 0 disables the rule (every positive value is taken as measured).
    """

    snr_db_min: float = 0.0
    snr_db_max: float = 20.0
    delay_spread_s_min: float = 30e-9
    delay_spread_s_max: float = 3000e-9
    resolution_s: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.snr_db_min) and math.isfinite(self.snr_db_max)
                and self.snr_db_min <= self.snr_db_max):
            raise ConditionError(f"need finite snr_db_min ≤ snr_db_max, got {self.snr_db_min}, {self.snr_db_max}")
        if not 0 < self.delay_spread_s_min <= self.delay_spread_s_max < math.inf:
            raise ConditionError("need 0 < delay_spread_s_min ≤ delay_spread_s_max < inf, got "
                                 f"{self.delay_spread_s_min}, {self.delay_spread_s_max}")
        if not 0 <= self.resolution_s < math.inf:
            raise ConditionError(f"resolution_s must be finite and ≥ 0, got {self.resolution_s}")

    @classmethod
    def for_numerology(cls, occupied_bandwidth_hz: float, **ranges: float) -> ConditionDomain:
        """The domain of a codec trained over ``ranges`` for a numerology of this occupied bandwidth (Hz)."""
        if not occupied_bandwidth_hz > 0:
            raise ConditionError(f"occupied_bandwidth_hz must be positive, got {occupied_bandwidth_hz}")
        return cls(resolution_s=1.0 / occupied_bandwidth_hz, **ranges)

    @property
    def below_resolution_value(self) -> float:
        """Delay spread (s) a below-resolution report maps to: the geometric centre of
        [delay_spread_s_min, resolution floor] (the floor clipped to the trained range)."""
        floor = min(max(self.resolution_s, self.delay_spread_s_min), self.delay_spread_s_max)
        return math.sqrt(self.delay_spread_s_min * floor)

    @property
    def centre(self) -> tuple[float, float]:
        """(SNR dB, delay spread s) at the middle of the trained ranges (geometric for delay spread)."""
        return (0.5 * (self.snr_db_min + self.snr_db_max),
                math.sqrt(self.delay_spread_s_min * self.delay_spread_s_max))

    def apply(self, snr_db: float | None, delay_spread_s: float | None,
              below_resolution: bool = False) -> DomainCondition:
        """Map a reported (SNR dB, delay spread s) — any float, NaN, ±inf or None — into the domain;
        ``below_resolution``: the reporter flagged its delay spread as below its resolution floor."""
        applied: list[str] = []
        snr = self._snr(snr_db, applied)
        if below_resolution:
            applied.append("delay_spread_below_resolution")
            return DomainCondition(snr, self.below_resolution_value, tuple(applied))
        tau = self._delay_spread(delay_spread_s, applied)
        return DomainCondition(snr, tau, tuple(applied))

    def _snr(self, value: float | None, applied: list[str]) -> float:
        if value is None or math.isnan(value):
            applied.append("snr_not_estimable")
            return self.snr_db_min
        if value < self.snr_db_min:
            applied.append("snr_below_range")
            return self.snr_db_min
        if value > self.snr_db_max:
            applied.append("snr_above_range")
            return self.snr_db_max
        return float(value)

    def _delay_spread(self, value: float | None, applied: list[str]) -> float:
        if value is None or math.isnan(value) or value < 0:
            applied.append("delay_spread_not_estimable")
            return self.centre[1]
        if value < max(self.resolution_s, self.delay_spread_s_min):
            if value < self.resolution_s:
                applied.append("delay_spread_below_resolution")
                return self.below_resolution_value
            applied.append("delay_spread_below_range")
            return self.delay_spread_s_min
        if value > self.delay_spread_s_max:
            applied.append("delay_spread_above_range")
            return self.delay_spread_s_max
        return float(value)

    def to_dict(self) -> dict[str, float]:
        return {"snr_db_min": self.snr_db_min, "snr_db_max": self.snr_db_max,
                "delay_spread_s_min": self.delay_spread_s_min, "delay_spread_s_max": self.delay_spread_s_max,
                "resolution_s": self.resolution_s}

    @classmethod
    def from_dict(cls, values: dict) -> ConditionDomain:
        try:
            return cls(**{k: float(values[k]) for k in ("snr_db_min", "snr_db_max", "delay_spread_s_min",
                                                        "delay_spread_s_max", "resolution_s")})
        except (KeyError, TypeError, ValueError) as exc:
            raise ConditionError(f"bad condition domain {values!r}: {exc}") from exc
