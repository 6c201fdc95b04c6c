"""Knowledge package: round trip, quantised precision, sizes, refusal of corrupt or mismatched packages."""
import json

import pytest
import torch

from dekag.knowledge_package import (BaseModel, KnowledgePackageError, PackageCorruptError, PackageMismatchError,
                                     base_model_from_folder, dequantize, load_package, quantize, save_package)
from dekag.package_manifest import seal

BASE = BaseModel(name="edge", sha256="ab" * 32)


def _groups(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"metaword": {"<meta-seven>": torch.randn(1, 32, generator=g)},
            "glora": {"unet.a.lora_A.weight": torch.randn(8, 37, generator=g),
                      "unet.a.lora_B.weight": torch.randn(64, 8, generator=g) * 0.01,
                      "bias": torch.randn(5, generator=g)}}


def test_round_trip_32_bit_is_exact(tmp_path):
    groups = _groups()
    pkg = save_package(tmp_path, groups, BASE, precision_bits=32, info={"rank": 8})
    back = load_package(tmp_path, expected_base=BASE)
    assert back.info == {"rank": 8}
    for g, tensors in groups.items():
        for name, t in tensors.items():
            assert torch.equal(back.groups[g][name], t)
    assert pkg.total_bytes == sum(p.stat().st_size for p in tmp_path.glob("*.safetensors"))


@pytest.mark.parametrize("bits", [16, 8, 4, 2])
def test_quantised_error_within_half_a_step_per_row(tmp_path, bits):
    groups = _groups(1)
    back = save_package(tmp_path, groups, BASE, precision_bits=bits).groups
    for g, tensors in groups.items():
        for name, t in tensors.items():
            view = (lambda x: x.t()) if t.dim() == 2 and t.shape[0] > t.shape[1] else \
                (lambda x: x.reshape(t.shape[0] if t.dim() > 1 else 1, -1))  # one scale per row of this view
            rows = view(t)
            err = view(back[g][name] - t).abs().max(1).values
            step = (rows.max(1).values - rows.min(1).values) / (2 ** bits - 1)
            bound = 1e-3 * rows.abs().max(1).values if bits == 16 else step * 0.5 + 2e-3 * rows.abs().max(1).values
            assert torch.all(err <= bound + 1e-6), (bits, name, err, bound)


def test_fewer_bits_give_smaller_packages(tmp_path):
    groups = {"glora": {"w": torch.randn(256, 256)}}
    sizes = {b: save_package(tmp_path / str(b), groups, BASE, precision_bits=b).total_bytes for b in (32, 16, 8, 4, 2)}
    assert sizes[32] > sizes[16] > sizes[8] > sizes[4] > sizes[2]
    assert sizes[2] < sizes[32] / 12


def test_pack_unpack_all_codes():
    for bits in (2, 4, 8):
        x = torch.arange(2 ** bits, dtype=torch.float32).repeat(3, 1) + torch.tensor([[0.0], [10.0], [-4.0]])
        y = dequantize(quantize(x, bits), bits, tuple(x.shape))
        assert torch.allclose(y, x, atol=0.02 * x.abs().max())


def test_corrupted_file_is_refused(tmp_path):
    save_package(tmp_path, _groups(), BASE, precision_bits=8)
    path = tmp_path / "glora.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PackageCorruptError, match="SHA-256"):
        load_package(tmp_path, expected_base=BASE)


