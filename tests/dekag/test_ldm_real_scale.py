"""The real-scale path: cloud/edge pipelines and a feature model saved to and loaded from local folders
(tiny models built from configs, nothing downloaded), driven through the same MAKD code as the miniature."""
import json

import pytest
import torch

from dekag import ldm
from dekag.knowledge_package import base_model_from_folder, load_package
from dekag.makd.align import aligned_edge, apply_package, run_makd
from dekag.makd.config import MakdConfig


def _tiny_pipeline(width: int, seed: int):
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    torch.manual_seed(seed)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for c in bytes_to_unicode().values():
            vocab[c + suffix] = len(vocab)
    tok = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=24)
    te = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, max_position_embeddings=24, bos_token_id=0,
                                      eos_token_id=1, pad_token_id=1))
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(width, width), norm_num_groups=8,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=8)
    vae = AutoencoderKL(block_out_channels=[8, 8], in_channels=3, out_channels=3, latent_channels=4,
                        norm_num_groups=4, down_block_types=["DownEncoderBlock2D"] * 2,
                        up_block_types=["UpDecoderBlock2D"] * 2)
    sched = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1)
    return StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from transformers import Dinov2Config, Dinov2Model

    root = tmp_path_factory.mktemp("real")
    _tiny_pipeline(16, 0).save_pretrained(root / "cloud")
    _tiny_pipeline(8, 1).save_pretrained(root / "edge")
    torch.manual_seed(2)
    Dinov2Model(Dinov2Config(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                             image_size=16, patch_size=4)).save_pretrained(root / "dino")
    (root / "dino" / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3,
                                                                        "image_std": [0.5] * 3}))
    return root


def test_load_pipeline_refuses_bad_folders(tmp_path):
    with pytest.raises(ldm.PipelineFolderError, match="model_index"):
        ldm.load_pipeline(tmp_path)


def test_generate_latents_is_per_sample_deterministic(folders):
    pipe = ldm.load_pipeline(folders / "edge")
    z = ldm.generate_latents(pipe, ["a cat", "a dog"], [3, 4], num_inference_steps=2)
    z1 = ldm.generate_latents(pipe, ["a dog"], [4], num_inference_steps=2)
    assert z.shape == (2, 4, 8, 8)
    assert torch.allclose(z[1:], z1, atol=1e-5)
    assert ldm.decode_latents(pipe.vae, z).shape == (2, 3, 16, 16)


def test_makd_runs_on_local_diffusers_folders(folders, tmp_path):
    cfg = MakdConfig(cloud_dir=str(folders / "cloud"), edge_dir=str(folders / "edge"),
                     feature_model_dir=str(folders / "dino"), subject_word="cat", metaword="<meta-cat>",
                     init_word="a", train_templates=["a photo of a {}"], held_out_templates=["a {}"],
                     n_images=3, n_eval_seeds=2, num_inference_steps=2, metaword_steps=2, lora_steps=2,
                     batch_size=2, rank=2, threads=1, precision_sweep=[4])
    res = run_makd(cfg, tmp_path / "run")
    for v in ("none", "metaword", "lora", "makd"):
        row = res["variants"][v]["heldout"]
        assert -1.0 <= row["feature_cosine"] <= 1.0 and "label_agreement" not in row
    base = base_model_from_folder(folders / "edge")
    pkg = load_package(tmp_path / "run" / "package", expected_base=base)
    assert set(pkg.groups) == {"metaword", "glora"}
    # the 32-bit-free path: package (16 bit) applied to a fresh edge ≈ artefacts loaded the diffusers way
    a = aligned_edge(lambda: ldm.load_pipeline(folders / "edge"), tmp_path / "run", cfg)
    b = ldm.load_pipeline(folders / "edge")
    apply_package(b, pkg)
    za = ldm.generate_latents(a, ["a photo of a <meta-cat>"], [9], num_inference_steps=2)
    zb = ldm.generate_latents(b, ["a photo of a <meta-cat>"], [9], num_inference_steps=2)
    assert torch.allclose(za, zb, atol=5e-2)
