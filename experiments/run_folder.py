"""The run folder: one directory per run, written as the run goes so a crash or Ctrl-C loses nothing.

Layout::

    runs/<name>/
      config.toml        the full configuration of the run (written first)
      results.jsonl      one JSON object per line, appended and flushed per frame
      events.jsonl       node events (fallbacks, timeouts, CRC failures, peer lost), appended and flushed
      images/            received (and reference) images, PNG
      figures/           plots, PNG + SVG, written next to the JSON they plot
      summary.md         one-page summary (rewritten at the end and whenever asked)

Every row carries the run id, seed, package versions and git revision (``common.provenance``).
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from common.provenance import provenance
from common.tomlconfig import TomlConfig


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy / torch
        return _jsonable(value.tolist())
    return value


class JsonLines:
    """Append-only JSON-lines file; each :meth:`write` is flushed and fsynced before returning."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = open(path, "a", encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        self._fh.write(json.dumps(_jsonable(row), separators=(",", ":")) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; a torn last line (process killed mid-write) is ignored."""
    rows = []
    path = Path(path)
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class RunFolder:
    """Create or reopen a run folder and write results into it as they happen.

    Args:
        root: the folder (created if missing).
        config: the run's configuration; saved as ``config.toml`` at once.
        role: which node writes (``"edge"``, ``"user"``, ``"channel"``, ``"run"``); each node of a run
            writes its own ``<role>.results.jsonl`` so processes never interleave lines of one file.
        seed: the run's seed, stamped into every row.
    """

    def __init__(self, root: str | Path, config: TomlConfig | None = None, role: str = "run", seed: int = 0):
        self.root = Path(root)
        self.role = role
        self.seed = seed
        for sub in ("images", "figures"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if config is not None and not (self.root / "config.toml").exists():
            config.save(self.root / "config.toml")
        self._prov = provenance()
        self._results = JsonLines(self.root / f"{role}.results.jsonl")
        self._events = JsonLines(self.root / f"{role}.events.jsonl")
        self._t0 = time.monotonic()

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    def result(self, **row: Any) -> None:
        """Append one result row (flushed to disk before returning)."""
        self._results.write({"role": self.role, "seed": self.seed, "t_s": time.monotonic() - self._t0,
                             "unix_time_s": time.time(), **row, "provenance": self._prov})

    def event(self, kind: str, **details: Any) -> None:
        """Append one event (fallback used, timeout, CRC failure, peer lost, ...)."""
        self._events.write({"role": self.role, "event": kind, "t_s": time.monotonic() - self._t0, **details})

    def close(self) -> None:
        self._results.close()
        self._events.close()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