def test_missing_file_and_bad_manifest_are_refused(tmp_path):
    save_package(tmp_path, _groups(), BASE)
    (tmp_path / "metaword.safetensors").unlink()
    with pytest.raises(PackageCorruptError, match="missing"):
        load_package(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(PackageCorruptError, match="JSON"):
        load_package(tmp_path)


def test_shape_tampering_in_manifest_is_refused(tmp_path):
    save_package(tmp_path, _groups(), BASE, precision_bits=16)
    m = json.loads((tmp_path / "manifest.json").read_text())
    m["groups"]["glora"]["tensors"]["bias"] = [6]
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(PackageCorruptError, match="manifest_sha256"):
        load_package(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(seal(m)))  # even with the manifest's hash redone
    with pytest.raises(PackageCorruptError, match="shape"):
        load_package(tmp_path)


def test_mismatched_base_model_is_refused(tmp_path):
    save_package(tmp_path, _groups(), BASE)
    with pytest.raises(PackageMismatchError, match="base model"):
        load_package(tmp_path, expected_base=BaseModel(name="edge", sha256="cd" * 32))


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(KnowledgePackageError):
        save_package(tmp_path, _groups(), BASE, precision_bits=3)
    with pytest.raises(KnowledgePackageError):
        save_package(tmp_path, {"bad name": {"w": torch.ones(2)}}, BASE)


def test_base_model_hash_follows_weights(tmp_path):
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "w.safetensors").write_bytes(b"abc")
    a = base_model_from_folder(tmp_path, "edge")
    (tmp_path / "unet" / "w.safetensors").write_bytes(b"abd")
    assert base_model_from_folder(tmp_path, "edge") != a
    with pytest.raises(FileNotFoundError):
        base_model_from_folder(tmp_path / "nothing")


def _leaves(node, path=()):
    """Paths of every leaf value of a JSON tree (dict keys and list indices)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else None
    if items is None:
        yield path
        return
    for key, value in items:
        yield from _leaves(value, (*path, key))


def _edited(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    return value[:-1] + ("0" if value[-1:] != "0" else "1") if value else "x"


def test_every_edited_manifest_field_is_refused(tmp_path):
    save_package(tmp_path, _groups(), BASE, precision_bits=8, info={"metaword": "<meta-seven>", "rank": 8})
    original = json.loads((tmp_path / "manifest.json").read_text())
    paths = [p for p in _leaves(original) if p != ("manifest_sha256",)]
    assert ("info", "metaword") in paths and len(paths) >= 20
    for path in paths:
        m = json.loads(json.dumps(original))
        node = m
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = _edited(node[path[-1]])
        (tmp_path / "manifest.json").write_text(json.dumps(m))
        with pytest.raises(PackageCorruptError):
            load_package(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(original))
    assert load_package(tmp_path, expected_base=BASE).info["metaword"] == "<meta-seven>"


@pytest.mark.parametrize("edit", [
    lambda m: m["groups"]["glora"].__setitem__("file", "../glora.safetensors"),
    lambda m: m["groups"]["glora"].__setitem__("file", "/etc/passwd"),
    lambda m: m["groups"]["glora"].__setitem__("file", "sub/glora.safetensors"),
    lambda m: m.__delitem__("groups"),
    lambda m: m.__setitem__("groups", []),
    lambda m: m["groups"]["glora"].__setitem__("tensors", {"w": "4x3"}),
    lambda m: m["groups"]["glora"].__setitem__("bytes", "12"),
    lambda m: m.__setitem__("base_model", {"name": "edge"}),
    lambda m: m.__setitem__("precision_bits", 3),
    lambda m: m.__setitem__("info", ["not", "a", "table"]),
    lambda m: m.__setitem__("extra", 1),
], ids=["parent", "absolute", "subfolder", "no-groups", "groups-list", "shape-str", "bytes-str", "base-keys",
        "bits", "info-list", "unknown-key"])
def test_schema_violations_are_refused_with_the_package_error(tmp_path, edit):
    """Even with the manifest's own hash redone, a schema violation is a PackageCorruptError (no KeyError,
    TypeError or file read outside the folder)."""
    save_package(tmp_path, _groups(), BASE, precision_bits=8)
    m = json.loads((tmp_path / "manifest.json").read_text())
    edit(m)
    m.pop("manifest_sha256", None)
    (tmp_path / "manifest.json").write_text(json.dumps(seal(m)))
    with pytest.raises(PackageCorruptError):
        load_package(tmp_path, expected_base=BASE)


def test_binary_manifest_is_refused(tmp_path):
    save_package(tmp_path, _groups(), BASE)
    (tmp_path / "manifest.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PackageCorruptError, match="JSON"):
        load_package(tmp_path)
