"""The knowledge package's ``manifest.json``: its schema, and the SHA-256 that covers the manifest itself.

Every field is checked before any is used (:func:`check_manifest`), file names must be plain names inside
the package folder (no ``../``, no absolute path, no sub-folder), and ``manifest_sha256`` is the SHA-256 of
the manifest without that field (canonical JSON: sorted keys, no spaces), so an edited field (``info``, the
metaword, a shape, a file hash) is refused. Errors are :class:`dekag.knowledge_package.PackageCorruptError`
(defined here, re-exported there).

>>> m = seal({"format": FORMAT, "precision_bits": 16, "base_model": {"name": "edge", "sha256": "0" * 64},
...           "info": {"metaword": "<m>"}, "groups": {}, "total_bytes": 0})
>>> check_manifest(m, "pkg") is m
True
>>> m["info"]["metaword"] = "<other>"
>>> check_manifest(m, "pkg")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
dekag.package_manifest.PackageCorruptError: pkg: manifest_sha256 differs from the manifest's content ...
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from dekag.errors import DekagError

FORMAT = "dekag-knowledge-package/1"
PRECISIONS = (32, 16, 8, 4, 2)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FILE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.safetensors")
_MAX_DIM = 2**31


class KnowledgePackageError(DekagError, ValueError):
    """Base class: a knowledge package cannot be written or used."""


class PackageCorruptError(KnowledgePackageError):
    """A file is missing, its SHA-256 differs from the manifest, a tensor does not match its shape, or the
    manifest itself does not follow its schema or its own SHA-256."""


def manifest_digest(manifest: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of ``manifest`` without ``manifest_sha256``."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def seal(manifest: dict) -> dict:
    """``manifest`` with its ``manifest_sha256`` set."""
    return {**manifest, "manifest_sha256": manifest_digest(manifest)}


def _fail(where: str, message: str) -> None:
    raise PackageCorruptError(f"{where}: {message}")


def _expect(value: Any, kind: type | tuple[type, ...], key: str, where: str) -> Any:
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        _fail(where, f"manifest field {key!r} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def check_manifest(manifest: Any, where: str) -> dict:
    """Raise :class:`PackageCorruptError` unless ``manifest`` follows the schema and its own SHA-256; returns it."""
    m = _expect(manifest, dict, "(top level)", where)
    keys = {"format", "precision_bits", "base_model", "info", "groups", "total_bytes", "manifest_sha256"}
    if set(m) != keys:
        _fail(where, f"manifest keys {sorted(m)} are not {sorted(keys)}")
    if m["format"] != FORMAT:
        _fail(where, f"format {m['format']!r}, expected {FORMAT!r}")
    if _expect(m["manifest_sha256"], str, "manifest_sha256", where) != manifest_digest(m):
        _fail(where, "manifest_sha256 differs from the manifest's content (edited or corrupt manifest)")
    if _expect(m["precision_bits"], int, "precision_bits", where) not in PRECISIONS:
        _fail(where, f"precision_bits {m['precision_bits']} not one of {PRECISIONS}")
    base = _expect(m["base_model"], dict, "base_model", where)
    if set(base) != {"name", "sha256"} or not isinstance(base["name"], str) \
            or not _HEX64.fullmatch(str(base["sha256"])):
        _fail(where, f"base_model must be {{name: str, sha256: 64 hex digits}}, got {base!r}")
    _expect(m["info"], dict, "info", where)
    groups = _expect(m["groups"], dict, "groups", where)
    total = 0
    for group, entry in groups.items():
        key = f"groups.{group}"
        if not group.isidentifier():
            _fail(where, f"group name {group!r} must be an identifier")
        entry = _expect(entry, dict, key, where)
        if set(entry) != {"file", "sha256", "bytes", "tensors"}:
            _fail(where, f"{key} keys {sorted(entry)} are not ['bytes', 'file', 'sha256', 'tensors']")
        if not _FILE.fullmatch(_expect(entry["file"], str, f"{key}.file", where)):
            _fail(where, f"{key}.file {entry['file']!r} must be a plain NAME.safetensors inside the package folder")
        if not _HEX64.fullmatch(_expect(entry["sha256"], str, f"{key}.sha256", where)):
            _fail(where, f"{key}.sha256 must be 64 lower-case hex digits")
        if _expect(entry["bytes"], int, f"{key}.bytes", where) < 0:
            _fail(where, f"{key}.bytes must be ≥ 0")
        total += entry["bytes"]
        for name, shape in _expect(entry["tensors"], dict, f"{key}.tensors", where).items():
            if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool)
                                                      and 0 <= d < _MAX_DIM for d in shape):
                _fail(where, f"{key}.tensors.{name} must be a list of sizes, got {shape!r}")
    if _expect(m["total_bytes"], int, "total_bytes", where) != total:
        _fail(where, f"total_bytes {m['total_bytes']} is not the sum of the groups' bytes ({total})")
    return m
