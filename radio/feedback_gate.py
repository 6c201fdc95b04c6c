"""Which CSI reports the edge accepts: ordering, replay, plausibility and publisher sessions.

A report is network input, so no single report (or a finite burst of them) may lock the edge out of
its feedback. :class:`SessionGate` decides for each valid report, given the edge's receipt time
(its own ``time.monotonic()``, s), and returns one verdict (a :class:`FeedbackCounters` field name):

* ``accepted``: newer report of the current publisher session, or the first report of a new session.
* ``duplicate`` / ``out_of_order``: a sequence number equal to / below one already accepted from that
  session (a replay, including one from a session that has since been replaced).
* ``seq_jump``: the sequence number advanced faster than :data:`MAX_REPORT_RATE_HZ` allows for the
  time since the session's previous report (plus :data:`SEQ_SLACK`).
* ``future_timestamp``: the publisher's clock claims the report was made more than
  :data:`CLOCK_SLACK_S` after it could have been, judged against the session's earliest-arriving
  report (publisher clocks are only compared within one session, never across hosts).
* ``session_pending``: another session while the current one is still fresh (received within
  ``max_age_s``); it is admitted once the current one is stale, or after :data:`TAKEOVER_REPORTS`
  consistent reports in a row (increasing sequence, plausible in time), whatever the current state.
  The same run of consistent reports also ends any other rejection streak (e.g. after a forged huge
  sequence number was accepted), so a steadily publishing user is never shut out for longer.

>>> from radio.feedback import CsiReport
>>> gate = SessionGate(max_age_s=1.0)
>>> r = lambda seq, t, session=1: CsiReport(seq=seq, timestamp_s=t, frame_id=0, snr_db=5.0,
...                                         delay_spread_s=1e-7, session_id=session)
>>> [gate.admit(r(0, 100.0), 0.0), gate.admit(r(2**62, 100.1), 0.1), gate.admit(r(1, 1e9), 0.2)]
['accepted', 'seq_jump', 'future_timestamp']
>>> [gate.admit(r(k, 5.0 + k, session=2), 0.2 + k) for k in (0, 1, 2)]  # current session stale after 1 s
['session_pending', 'accepted', 'accepted']
>>> gate.admit(r(0, 100.0), 3.0)  # replay from the replaced session
'out_of_order'
"""
from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from radio.feedback import CsiReport

MAX_REPORT_RATE_HZ = 10_000.0
"""Fastest plausible publishing rate, reports/s (the user publishes one per decoded frame)."""
SEQ_SLACK = 65_536
"""Sequence advance always allowed, whatever the elapsed time."""
CLOCK_SLACK_S = 30.0
"""How far a report's timestamp may run ahead of the edge's receipt clock (latency of the session's
fastest report so far, and clock drift), s."""
TAKEOVER_REPORTS = 3
"""Consistent reports in a row that admit a session whatever the current state."""
_REMEMBERED_SESSIONS = 64


@dataclass
class _Track:
    """One publisher session as seen by the edge: its newest report, when that arrived, and the
    smallest (receipt time − publisher timestamp) seen, s (publisher-clock offset + least latency)."""

    session_id: int
    report: CsiReport
    received_at: float
    min_offset_s: float
    count: int = 1

    @classmethod
    def start(cls, report: CsiReport, received_at: float) -> _Track:
        return cls(report.session_id, report, received_at, received_at - report.timestamp_s)

    def implausible(self, report: CsiReport, received_at: float) -> str | None:
        """``"seq_jump"``, ``"future_timestamp"`` or None for a later report of this session."""
        elapsed = max(received_at - self.received_at, 0.0)
        if report.seq - self.report.seq > MAX_REPORT_RATE_HZ * elapsed + SEQ_SLACK:
            return "seq_jump"
        if received_at - report.timestamp_s < self.min_offset_s - CLOCK_SLACK_S:
            return "future_timestamp"
        return None

    def advance(self, report: CsiReport, received_at: float) -> None:
        self.report, self.received_at = report, received_at
        self.min_offset_s = min(self.min_offset_s, received_at - report.timestamp_s)
        self.count += 1


class SessionGate:
    """Admission of reports (see the module docstring).

    Args:
        max_age_s: a current session whose newest report arrived longer ago than this is stale, s.
    """

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self.current: _Track | None = None
        self._candidate: _Track | None = None
        # newest accepted seq of recent sessions: a replay from a replaced session stays a replay
        self._last_seq: collections.OrderedDict[int, int] = collections.OrderedDict()

    def admit(self, report: CsiReport, received_at: float) -> str:
        """Verdict on one valid report received at ``received_at`` (edge monotonic time, s)."""
        verdict = self._verdict(report, received_at)
        if verdict == "accepted":
            self._accept(report, received_at)
        elif verdict != "duplicate" and self._follow_candidate(report, received_at):
            self._accept(report, received_at)
            verdict = "accepted"
        return verdict

    def _verdict(self, report: CsiReport, received_at: float) -> str:
        cur = self.current
        last_seq = self._last_seq.get(report.session_id)
        if last_seq is not None and report.seq <= last_seq:
            same = cur is not None and cur.session_id == report.session_id and report.seq == cur.report.seq
            return "duplicate" if same else "out_of_order"
        if cur is None:
            return "accepted"
        if report.session_id == cur.session_id:
            return cur.implausible(report, received_at) or "accepted"
        if received_at - cur.received_at > self.max_age_s:
            return "accepted"
        return "session_pending"

    def _follow_candidate(self, report: CsiReport, received_at: float) -> bool:
        """Extend (or restart) the run of consistent rejected reports; True when it reaches the takeover length."""
        cand = self._candidate
        if (cand is not None and cand.session_id == report.session_id and report.seq > cand.report.seq
                and cand.implausible(report, received_at) is None):
            cand.advance(report, received_at)
        else:
            self._candidate = cand = _Track.start(report, received_at)
        return cand.count >= TAKEOVER_REPORTS

    def _accept(self, report: CsiReport, received_at: float) -> None:
        cur = self.current
        if cur is not None and cur.session_id == report.session_id and cur.implausible(report, received_at) is None:
            cur.advance(report, received_at)
        else:  # a new session, or a takeover that restarts the track of this one
            self.current = _Track.start(report, received_at)
        self._candidate = None
        self._last_seq[report.session_id] = report.seq
        self._last_seq.move_to_end(report.session_id)
        while len(self._last_seq) > _REMEMBERED_SESSIONS:
            self._last_seq.popitem(last=False)
