"""Dataclass configurations that load from and save to TOML.

Every configuration in the project is a ``@dataclass`` that also inherits :class:`TomlConfig`:

>>> from dataclasses import dataclass
>>> @dataclass
... class Demo(TomlConfig):
...     rate_hz: float = 1e6
...     name: str = "x"
>>> Demo.from_toml_str(Demo(rate_hz=2e6).to_toml_str()).rate_hz
2000000.0

Loading is strict: unknown keys, missing required keys, values of the wrong type and numbers that are
not finite (TOML allows ``nan`` and ``inf``) raise :class:`ConfigError` naming the offending key, so a
typo in a lab config never silently falls back to a default.

A configuration is read-only once built: a change makes a new one through :meth:`TomlConfig.replace`,
which validates it like any other construction (sections are changed with a table of their own keys):

>>> Demo(rate_hz=2e6).replace(name="y")
Demo(rate_hz=2000000.0, name='y')
>>> d = Demo()
>>> d.rate_hz = float("nan")
Traceback (most recent call last):
...
common.tomlconfig.ConfigError: Demo.rate_hz is read-only once built; make a changed copy with .replace(rate_hz=...)
>>> Demo(rate_hz=float("inf"))
Traceback (most recent call last):
...
common.tomlconfig.ConfigError: Demo.rate_hz must be finite, got inf
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Self

import tomli_w


class ConfigError(ValueError):
    """A configuration file or dictionary does not match its dataclass."""


MAX_TIMEOUT_S = 86_400.0
"""Longest timeout any configuration may ask for, s (ZeroMQ takes milliseconds as a 32-bit integer)."""


def _check_scalar(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_scalar(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) == 1:  # an optional value (X | None): X's own message names the problem
            raise ConfigError(errors[0])
        raise ConfigError(f"{where}: {value!r} matches none of {tp}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            items = [_check_scalar(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else Any
            items = [_check_scalar(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if typing.get_origin(tp) is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table for {tp.__name__}, got {value!r}")
        return _from_dict(tp, value, where)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        _check_finite(value, where)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    return value


def _check_finite(value: Any, where: str) -> None:
    """Every float, also inside lists and tuples, must be finite."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} must be finite, got {value}")
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_finite(v, f"{where}[{i}]")


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _check_scalar(value, hints[name], f"{where + '.' if where else ''}{name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items() if v is not None}
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return value.item()
    return value


class TomlConfig:
    """Mixin for dataclasses: ``to_dict``/``from_dict``, ``to_toml_str``/``from_toml_str``, ``save``/``load``.

    Subclasses define ``validate(self)`` (ranges, choices; raising :class:`ConfigError` that names the key)
    and call it from ``__post_init__``. Every float is checked for finiteness as it is set. Fields are set
    once, by the constructor; :meth:`replace` makes a validated changed copy.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__:
            raise ConfigError(f"{type(self).__name__}.{name} is read-only once built; "
                              f"make a changed copy with .replace({name}=...)")
        _check_finite(value, f"{type(self).__name__}.{name}")
        object.__setattr__(self, name, value)

    def check_range(self, name: str, lo: float, hi: float, *, open_low: bool = False) -> None:
        """Raise :class:`ConfigError` naming ``name`` unless ``lo ≤ value ≤ hi`` (``lo < value`` if ``open_low``)."""
        value = getattr(self, name)
        if not (lo < value if open_low else lo <= value) or not value <= hi:
            raise ConfigError(f"{type(self).__name__}.{name} must be in {'(' if open_low else '['}{lo}, {hi}], "
                              f"got {value}")

    def __delattr__(self, name: str) -> None:
        raise ConfigError(f"{type(self).__name__}.{name} cannot be deleted")

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied and validated. A section (a nested config) may be given as a
        ``dict`` of its own changes: ``cfg.replace(edge={"num_frames": 5})``."""
        fields = {f.name: f for f in dataclasses.fields(self) if f.init}
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ConfigError(f"{type(self).__name__}: unknown key(s) {unknown}; known: {sorted(fields)}")
        for name, value in changes.items():
            current = getattr(self, name)
            if isinstance(value, dict) and isinstance(current, TomlConfig):
                changes[name] = current.replace(**value)
        new = dataclasses.replace(self, **changes)
        if hasattr(new, "validate"):
            new.validate()
        return new

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return _from_dict(cls, data, "")

    def to_toml_str(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml_str(cls, text: str) -> Self:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_toml_str())
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not a TOML text file (not UTF-8 at byte {exc.start})") from None
        try:
            return cls.from_toml_str(text)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
