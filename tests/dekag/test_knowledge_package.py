"""Knowledge package: round trip, quantised precision, sizes, refusal of corrupt or mismatched packages."""
import json

import pytest
import torch

from dekag.knowledge_package import (BaseModel, KnowledgePackageError, PackageCorruptError, PackageMismatchError,
                                     base_model_from_folder, dequantize, load_package, quantize, save_package)

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
