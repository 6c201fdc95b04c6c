"""MAKD with mixed precision through accelerate: bf16 autocast on the CPU (metaword + G-LoRA steps, stage
checkpoint resume), trainable tensors stay float32, only they change; fp16 off CUDA is a ConfigError."""
import math

import pytest
import torch
from safetensors.torch import load_file
from stage_interrupt import interrupt_then_resume, share_metaword

from common import ConfigError
from dekag import ldm
from dekag.makd import align
from dekag.makd.config import MakdConfig
from dekag.makd.glora import add_glora, train_glora
from dekag.makd.loss import noise_prediction_loss
from dekag.makd.metaword import add_metaword, train_metaword
from dekag.makd.precision import frozen_weight_dtype, make_accelerator
from dekag.miniature.world import load_world


@pytest.fixture(scope="module")
def world():
    torch.set_num_threads(1)
    ldm.quiet_library_output()
    return load_world()


def _losses(world, mixed_precision: str) -> tuple[list[float], list[float], dict, dict]:
    """Two metaword steps then two G-LoRA steps; returns the losses and the weights before/after."""
    from diffusers import DDPMScheduler
    from diffusers.training_utils import cast_training_params

    pipe = world.fresh_edge()
    acc = make_accelerator(mixed_precision, "cpu")
    ddpm = DDPMScheduler.from_config(pipe.scheduler.config)
    images = world.dataset.images[world.dataset.labels == 7][:4]
    latents = ldm.encode_images(world.vae, images, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(3)

    def loss():
        return noise_prediction_loss(pipe, latents, ["a photo of a <meta-seven>"] * 4, ddpm, gen)

    tid = add_metaword(pipe, "<meta-seven>", "digit")
    before = {**{f"te.{k}": v.clone() for k, v in pipe.text_encoder.state_dict().items()},
              **{f"unet.{k}": v.clone() for k, v in pipe.unet.state_dict().items()}}
    meta = train_metaword(pipe, tid, loss, 2, 1e-2, accelerator=acc)
    params = add_glora(pipe.unet, rank=2)
    cast_training_params(pipe.unet, torch.float32)
    lora = train_glora(params, loss, 2, 1e-2, accelerator=acc)
    after = {**{f"te.{k}": v for k, v in pipe.text_encoder.state_dict().items()},
             **{f"unet.{k}": v for k, v in pipe.unet.state_dict().items()}}
    return meta, lora, before, after, tid


def test_bf16_autocast_trains_only_the_metaword_row_and_the_lora(world):
    meta, lora, before, after, tid = _losses(world, "bf16")
    assert all(math.isfinite(x) for x in meta + lora)
    emb_key = next(k for k in after if k.startswith("te.") and "token_embedding" in k)
    changed = sorted(k for k in after if "lora_" not in k and not torch.equal(before[k.replace(".base_layer", "")],
                                                                              after[k]))
    assert changed == [emb_key]                               # frozen weights untouched
    assert torch.equal(after[emb_key][:tid], before[emb_key][:tid])
    assert not torch.equal(after[emb_key][tid], before[emb_key][tid])
    lora_b = [v for k, v in after.items() if "lora_B" in k]
    assert lora_b and all(v.dtype == torch.float32 for k, v in after.items() if "lora_" in k)
    assert any(v.abs().max() > 0 for v in lora_b)             # B starts at zero: the LoRA was trained
    assert after[emb_key].dtype == torch.float32
    # bf16 autocast really ran: the losses differ from the float32 run with the same seeds
    meta32, lora32, *_ = _losses(world, "no")
    assert meta != meta32


def test_autocast_and_precision_settings():
    with make_accelerator("bf16", "cpu").autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with make_accelerator("no", "cpu").autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    assert frozen_weight_dtype("bf16", "cpu") == torch.float32
    assert frozen_weight_dtype("bf16", "cuda") == torch.bfloat16
    assert frozen_weight_dtype("fp16", "cuda:0") == torch.float16


def test_fp16_off_cuda_and_unknown_precisions_are_config_errors():
    with pytest.raises(ConfigError, match="fp16.*CUDA"):
        MakdConfig(mixed_precision="fp16")
    with pytest.raises(ConfigError, match="mixed_precision must be one of"):
        MakdConfig(mixed_precision="fp8")
    with pytest.raises(ConfigError, match="CUDA"):
        make_accelerator("fp16", "cpu")
    assert MakdConfig(mixed_precision="fp16", device="cuda").mixed_precision == "fp16"


def test_bf16_lora_stage_resumes_from_its_checkpoint(world, tmp_path, monkeypatch):
    cfg = MakdConfig(n_images=4, n_eval_seeds=2, num_inference_steps=3, metaword_steps=2, lora_steps=3,
                     batch_size=2, rank=2, checkpoint_every=1, threads=1, mixed_precision="bf16")
    models = align.load_models(cfg)
    scg = align.build_scg(models, cfg, tmp_path / "a")
    align.train_metaword_stage(models, cfg, tmp_path / "a", scg)
    ref = align.train_lora_stage(models, cfg, tmp_path / "a", scg, 2, with_metaword=True)
    assert math.isfinite(ref["final_loss"])

    share_metaword(tmp_path / "a", tmp_path / "b")
    stats = interrupt_then_resume(
        monkeypatch, lambda: align.train_lora_stage(models, cfg, tmp_path / "b", scg, 2, with_metaword=True))
    assert stats["resumed_at"] == 2 and math.isfinite(stats["final_loss"])
    saved = load_file(str(tmp_path / "b" / "makd_r2" / "pytorch_lora_weights.safetensors"))
    assert saved and all(v.dtype == torch.float32 for v in saved.values())
