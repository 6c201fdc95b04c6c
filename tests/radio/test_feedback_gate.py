"""Feedback admission (radio.feedback_gate): no report, or finite burst of them, locks the edge out."""
from __future__ import annotations

import pytest

from radio.feedback import CsiReport
from radio.feedback_gate import CLOCK_SLACK_S, TAKEOVER_REPORTS, SessionGate


def _report(seq, timestamp_s, session=1):
    return CsiReport(seq=seq, timestamp_s=timestamp_s, frame_id=seq % 1000, snr_db=5.0, delay_spread_s=1e-7,
                     session_id=session)


def _user_stream(gate, session, clock_s, edge_s, n, first_seq=0, period_s=0.1):
    """A real user publishing every ``period_s`` (its clock starting at ``clock_s``, the edge's at ``edge_s``)."""
    return [gate.admit(_report(first_seq + k, clock_s + k * period_s, session), edge_s + k * period_s)
            for k in range(n)]


POISONS = {
    "future timestamp, other session": _report(5, 1e12, session=99),
    "huge sequence number, other session": _report(2**62, 1000.0, session=99),
    "huge sequence number, same session": _report(2**62, 1000.0, session=1),
    "future timestamp, same session": _report(11, 1e12, session=1),
}


@pytest.mark.parametrize("name", POISONS)
def test_one_poisoned_report_does_not_lock_the_edge_out(name):
    gate = SessionGate(max_age_s=0.5)
    assert _user_stream(gate, 1, 1000.0, 0.0, 10) == ["accepted"] * 10
    gate.admit(POISONS[name], 1.0)
    verdicts = _user_stream(gate, 1, 1001.0, 1.0, 38, first_seq=10)
    # at most a takeover's worth of real reports is lost, then every one is accepted again
    assert verdicts[TAKEOVER_REPORTS:] == ["accepted"] * (38 - TAKEOVER_REPORTS), verdicts
    assert gate.current.session_id == 1


def test_restarted_user_with_a_new_monotonic_clock_is_admitted():
    gate = SessionGate(max_age_s=0.5)
    _user_stream(gate, 1, 5e6, 0.0, 10)               # host up for two months
    # restarted on a host that booted 3 s ago, 1.1 s after the old session's last report (stale)
    assert _user_stream(gate, 2, 3.0, 2.0, 38) == ["accepted"] * 38
    assert gate.admit(_report(9, 5e6 + 0.9, session=1), 5.0) == "out_of_order"  # old session's replay


def test_new_session_while_current_is_fresh_waits_for_consistent_reports():
    gate = SessionGate(max_age_s=10.0)
    _user_stream(gate, 1, 100.0, 0.0, 5)
    verdicts = _user_stream(gate, 2, 7.0, 0.5, 5)
    assert verdicts == ["session_pending"] * (TAKEOVER_REPORTS - 1) + ["accepted"] * (5 - TAKEOVER_REPORTS + 1)
    # a single stray report of another session is not enough
    assert gate.admit(_report(50, 3.0, session=3), 1.1) == "session_pending"
    assert gate.current.session_id == 2


def test_implausible_jumps_are_named():
    gate = SessionGate(max_age_s=1.0)
    assert gate.admit(_report(0, 50.0), 0.0) == "accepted"
    assert gate.admit(_report(2**40, 50.1), 0.1) == "seq_jump"
    assert gate.admit(_report(1, 50.2 + 2 * CLOCK_SLACK_S), 0.2) == "future_timestamp"
    assert gate.admit(_report(1, 50.2), 0.2) == "accepted"
    assert gate.admit(_report(1, 50.2), 0.3) == "duplicate"
    assert gate.admit(_report(0, 50.0), 0.3) == "out_of_order"


def test_slow_edge_does_not_reject_reports_that_arrive_late():
    """Reports that waited in the socket (edge busy) are not mistaken for future ones."""
    gate = SessionGate(max_age_s=100.0)
    assert gate.admit(_report(0, 10.0), 20.0) == "accepted"     # received 10 s after it was made
    assert gate.admit(_report(1, 10.5), 20.5) == "accepted"
    assert gate.admit(_report(2, 30.0), 30.1) == "accepted"     # a quick one after slow ones
