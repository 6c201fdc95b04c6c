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


def test_centred_cosine_separates_classes_of_real_digits_and_raw_cosine_does_not():
    from dekag.metrics import real_image_baselines
    from dekag.miniature.world import load_world

    world = load_world()
    net = world.features
    b = real_image_baselines(net.features, world.dataset.images, world.dataset.labels, n_pairs=200,
                             classify=lambda x: net(x).argmax(1))
    chance, ceiling = b["chance"], b["ceiling"]
    assert chance["pairs"] == ceiling["pairs"] == 200
    assert chance["feature_cosine"] > 0.6          # non-negative features: unrelated digits already score high
    assert chance["centred_cosine"] < 0.1 < 0.4 < ceiling["centred_cosine"]
    assert chance["label_agreement"] < 0.05 and ceiling["label_agreement"] > 0.85


def test_consistency_centres_and_classifies():
    from dekag.metrics import consistency

    torch.manual_seed(0)
    a = torch.rand(4, 3, 8, 8)
    feats = lambda x: x.flatten(1)  # noqa: E731
    same = consistency(feats, a, a, centre=torch.zeros(192), classify=lambda x: x.flatten(1).argmax(1))
    assert same == pytest.approx({"feature_cosine": 1.0, "centred_cosine": 1.0, "label_agreement": 1.0})
    centre = a.flatten(1).mean(0)
    opposite = consistency(feats, a, 2 * centre.view(1, 3, 8, 8) - a, centre=centre)
    assert opposite["centred_cosine"] == pytest.approx(-1.0, abs=1e-5) and opposite["feature_cosine"] > 0


def test_wilson_interval():
    from dekag.metrics import wilson_interval

    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-3)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-3)
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
