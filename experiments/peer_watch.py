"""How long a node keeps trying when its peer stops answering: ``link.max_peer_timeouts`` in a row.

>>> from radio.backends.base import PeerTimeout
>>> watch = PeerWatch(limit=2)
>>> watch.timed_out(PeerTimeout("no samples within 1 s")); watch.ok(); watch.timed_out(PeerTimeout("again"))
>>> watch.timed_out(PeerTimeout("and again"))
Traceback (most recent call last):
...
experiments.peer_watch.PeerLost: peer lost after 2 consecutive timeouts (last: and again)
"""
from __future__ import annotations

from radio.backends.base import PeerTimeout


class PeerLost(PeerTimeout):
    """The peer timed out ``link.max_peer_timeouts`` times in a row: the node stops."""


class PeerWatch:
    """Counts consecutive peer timeouts.

    Args:
        limit: timeouts in a row after which :meth:`timed_out` raises :class:`PeerLost`.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.consecutive = 0
        self.total = 0

    def ok(self) -> None:
        """The peer answered."""
        self.consecutive = 0

    def timed_out(self, exc: PeerTimeout) -> None:
        """One timeout; raises :class:`PeerLost` when it is the ``limit``-th in a row."""
        self.consecutive += 1
        self.total += 1
        if self.consecutive >= self.limit:
            raise PeerLost(f"peer lost after {self.consecutive} consecutive timeouts (last: {exc})") from exc
