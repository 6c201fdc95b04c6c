"""The condition domain: every condition a receiver or a feedback message can carry maps to a codec input."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dekag.jscc import ChannelConfig, Condition, ConditionError
from dekag.jscc.condition_domain import ConditionDomain

DOMAIN = ChannelConfig().condition_domain        # 0–20 dB, 30–3000 ns, 96 × 30 kHz → 347 ns floor


def test_numerology_sets_the_resolution_floor():
    assert DOMAIN.resolution_s == pytest.approx(1 / 2.88e6)
    wide = ChannelConfig(sample_rate_hz=30.72e6, fft_size=1024, cp_length=128, num_used_subcarriers=768)
    assert wide.condition_domain.resolution_s == pytest.approx(1 / 23.04e6)


@pytest.mark.parametrize("tau", [0.0, 10e-9, 30e-9, 46e-9, 300e-9])
def test_delay_spreads_below_resolution_map_to_one_recorded_value(tau):
    c = DOMAIN.apply(10.0, tau)
    assert c.applied == ("delay_spread_below_resolution",)
    assert c.delay_spread_s == pytest.approx(math.sqrt(30e-9 / 2.88e6))
    Condition(*c.as_tuple()).normalised(1)            # the codec accepts it


@pytest.mark.parametrize("tau", [20e-9, 400e-9, 2e-6, math.nan])
def test_a_report_flagged_below_resolution_maps_by_the_flag_not_its_value(tau):
    """The receiver's floor is its own (here above the domain's, or a value the domain would take as
    measured): the flag alone decides, with the rule's tag and value; unflagged, the value decides."""
    for domain in (DOMAIN, ConditionDomain(resolution_s=0.0)):
        c = domain.apply(12.0, tau, below_resolution=True)
        assert c.applied == ("delay_spread_below_resolution",)
        assert (c.snr_db, c.delay_spread_s) == (12.0, domain.below_resolution_value)
    assert "delay_spread_below_resolution" not in DOMAIN.apply(12.0, 2e-6).applied


@pytest.mark.parametrize(("snr", "want", "tag"), [(-10.0, 0.0, "snr_below_range"), (40.0, 20.0, "snr_above_range"),
                                                  (math.inf, 20.0, "snr_above_range"),
                                                  (-math.inf, 0.0, "snr_below_range"),
                                                  (math.nan, 0.0, "snr_not_estimable"),
                                                  (None, 0.0, "snr_not_estimable")])
def test_snr_outside_the_trained_range_is_clamped_and_recorded(snr, want, tag):
    c = DOMAIN.apply(snr, 1e-6)
    assert c.snr_db == want and c.applied == (tag,)


def test_values_inside_the_domain_pass_unchanged():
    c = DOMAIN.apply(7.3, 1.2e-6)
    assert c.as_tuple() == (7.3, 1.2e-6) and c.applied == ()


def test_delay_spread_not_estimable_or_too_long():
    assert DOMAIN.apply(5.0, math.nan).applied == ("delay_spread_not_estimable",)
    assert DOMAIN.apply(5.0, -1e-9).delay_spread_s == pytest.approx(math.sqrt(30e-9 * 3000e-9))
    assert DOMAIN.apply(5.0, 1.0).as_tuple() == (5.0, 3000e-9)
    no_floor = ConditionDomain()
    assert no_floor.apply(5.0, 10e-9).applied == ("delay_spread_below_range",)
    assert no_floor.apply(5.0, 10e-9).delay_spread_s == 30e-9


def test_any_report_becomes_a_condition_the_codec_accepts():
    rng = np.random.default_rng(0)
    specials = [0.0, -0.0, math.nan, math.inf, -math.inf, 1e300, -1e300, 5e-324, None]
    values = list(rng.normal(0, 1e3, 200)) + list(10.0 ** rng.uniform(-12, 3, 200)) + specials
    for snr in values[::7] + specials:
        for tau in values[::5] + specials:
            c = DOMAIN.apply(snr, tau)
            assert DOMAIN.snr_db_min <= c.snr_db <= DOMAIN.snr_db_max
            assert DOMAIN.delay_spread_s_min <= c.delay_spread_s <= DOMAIN.delay_spread_s_max
            Condition(*c.as_tuple()).normalised(1)


def test_the_codec_itself_still_refuses_unmapped_conditions():
    with pytest.raises(ConditionError, match="positive"):
        Condition(10.0, 0.0).normalised(1)


def test_round_trip_and_bad_domains():
    assert ConditionDomain.from_dict(DOMAIN.to_dict()) == DOMAIN
    with pytest.raises(ConditionError):
        ConditionDomain.from_dict({"snr_db_min": 0})
    with pytest.raises(ConditionError):
        ConditionDomain(snr_db_min=10, snr_db_max=0)
    with pytest.raises(ConditionError):
        ConditionDomain(delay_spread_s_min=0.0)
