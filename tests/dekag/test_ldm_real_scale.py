"""The real-scale path on tiny random-weight folders of the real architectures (``tiny_folders`` fixture:
SD-2.1-like UNet edge, PixArt-Σ-like transformer cloud and edge, ViT features; nothing downloaded), driven
through the same code as the miniature world: generation, MAKD stages, packages, G-LoRA on a transformer."""
import pytest
import torch

from dekag import denoiser, ldm
from dekag.knowledge_package import base_model_from_folder, load_package, save_package
from dekag.makd import align
from dekag.makd.glora import add_glora, glora_state_dict, load_glora
from dekag.makd.metaword import (
    MetawordError,
    add_metaword,
    load_metaword,
    metaword_state_dict,
)
from dekag.makd.models import load_models
from dekag.tiny_folders import tiny_makd_config


def test_load_pipeline_refuses_bad_folders(tmp_path):
    with pytest.raises(ldm.PipelineFolderError, match="model_index"):
        ldm.load_pipeline(tmp_path)


@pytest.mark.parametrize("name, family", [("sd21_edge", "unet"), ("pixart_cloud", "transformer")])
def test_generation_is_per_sample_deterministic_for_either_denoiser(tiny_folders, name, family):
    pipe = ldm.load_pipeline(tiny_folders[name])
    assert denoiser.denoiser_name(pipe) == family and denoiser.image_size(pipe) == 64
    z = ldm.generate_latents(pipe, ["a photo of a cat", "a dog"], [3, 4], num_inference_steps=2)
    z1 = ldm.generate_latents(pipe, ["a dog"], [4], num_inference_steps=2)
    assert z.shape == (2, 4, 8, 8)
    assert torch.allclose(z[1:], z1, rtol=1e-4, atol=1e-4) and not torch.allclose(z[0], z[1])
    assert ldm.decode_latents(pipe.vae, z).shape == (2, 3, 64, 64)


def test_larger_latents_than_the_native_size(tiny_folders):
    pipe = ldm.load_pipeline(tiny_folders["pixart_cloud"])
    assert ldm.generate_latents(pipe, ["a cat"], [0], num_inference_steps=2, height=128, width=96).shape \
        == (1, 4, 16, 12)


def test_makd_unet_edge_against_transformer_cloud(tiny_folders, tmp_path):
    cfg = tiny_makd_config(tiny_folders, precision_sweep=[4])
    res = align.run_makd(cfg, tmp_path / "run")
    rows = {v: res["variants"][v]["heldout"] for v in ("none", "metaword", "lora", "makd")}
    assert all("label_agreement" not in r for r in rows.values())
    # the metaword and the LoRA change what the edge draws (consistency differs from the unaligned edge)
    assert rows["makd"]["feature_cosine"] != rows["none"]["feature_cosine"]
    base = base_model_from_folder(tiny_folders["sd21_edge"])
    pkg = load_package(tmp_path / "run" / "package", expected_base=base)
    assert set(pkg.groups) == {"metaword", "glora"} and all(k.startswith("unet.") for k in pkg.groups["glora"])
    a = align.aligned_edge(lambda: ldm.load_pipeline(tiny_folders["sd21_edge"]), tmp_path / "run", cfg)
    b = ldm.load_pipeline(tiny_folders["sd21_edge"])
    align.apply_package(b, pkg)
    za = ldm.generate_latents(a, ["a photo of a <meta-cat>"], [9], num_inference_steps=2)
    zb = ldm.generate_latents(b, ["a photo of a <meta-cat>"], [9], num_inference_steps=2)
    zn = ldm.generate_latents(ldm.load_pipeline(tiny_folders["sd21_edge"]), ["a photo of a <meta-cat>"], [9],
                              num_inference_steps=2)
    assert (za - zb).abs().max() < 0.05 * (za - zn).abs().max()  # 16-bit package ≈ the trained artefacts


def test_glora_on_a_transformer_edge_trains_saves_and_reloads_exactly(tiny_folders, tmp_path):
    cfg = tiny_makd_config(tiny_folders, edge="pixart_edge", variants=["makd"])
    models = load_models(cfg)
    scg = align.build_scg(models, cfg, tmp_path)
    align.train_metaword_stage(models, cfg, tmp_path, scg)
    stats = align.train_lora_stage(models, cfg, tmp_path, scg, 2, with_metaword=True)
    trained = align.aligned_edge(models, tmp_path, cfg)
    net = denoiser.denoiser(trained)
    assert stats["lora_params"] == sum(p.numel() for n, p in net.named_parameters() if "lora_" in n)
    targets = {n.rsplit(".", 1)[-1] for n, _ in net.named_modules() if n.endswith(("to_q", "to_k", "to_v"))}
    assert targets == {"to_q", "to_k", "to_v"}
    sd = glora_state_dict(net, "transformer")
    assert sd and all(k.startswith("transformer.") for k in sd)
    assert any(v.abs().max() > 0 for k, v in sd.items() if "lora.up" in k)  # B moved off its zero init
    # through a 32-bit package onto a fresh pipeline: identical samples
    groups = align.makd_groups(tmp_path, cfg)
    pkg = save_package(tmp_path / "pkg", groups, models.edge_base, precision_bits=32)
    fresh = models.fresh_edge()
    align.apply_package(fresh, load_package(pkg.folder, expected_base=models.edge_base))
    prompt = ["a photo of a <meta-cat>"]
    z1 = ldm.generate_latents(trained, prompt, [5], num_inference_steps=2)
    z2 = ldm.generate_latents(fresh, prompt, [5], num_inference_steps=2)
    assert torch.equal(z1, z2)


def test_packages_refuse_another_family(tiny_folders):
    unet_pipe = ldm.load_pipeline(tiny_folders["sd21_edge"])
    add_glora(denoiser.denoiser(unet_pipe), 2)
    state = glora_state_dict(denoiser.denoiser(unet_pipe), "unet")
    with pytest.raises(ValueError, match="another model family"):
        load_glora(ldm.load_pipeline(tiny_folders["pixart_edge"]), state)
    add_metaword(unet_pipe, "<meta-cat>", "a")
    with pytest.raises(MetawordError, match=r"\[1, 32\]"):
        load_metaword(ldm.load_pipeline(tiny_folders["sd21_edge"]),
                      {"<x>": torch.zeros(1, 7)})
    assert metaword_state_dict(unet_pipe, "<meta-cat>")["<meta-cat>"].shape == (1, 32)


def test_transformer_pipelines_need_lower_case_metawords(tiny_folders):
    with pytest.raises(MetawordError, match="lower-case"):
        add_metaword(ldm.load_pipeline(tiny_folders["pixart_edge"]), "<META-cat>", "digit")
