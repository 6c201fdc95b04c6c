"""Tiny random-weight folders of the real architectures, built from configs (nothing downloaded).

They exercise the real-scale code path (local diffusers/transformers folders) in seconds on a CPU:

* ``sd21_edge/``: an SD-2.1-like ``StableDiffusionPipeline`` (``UNet2DConditionModel`` with linear attention
  projections, CLIP text encoder + byte-level tokenizer, ``AutoencoderKL`` with 4 blocks = the real
  ``vae_scale_factor`` 8, DDIM with v-prediction): 64×64 images, latents ``[4, 8, 8]``.
* ``pixart_cloud/`` and ``pixart_edge/``: PixArt-Σ-like ``PixArtSigmaPipeline`` (``PixArtTransformer2DModel``
  with learned sigma, T5 encoder + Unigram tokenizer, the same VAE architecture, DPM-Solver, ε-prediction).
* ``vit_features/``: a DINO-v1-style ``ViTModel`` (no pooler) with ``preprocessor_config.json``.

``python -m dekag.tiny_folders --out DIR`` writes all four; :func:`build_tiny_folders` is what the test
fixtures call. Sizes follow ``reference/real-scale-diffusers-facts.md``; the real models load from the same
kind of folders (``[models]`` in the testbed TOML, ``cloud_dir``/``edge_dir`` in a MAKD config).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

#: Words the tiny tokenizers know as whole pieces (prompts of the tests and the README example).
WORDS = ("a", "photo", "of", "the", "cat", "dog", "digit", "picture", "an", "image", "drawing", "seven", "two")
TEXT_LENGTH = 32
"""Token length of the tiny tokenizers (byte-level CLIP needs about one token per character)."""


def _clip_text(seed: int, hidden: int = 32):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    torch.manual_seed(seed)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for c in bytes_to_unicode().values():
            vocab[c + suffix] = len(vocab)
    tok = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=TEXT_LENGTH)
    te = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                                      num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=TEXT_LENGTH,
                                      bos_token_id=0, eos_token_id=1, pad_token_id=1))
    return tok, te.eval()


def _t5_text(seed: int, d_model: int = 32):
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    torch.manual_seed(seed)
    chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789<>-_"))
    pieces = ([(f"▁{w}", -1.0) for w in WORDS] + [(c, -5.0) for c in chars] + [(f"▁{c}", -4.0) for c in chars])
    tok = T5Tokenizer(vocab=[("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)] + pieces, extra_ids=0,
                      model_max_length=TEXT_LENGTH)
    te = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                                 feed_forward_proj="gated-gelu", dropout_rate=0.0))
    return tok, te.eval()


def _vae(seed: int):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(block_out_channels=[8, 8, 16, 16], in_channels=3, out_channels=3, latent_channels=4,
                         norm_num_groups=8, down_block_types=["DownEncoderBlock2D"] * 4,
                         up_block_types=["UpDecoderBlock2D"] * 4, sample_size=64).eval()


def sd21_like_pipeline(seed: int = 0):
    """A tiny SD-2.1-like ``StableDiffusionPipeline`` (v-prediction, linear projections, 64×64 images)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    tok, te = _clip_text(seed)
    torch.manual_seed(seed + 1)
    unet = UNet2DConditionModel(sample_size=8, layers_per_block=1, block_out_channels=(16, 32), norm_num_groups=8,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=(2, 4), use_linear_projection=True).eval()
    sched = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                          set_alpha_to_one=False, steps_offset=1, prediction_type="v_prediction")
    return StableDiffusionPipeline(vae=_vae(seed + 2), text_encoder=te, tokenizer=tok, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def pixart_like_pipeline(seed: int = 0):
    """A tiny PixArt-Σ-like ``PixArtSigmaPipeline`` (transformer denoiser with learned sigma, T5 text)."""
    from diffusers import DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel

    tok, te = _t5_text(seed)
    torch.manual_seed(seed + 1)
    net = PixArtTransformer2DModel(sample_size=8, num_layers=2, patch_size=2, attention_head_dim=8,
                                   num_attention_heads=3, caption_channels=32, cross_attention_dim=24,
                                   in_channels=4, out_channels=8, norm_num_groups=8,
                                   use_additional_conditions=False).eval()
    return PixArtSigmaPipeline(tokenizer=tok, text_encoder=te, vae=_vae(seed + 2), transformer=net,
                               scheduler=DPMSolverMultistepScheduler())


def vit_feature_model(folder: Path, seed: int = 0) -> Path:
    """A DINO-v1-style ``ViTModel`` (CLS token features) saved with its normalisation in ``folder``."""
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(seed)
    ViTModel(ViTConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                       image_size=32, patch_size=8), add_pooling_layer=False).eval().save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3, "image_std": [0.5] * 3}))
    return folder


def build_tiny_folders(root: str | Path) -> dict[str, Path]:
    """Write ``sd21_edge``, ``pixart_cloud``, ``pixart_edge`` and ``vit_features`` under ``root`` (≈ 3 MB,
    a few seconds); returns ``{name: folder}``."""
    root = Path(root)
    folders = {name: root / name for name in ("sd21_edge", "pixart_cloud", "pixart_edge", "vit_features")}
    sd21_like_pipeline(0).save_pretrained(folders["sd21_edge"])
    pixart_like_pipeline(10).save_pretrained(folders["pixart_cloud"])
    pixart_like_pipeline(20).save_pretrained(folders["pixart_edge"])
    vit_feature_model(folders["vit_features"], 30)
    return folders


def tiny_makd_config(folders: dict[str, Path], edge: str = "sd21_edge", **changes):
    """A MAKD config of a few steps on :func:`build_tiny_folders` output: ``edge`` (``sd21_edge`` or
    ``pixart_edge``) against ``pixart_cloud``, subject "cat", metaword "<meta-cat>", ViT consistency."""
    from dekag.makd.config import MakdConfig

    base = dict(cloud_dir=str(folders["pixart_cloud"]), edge_dir=str(folders[edge]),
                feature_model_dir=str(folders["vit_features"]), subject_word="cat", metaword="<meta-cat>",
                init_word="a" if edge == "sd21_edge" else "digit", train_templates=["a photo of a {}"],
                held_out_templates=["a picture of a {}"], n_images=4, n_eval_seeds=2, num_inference_steps=2,
                metaword_steps=2, lora_steps=2, batch_size=2, rank=2, threads=1)
    return MakdConfig(**{**base, **changes})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dekag.tiny_folders", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder to write the four model folders into")
    args = ap.parse_args(argv)
    for name, folder in build_tiny_folders(args.out).items():
        print(f"{name}: {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
