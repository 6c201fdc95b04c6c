"""The root of every exception :mod:`dekag` raises."""
from __future__ import annotations


class DekagError(Exception):
    """Base class of every error raised by :mod:`dekag` (configuration files raise :class:`common.ConfigError`)."""
