"""Exception types of the air interface."""
from __future__ import annotations


class RadioError(Exception):
    """Base class of every error raised by :mod:`radio` (backends, feedback, emulator and receiver alike;
    configuration files raise :class:`common.ConfigError`)."""


class ConfigurationError(RadioError, ValueError):
    """An argument does not fit the frame format (e.g. an empty payload or an out-of-range field)."""


class BadInputError(RadioError, ValueError):
    """Input samples the receiver cannot use (wrong shape or dtype). Non-finite samples in a stream
    are not an error: the buffer is skipped and counted in ``Receiver.stats``."""
