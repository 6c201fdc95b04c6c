"""JSCC codec: shapes, unit power, decode inputs, numpy hand-over, config and condition validation."""
import numpy as np
import pytest
import torch

from common.tomlconfig import ConfigError
from dekag.jscc import (CodecConfig, Condition, ConditionError, JsccCodec, ShapeError, TkaConfig, symbols_from_numpy,
                        symbols_to_numpy)

COND = Condition(10.0, 100e-9)


def _codec(**kw) -> JsccCodec:
    torch.manual_seed(0)
    return JsccCodec(CodecConfig(**kw))


def test_encode_gives_k_complex_symbols_with_unit_power_per_latent():
    codec = _codec(bandwidth_ratio=0.25)
    lat = torch.randn(5, 4, 8, 8) * torch.tensor([1.0, 3.0, 0.1, 10.0])[None, :, None, None]
    sym = codec.encode(lat, COND)
    assert sym.shape == (5, 64) and sym.dtype == torch.complex64
    assert codec.num_symbols == 64 == round(0.25 * 4 * 8 * 8)
    torch.testing.assert_close(sym.abs().square().mean(dim=1), torch.ones(5), atol=1e-5, rtol=0)


def test_decode_accepts_scalar_per_latent_and_per_symbol_noise_and_restores_shape():
    codec = _codec()
    sym = codec.encode(torch.randn(3, 4, 8, 8), COND)
    a = codec.decode(sym, 0.1, COND)
    b = codec.decode(sym, torch.full((3,), 0.1), COND)
    c = codec.decode(sym, torch.full((3, 128), 0.1), COND)
    assert a.shape == (3, 4, 8, 8)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    assert not torch.allclose(a, codec.decode(sym, 1.0, COND))  # the noise level reaches the decoder


def test_bad_shapes_and_noise_raise_shape_error():
    codec = _codec()
    with pytest.raises(ShapeError):
        codec.encode(torch.randn(2, 3, 8, 8), COND)
    sym = codec.encode(torch.randn(2, 4, 8, 8), COND)
    with pytest.raises(ShapeError):
        codec.decode(sym.real, 0.1, COND)
    with pytest.raises(ShapeError):
        codec.decode(sym, torch.zeros(2), COND)
    with pytest.raises(ShapeError):
        codec.decode(sym, torch.ones(2, 7), COND)


def test_latent_stats_standardise_and_decode_denormalises():
    codec = _codec()
    data = torch.randn(64, 4, 8, 8) * 5 + 3
    codec.set_latent_stats(data)
    z = codec.standardise(data)
    assert abs(float(z.mean())) < 1e-4 and abs(float(z.std()) - 1) < 1e-2


def test_downsampled_codec_scales_to_sd_latents():
    cfg = CodecConfig(latent_height=64, latent_width=64, downsample=4, bandwidth_ratio=1 / 16, hidden_channels=8)
    codec = JsccCodec(cfg)
    assert cfg.num_symbols == 1024
    sym = codec.encode(torch.randn(1, 4, 64, 64), COND)
    assert sym.shape == (1, 1024)
    assert codec.decode(sym, 0.1, COND).shape == (1, 4, 64, 64)


def test_numpy_round_trip_of_one_latent():
    codec = _codec()
    sym = codec.encode(torch.randn(1, 4, 8, 8), COND)
    arr = symbols_to_numpy(sym)
    assert arr.shape == (128,) and arr.dtype == np.complex64
    back = symbols_from_numpy(arr, codec.num_symbols)
    torch.testing.assert_close(back, sym.detach())
    with pytest.raises(ShapeError):
        symbols_from_numpy(arr[:10], codec.num_symbols)
    with pytest.raises(ShapeError):
        symbols_from_numpy(arr.real, codec.num_symbols)


@pytest.mark.parametrize("kw", [dict(bandwidth_ratio=0.1), dict(downsample=3), dict(latent_height=6, downsample=4)])
def test_codec_config_rejects_impossible_shapes(kw):
    with pytest.raises(ConfigError):
        CodecConfig(**kw)


def test_tka_config_toml_round_trip_and_strictness():
    cfg = TkaConfig()
    assert TkaConfig.from_toml_str(cfg.to_toml_str()) == cfg
    with pytest.raises(ConfigError):
        TkaConfig.from_toml_str("[cala]\nrank = 17\n")
    with pytest.raises(ConfigError):
        TkaConfig.from_toml_str("[channel]\ntdl_models = ['F']\n")


def test_condition_normalisation_and_errors():
    c = Condition(torch.tensor([0.0, 10.0, 20.0]), torch.tensor([30e-9, 300e-9, 3000e-9])).normalised(3)
    torch.testing.assert_close(c, torch.tensor([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]]), atol=1e-5, rtol=0)
    assert Condition(5.0, 1e-7).normalised(4).shape == (4, 2)
    with pytest.raises(ConditionError):
        Condition(5.0, -1e-7).normalised(1)
    with pytest.raises(ConditionError):
        Condition(torch.zeros(3), 1e-7).normalised(2)
    with pytest.raises(ConditionError):
        _codec().encode(torch.randn(1, 4, 8, 8), None)


def test_latent_sources(tmp_path):
    from safetensors.torch import save_file

    from dekag.jscc import latent_file, standin_latents, vae_latents
    from dekag.miniature.world import CHECKPOINT_DIR

    s = standin_latents()
    assert s.latents.shape == (1797, 4, 8, 8) and "STAND-IN" in s.source
    torch.testing.assert_close(s.decode_image(s.latents[:3]).shape, torch.Size([3, 8, 8]))
    train, test = s.split(0.1, seed=0)
    assert len(train) + len(test) == 1797
    if not (CHECKPOINT_DIR / "vae" / "config.json").is_file():
        pytest.skip("miniature world VAE checkpoint not present")
    v = vae_latents(images=torch.rand(3, 3, 32, 32) * 2 - 1)
    assert v.latents.shape == (3, 4, 8, 8) and v.decode_image(v.latents).shape == (3, 3, 32, 32)
    save_file({"latents": v.latents}, str(tmp_path / "z.safetensors"))
    f = latent_file(str(tmp_path / "z.safetensors"))
    torch.testing.assert_close(f.latents, v.latents)
    with pytest.raises(ValueError):
        latent_file(str(tmp_path / "z.safetensors"), key="nope")
