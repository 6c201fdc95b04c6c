"""Exit statuses of ``dekag-testbed`` and its nodes, in the shell's convention.

| status | meaning |
|---|---|
| 0 | done: every frame went through (it may still have been received badly; see the run folder) |
| 2 | configuration error |
| 3 | peer lost: frames were lost to a node that stopped answering |
| 4 | a node stopped early (the run's parent saw it exit before the run was done) |
| 128 + n | stopped by signal n (130: Ctrl-C, 143: SIGTERM, 137: SIGKILL) |

>>> shell_status(-9), describe(137), describe(3)
(137, 'killed by signal 9 (SIGKILL)', 'peer lost: frames were lost to a node that stopped answering')
"""
from __future__ import annotations

import signal

OK = 0
CONFIG_ERROR = 2
PEER_LOST = 3
NODE_STOPPED = 4
_MEANING = {OK: "done", CONFIG_ERROR: "configuration error",
            PEER_LOST: "peer lost: frames were lost to a node that stopped answering",
            NODE_STOPPED: "a node stopped before the run was done"}


class Stopped(KeyboardInterrupt):
    """A signal asked the process to stop (SIGTERM is raised as this, like Ctrl-C's KeyboardInterrupt)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def status_of(exc: KeyboardInterrupt) -> int:
    """128 + the signal that stopped the process (SIGINT for a plain KeyboardInterrupt)."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


def shell_status(returncode: int) -> int:
    """A ``subprocess`` return code as the shell reports it (``-n``, killed by signal n, → 128 + n)."""
    return 128 - returncode if returncode < 0 else returncode


def describe(status: int) -> str:
    """What an exit status means, in words."""
    if status > 128:
        try:
            name = signal.Signals(status - 128).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {status - 128} ({name})"
    return _MEANING.get(status, f"failed with status {status}")
