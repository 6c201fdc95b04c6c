"""CSI report schema: round trip, validation of every field, compactness."""
from __future__ import annotations

import math

import msgpack
import pytest

from radio.feedback import SCHEMA_VERSION, CsiReport, CsiValid, MalformedReport, decode_report, encode_report


def _report(**overrides):
    base = dict(seq=3, timestamp_s=12.5, frame_id=9, snr_db=7.25, delay_spread_s=300e-9, cfo_hz=-410.0,
                noise_var=0.02, flags=int(CsiValid.all_estimates()), session_id=123456)
    base.update(overrides)
    return CsiReport(**base)


def test_round_trip_is_exact_and_compact():
    r = _report()
    data = encode_report(r)
    assert decode_report(data) == r
    assert len(data) < 80
    assert r.has_condition and r.condition.snr_db == 7.25


@pytest.mark.parametrize("field,value", [
    ("snr_db", math.nan), ("snr_db", math.inf), ("snr_db", 150.0), ("delay_spread_s", -1e-9),
    ("delay_spread_s", 2e-3), ("cfo_hz", 20e6), ("noise_var", -0.1), ("seq", -1), ("frame_id", 1.5),
    ("seq", True), ("flags", 1 << 10), ("session_id", 2**32), ("timestamp_s", -1.0), ("snr_db", "10"),
])
def test_invalid_field_is_refused(field, value):
    with pytest.raises(MalformedReport):
        _report(**{field: value})


def _packed(items):
    return msgpack.packb(items, use_bin_type=True)


@pytest.mark.parametrize("payload", [
    b"", b"\xc1", b"not msgpack at all", _packed({"seq": 1}), _packed([]), _packed([SCHEMA_VERSION, 1, 2]),
    _packed([SCHEMA_VERSION + 1, 0, 0, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 3]),
    _packed([SCHEMA_VERSION, 0, 0, 0.0, 0, "x", 0.0, 0.0, 0.0, 3]),
    _packed([SCHEMA_VERSION, 0, 0, 0.0, 0, float("nan"), 0.0, 0.0, 0.0, 3]),
    _packed([SCHEMA_VERSION, 0, 0, 0.0, 0, 1.0, 0.0, 0.0, 0.0, 3, 99]),
])
def test_malformed_payload_raises_specific_error(payload):
    with pytest.raises(MalformedReport):
        decode_report(payload)


def test_wrong_version_message_names_both_versions():
    items = msgpack.unpackb(encode_report(_report()))
    items[0] = 99
    with pytest.raises(MalformedReport, match="99"):
        decode_report(_packed(items))


def test_has_condition_needs_both_flags():
    assert not _report(flags=int(CsiValid.SNR)).has_condition
    assert not _report(flags=int(CsiValid.DELAY_SPREAD | CsiValid.CFO)).has_condition
    assert _report(flags=int(CsiValid.SNR | CsiValid.DELAY_SPREAD)).has_condition


_BELOW = CsiValid.SNR | CsiValid.DELAY_SPREAD | CsiValid.DELAY_SPREAD_BELOW_RESOLUTION


def test_below_resolution_flag_round_trips_into_the_condition():
    r = _report(flags=int(_BELOW), delay_spread_s=28e-9)
    back = decode_report(encode_report(r))
    assert back.delay_spread_below_resolution and back.condition.delay_spread_below_resolution
    assert back.condition.delay_spread_s == 28e-9
    assert not _report().condition.delay_spread_below_resolution


def test_a_version_1_report_is_still_accepted_without_the_flag():
    items = msgpack.unpackb(encode_report(_report(flags=int(CsiValid.SNR | CsiValid.DELAY_SPREAD))))
    assert items[0] == SCHEMA_VERSION == 2
    items[0] = 1
    old = decode_report(_packed(items))
    assert old.version == 1 and old.has_condition and not old.delay_spread_below_resolution


@pytest.mark.parametrize("items,reason", [
    # a version-1 sender cannot know the flag: a v1 report carrying it is forged or corrupt
    ([1, 0, 0, 0.0, 0, 10.0, 28e-9, 0.0, 0.0, int(_BELOW)], "for schema version 1"),
    # the flag qualifies a delay spread: without DELAY_SPREAD, or without the floor, it means nothing
    ([2, 0, 0, 0.0, 0, 10.0, 28e-9, 0.0, 0.0, int(CsiValid.SNR | CsiValid.DELAY_SPREAD_BELOW_RESOLUTION)],
     "needs the DELAY_SPREAD flag"),
    ([2, 0, 0, 0.0, 0, 10.0, 0.0, 0.0, 0.0, int(_BELOW)], "needs the DELAY_SPREAD flag and the floor"),
    ([True, 0, 0, 0.0, 0, 10.0, 1e-7, 0.0, 0.0, 3], "unsupported schema version"),
])
def test_inconsistent_below_resolution_reports_are_refused_with_a_reason(items, reason):
    with pytest.raises(MalformedReport, match=reason):
        decode_report(_packed(items))
