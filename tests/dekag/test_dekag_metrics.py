"""Consistency and fidelity metrics, including real-scale image features from local transformers folders."""
import pytest
import torch

from dekag.metrics import ImageFeatureModel, feature_consistency, psnr_ssim
from dekag.miniature.models import FeatureNet


def test_feature_consistency_identical_and_different():
    torch.manual_seed(0)
    net = FeatureNet().eval()
    a = torch.rand(6, 3, 32, 32) * 2 - 1
    same = feature_consistency(net, a, a)
    assert same["feature_cosine"] == pytest.approx(1.0, abs=1e-5) and same["label_agreement"] == 1.0
    other = feature_consistency(net, a, -a)
    assert other["feature_cosine"] < 0.9999
    with pytest.raises(ValueError):
        feature_consistency(net, a, a[:3])


def test_psnr_ssim_orders_noise_levels():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    small = psnr_ssim((ref + 0.02 * torch.randn(ref.shape, generator=g)).clamp(-1, 1), ref)
    large = psnr_ssim((ref + 0.3 * torch.randn(ref.shape, generator=g)).clamp(-1, 1), ref)
    assert small["psnr_db"] > large["psnr_db"] + 10 and small["ssim"] > large["ssim"]


@pytest.mark.parametrize("kind", ["clip", "dinov2"])
def test_image_feature_model_from_local_folder(tmp_path, kind):
    from transformers import CLIPConfig, CLIPModel, Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    if kind == "clip":
        model = CLIPModel(CLIPConfig(
            text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                         "num_attention_heads": 2, "vocab_size": 100},
            vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                           "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
            projection_dim=8))
    else:
        model = Dinov2Model(Dinov2Config(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, image_size=32, patch_size=8))
    model.save_pretrained(tmp_path)
    fm = ImageFeatureModel(tmp_path)
    x = torch.rand(3, 3, 24, 24) * 2 - 1
    f = fm.features(x)
    assert f.shape[0] == 3 and f.dim() == 2
    assert fm.cosine(x, x) == pytest.approx(1.0, abs=1e-5)
    assert fm.cosine(x, torch.flip(x, dims=[0])) < 1.0


def test_image_feature_model_needs_a_local_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        ImageFeatureModel(tmp_path / "missing")
