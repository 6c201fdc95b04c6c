"""Joining the channel node's truth rows to frames the user received (emulated runs on one host)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.run_folder import read_jsonl


class TruthTable:
    """Looks up the emulator's truth for a frame by where it starts in the user's RX stream.

    Reads ``channel.results.jsonl`` of the run folder again whenever a frame is not found yet (the
    channel node appends a row before it serves the burst). With a real radio there is no such file
    and :meth:`lookup` returns None.

    Args:
        path: the channel node's results file.
        tolerance_samples: largest |estimated start − true start| accepted as the same frame.
    """

    def __init__(self, path: str | Path, tolerance_samples: int = 64):
        self.path = Path(path)
        self.tolerance = tolerance_samples
        self._rows: list[dict[str, Any]] = []

    def lookup(self, frame_start: int) -> dict[str, Any] | None:
        for attempt in range(2):
            best = min(self._rows, key=lambda r: abs(r["rx_frame_start"] - frame_start), default=None)
            if best is not None and abs(best["rx_frame_start"] - frame_start) <= self.tolerance:
                return best
            if attempt == 0:
                self._rows = [r for r in read_jsonl(self.path) if "rx_frame_start" in r]
        return None
