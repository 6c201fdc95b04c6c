"""The downlink knowledge package: named tensor groups as safetensors + a JSON manifest. No pickle.

A package is a folder::

    manifest.json            format, precision_bits, base model identity + hash, per-group file/SHA-256/bytes,
                             per-tensor shape, free-form ``info`` (rank, metaword token, ...), and the SHA-256
                             of all that (schema and hash: :mod:`dekag.package_manifest`)
    <group>.safetensors      one file per group, e.g. "metaword", "glora" (and "cala" from the JSCC side)

Precision: 32 (float32 as is), 16 (float16), or 8/4/2 bits: affine per-row quantisation (rows along the
longer side of a matrix, so LoRA ``A`` ``[r, in]`` and ``B`` ``[out, r]`` both get ``r`` scales; a 1-D tensor is one
row), ``q = round((x - offset) / scale)`` in ``0..2^b-1``, packed into uint8 (8/b values per byte), with
float16 ``scale`` and ``offset`` per row. All tensors of a group are concatenated in name order into a few
safetensors entries (``values`` or ``codes``/``scale``/``offset``), so headers stay small.

>>> import torch, tempfile
>>> base = BaseModel(name="edge", sha256="0" * 64)
>>> d = tempfile.mkdtemp()
>>> _ = save_package(d, {"glora": {"w": torch.ones(4, 3)}}, base, precision_bits=4)
>>> load_package(d, expected_base=base).groups["glora"]["w"].shape
torch.Size([4, 3])
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dekag.package_manifest import FORMAT, PRECISIONS, KnowledgePackageError, PackageCorruptError, check_manifest, seal

__all__ = ["FORMAT", "PRECISIONS", "BaseModel", "BaseModelNotFound", "KnowledgePackage", "KnowledgePackageError",
           "PackageCorruptError", "PackageMismatchError", "base_model_from_folder", "dequantize", "load_package",
           "quantize", "save_package", "sha256_file"]

_MANIFEST = "manifest.json"


class PackageMismatchError(KnowledgePackageError):
    """The package was made for another base model (identity or weights hash differ)."""


class BaseModelNotFound(KnowledgePackageError, FileNotFoundError):
    """A folder has no weights to identify a base model by."""


@dataclass(frozen=True)
class BaseModel:
    """Identity of the model a package applies to: a name and a SHA-256 over its weights."""

    name: str
    sha256: str


@dataclass
class KnowledgePackage:
    """Dequantised float32 ``groups`` (``{group: {tensor name: tensor}}``), the ``manifest`` and its folder."""

    groups: dict[str, dict[str, torch.Tensor]]
    manifest: dict
    folder: Path
    info: dict = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return int(self.manifest["total_bytes"])


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def base_model_from_folder(folder: str | Path, name: str | None = None) -> BaseModel:
    """:class:`BaseModel` of a diffusers pipeline folder: SHA-256 over the SHA-256s of its UNet and text-encoder
    weight files (``*.safetensors``/``*.bin`` under ``unet/`` and ``text_encoder/``), in sorted path order."""
    folder = Path(folder)
    files = sorted(p for sub in ("unet", "text_encoder") for p in (folder / sub).glob("*")
                   if p.suffix in (".safetensors", ".bin"))
    if not files:
        raise BaseModelNotFound(f"{folder}: no unet/ or text_encoder/ weight files to identify the base model")
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(folder).as_posix().encode() + b"\0" + sha256_file(p).encode())
    return BaseModel(name=name or folder.name, sha256=h.hexdigest())


def _pack(q: torch.Tensor, bits: int) -> torch.Tensor:
    """uint8 codes ``[rows, n]`` (values < 2^bits) → packed ``[rows, ceil(n·bits/8)]``."""
    per = 8 // bits
    rows, n = q.shape
    q = torch.nn.functional.pad(q, (0, (-n) % per)).view(rows, -1, per)
    shifts = torch.arange(per, dtype=torch.uint8) * bits
    return (q << shifts).sum(-1, dtype=torch.uint8) if per > 1 else q[..., 0]


def _unpack(p: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    per = 8 // bits
    shifts = torch.arange(per, dtype=torch.uint8) * bits
    q = (p.unsqueeze(-1) >> shifts) & ((1 << bits) - 1)
    return q.reshape(p.shape[0], -1)[:, :n]


def quantize(x: torch.Tensor, bits: int) -> dict[str, torch.Tensor]:
    """Per-row affine quantisation of ``x`` → ``{"q": packed uint8, "scale": f16 [rows], "offset": f16 [rows]}``."""
    rows = x.reshape(x.shape[0] if x.dim() > 1 else 1, -1).float()
    lo, hi = rows.min(1).values, rows.max(1).values
    scale = ((hi - lo) / (2 ** bits - 1)).clamp_min(1e-8).half()
    offset = lo.half()
    q = torch.round((rows - offset.float()[:, None]) / scale.float()[:, None]).clamp(0, 2 ** bits - 1)
    return {"q": _pack(q.to(torch.uint8), bits), "scale": scale, "offset": offset}


def dequantize(parts: dict[str, torch.Tensor], bits: int, shape: tuple[int, ...]) -> torch.Tensor:
    rows = shape[0] if len(shape) > 1 else 1
    n = math.prod(shape) // rows
    q = _unpack(parts["q"], bits, n).float()
    return (q * parts["scale"].float()[:, None] + parts["offset"].float()[:, None]).reshape(shape)


def _rows_view(t: torch.Tensor) -> torch.Tensor:
    """2-D view whose rows get one scale each: rows along the longer side of a matrix (so a LoRA ``B``
    ``[out, r]`` is scaled per column), a 1-D tensor is one row, higher ranks flatten after dim 0."""
    if t.dim() == 2 and t.shape[0] > t.shape[1]:
        return t.t()
    return t.reshape(t.shape[0] if t.dim() > 1 else 1, -1)


def _from_rows(rows: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    if len(shape) == 2 and shape[0] > shape[1]:
        return rows.t().contiguous()
    return rows.reshape(shape)


def _encode(tensors: dict[str, torch.Tensor], bits: int) -> dict[str, torch.Tensor]:
    """All tensors of a group concatenated in name order (one safetensors entry per part, small headers):
    ``values`` (32/16 bit) or ``codes`` + ``scale`` + ``offset`` (8/4/2 bit)."""
    parts: dict[str, list[torch.Tensor]] = {}
    for name in sorted(tensors):
        rows = _rows_view(tensors[name].detach().cpu().float())
        if bits >= 16:
            parts.setdefault("values", []).append(rows.reshape(-1).to(torch.float32 if bits == 32 else torch.float16))
        else:
            for k, v in quantize(rows, bits).items():
                parts.setdefault({"q": "codes"}.get(k, k), []).append(v.reshape(-1))
    return {k: torch.cat(v).contiguous() for k, v in parts.items()}


def _decode(raw: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]], bits: int,
            where: Path) -> dict[str, torch.Tensor]:
    """Inverse of :func:`_encode`; raises :class:`PackageCorruptError` if sizes do not add up."""
    need = {"values"} if bits >= 16 else {"codes", "scale", "offset"}
    if set(raw) != need:
        raise PackageCorruptError(f"{where}: expected entries {sorted(need)}, found {sorted(raw)}")
    pos = dict.fromkeys(need, 0)
    out = {}
    for name in sorted(shapes):
        shape = shapes[name]
        n_rows, n_cols = _rows_view(torch.empty(shape, device="meta")).shape
        take = ({"values": n_rows * n_cols} if bits >= 16 else
                {"codes": n_rows * (-(-n_cols * bits // 8)), "scale": n_rows, "offset": n_rows})
        chunk = {}
        for k, n in take.items():
            chunk[k] = raw[k][pos[k]:pos[k] + n]
            if chunk[k].numel() != n:
                raise PackageCorruptError(f"{where}: tensor {name!r} of shape {shape} does not fit the stored data")
            pos[k] += n
        if bits >= 16:
            rows = chunk["values"].float().reshape(n_rows, n_cols)
        else:
            rows = dequantize({"q": chunk["codes"].reshape(n_rows, -1), "scale": chunk["scale"],
                               "offset": chunk["offset"]}, bits, (n_rows, n_cols))
        out[name] = _from_rows(rows, shape)
    if any(pos[k] != raw[k].numel() for k in need):
        raise PackageCorruptError(f"{where}: stored data longer than the manifest's tensor shapes")
    return out


def save_package(folder: str | Path, groups: dict[str, dict[str, torch.Tensor]], base: BaseModel,
                 precision_bits: int = 16, info: dict | None = None) -> KnowledgePackage:
    """Write ``groups`` (``{group: {name: float tensor}}``) quantised to ``precision_bits`` into ``folder``."""
    from safetensors.torch import save_file

    if precision_bits not in PRECISIONS:
        raise KnowledgePackageError(f"precision_bits must be one of {PRECISIONS}, got {precision_bits}")
    if not groups:
        raise KnowledgePackageError("a knowledge package needs at least one tensor group")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"format": FORMAT, "precision_bits": precision_bits,
                      "base_model": {"name": base.name, "sha256": base.sha256}, "info": info or {}, "groups": {}}
    for group, tensors in groups.items():
        if not tensors:
            raise KnowledgePackageError(f"group {group!r} is empty")
        if not group.isidentifier():
            raise KnowledgePackageError(f"group name {group!r} must be an identifier")
        path = folder / f"{group}.safetensors"
        save_file(_encode(tensors, precision_bits), str(path), metadata={"format": "pt"})
        manifest["groups"][group] = {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                                     "tensors": {n: list(t.shape) for n, t in tensors.items()}}
    manifest["total_bytes"] = sum(g["bytes"] for g in manifest["groups"].values())
    (folder / _MANIFEST).write_text(json.dumps(seal(manifest), indent=2))
    return load_package(folder, expected_base=base)


def load_package(folder: str | Path, expected_base: BaseModel | None = None) -> KnowledgePackage:
    """Read, verify (manifest schema and SHA-256, files' SHA-256, shapes, base model) and dequantise a
    package to float32.

    Raises :class:`PackageCorruptError` or :class:`PackageMismatchError`.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        manifest = json.loads((folder / _MANIFEST).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise PackageCorruptError(f"{folder}: no {_MANIFEST}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageCorruptError(f"{folder / _MANIFEST}: not valid JSON ({exc})") from None
    check_manifest(manifest, str(folder / _MANIFEST))
    if expected_base is not None:
        got = BaseModel(**manifest["base_model"])
        if got != expected_base:
            raise PackageMismatchError(f"{folder}: package is for base model {got.name!r} "
                                       f"(sha256 {got.sha256[:12]}…), not {expected_base.name!r} "
                                       f"(sha256 {expected_base.sha256[:12]}…)")
    bits = manifest["precision_bits"]
    groups = {}
    for group, entry in manifest["groups"].items():
        path = folder / entry["file"]
        if not path.is_file():
            raise PackageCorruptError(f"{path}: missing")
        if sha256_file(path) != entry["sha256"]:
            raise PackageCorruptError(f"{path}: SHA-256 differs from the manifest (corrupt or altered file)")
        try:
            raw = load_file(str(path))
        except SafetensorError as exc:
            raise PackageCorruptError(f"{path}: unreadable safetensors ({exc})") from None
        tensors = _decode(raw, {n: tuple(v) for n, v in entry["tensors"].items()}, bits, path)
        groups[group] = tensors
    return KnowledgePackage(groups=groups, manifest=manifest, folder=folder, info=manifest.get("info", {}))
