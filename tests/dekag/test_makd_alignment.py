"""MAKD on the shipped miniature world: metaword mechanics, diffusers save/load round trip (exact),
checkpoint resume, the whole schedule with baselines, knowledge package applied to a fresh edge."""
import pytest
import torch
from stage_interrupt import interrupt_then_resume, share_metaword

from common import ConfigError
from dekag import ldm
from dekag.makd import align
from dekag.makd.config import MakdConfig
from dekag.makd.glora import add_glora, glora_state_dict, load_glora, save_glora, train_glora
from dekag.makd.loss import noise_prediction_loss
from dekag.makd.metaword import MetawordError, add_metaword, save_metaword, train_metaword
from dekag.miniature.world import load_world

PROMPT = "a photo of a <meta-seven>"


@pytest.fixture(scope="module")
def world():
    torch.set_num_threads(1)
    ldm.quiet_library_output()
    return load_world()


def _loss(world, pipe, word, gen):
    from diffusers import DDPMScheduler

    ddpm = DDPMScheduler.from_config(pipe.scheduler.config)
    images = world.dataset.images[world.dataset.labels == 7][:8]
    latents = ldm.encode_images(world.vae, images, torch.Generator().manual_seed(0))
    return lambda: noise_prediction_loss(pipe, latents[:4], [f"a photo of a {word}"] * 4, ddpm, gen)


def test_metaword_training_changes_only_its_row(world):
    pipe = world.fresh_edge()
    before = pipe.text_encoder.get_input_embeddings().weight.detach().clone()
    tid = add_metaword(pipe, "<meta-seven>", "digit")
    emb = pipe.text_encoder.get_input_embeddings().weight
    init_id = pipe.tokenizer.convert_tokens_to_ids("digit</w>")
    assert torch.equal(emb[tid], emb[init_id])
    train_metaword(pipe, tid, _loss(world, pipe, "<meta-seven>", torch.Generator().manual_seed(1)), 3, 1e-2)
    assert torch.equal(emb[:tid], before)
    assert not torch.equal(emb[tid], emb[init_id])


def test_metaword_refuses_bad_words(world):
    pipe = world.fresh_edge()
    with pytest.raises(MetawordError, match="exactly one"):
        add_metaword(pipe, "<m>", "qqq zzz")
    add_metaword(pipe, "<m>", "digit")
    with pytest.raises(MetawordError, match="already exists"):
        add_metaword(pipe, "<m>", "digit")


def test_fresh_pipeline_reproduces_aligned_edge_exactly(world, tmp_path):
    pipe = world.fresh_edge()
    gen = torch.Generator().manual_seed(2)
    tid = add_metaword(pipe, "<meta-seven>", "digit")
    loss = _loss(world, pipe, "<meta-seven>", gen)
    train_metaword(pipe, tid, loss, 2, 1e-2)
    params = add_glora(pipe.unet, rank=4)
    train_glora(params, loss, 3, 1e-2)
    save_metaword(pipe, "<meta-seven>", tmp_path / "learned_embeds.safetensors")
    save_glora(pipe.unet, tmp_path)
    z_trained = ldm.generate_latents(pipe, [PROMPT] * 2, [5, 6], num_inference_steps=4)

    fresh = world.fresh_edge()
    fresh.load_textual_inversion(str(tmp_path / "learned_embeds.safetensors"), token="<meta-seven>")
    fresh.load_lora_weights(str(tmp_path), weight_name="pytorch_lora_weights.safetensors")
    z_loaded = ldm.generate_latents(fresh, [PROMPT] * 2, [5, 6], num_inference_steps=4)
    assert (z_trained - z_loaded).abs().max().item() == 0.0
    fresh.unload_lora_weights()
    z_no_lora = ldm.generate_latents(fresh, [PROMPT] * 2, [5, 6], num_inference_steps=4)
    assert (z_trained - z_no_lora).abs().max().item() > 0.0


def test_glora_on_the_resnet_convs_reloads_exactly_and_unknown_targets_are_refused(world):
    pipe = world.fresh_edge()
    loss = _loss(world, pipe, "seven", torch.Generator().manual_seed(3))
    params = add_glora(pipe.unet, 2, ("to_q", "conv1", "conv2"), seed=1)
    assert any(p.dim() == 4 for p in params)                    # conv LoRA factors are conv weights
    train_glora(params, loss, 3, 1e-2)
    state = glora_state_dict(pipe.unet, "unet")
    assert any(".conv2." in k for k in state) and not any(".to_k." in k for k in state)
    z_trained = ldm.generate_latents(pipe, ["a photo of a seven"] * 2, [5, 6], num_inference_steps=4)

    fresh = world.fresh_edge()
    load_glora(fresh, state)                                    # targets read back from the tensor names
    z_loaded = ldm.generate_latents(fresh, ["a photo of a seven"] * 2, [5, 6], num_inference_steps=4)
    assert (z_trained - z_loaded).abs().max().item() == 0.0
    with pytest.raises(ValueError, match=r"\['to_qq'\] match no module"):
        add_glora(world.fresh_edge().unet, 2, ("to_q", "to_qq"))


def _tiny_cfg(**kw):
    base = dict(n_images=4, n_eval_seeds=2, num_inference_steps=3, metaword_steps=4, lora_steps=3, batch_size=2,
                rank=2, checkpoint_every=1, threads=1)
    return MakdConfig(**{**base, **kw})


def test_interrupted_stage_resumes_to_identical_result(world, tmp_path, monkeypatch):
    cfg = _tiny_cfg()
    models = align.load_models(cfg)
    scg = align.build_scg(models, cfg, tmp_path / "a")
    align.train_metaword_stage(models, cfg, tmp_path / "a", scg)

    scg_b = align.build_scg(models, cfg, tmp_path / "b")
    stats = interrupt_then_resume(monkeypatch,
                                  lambda: align.train_metaword_stage(models, cfg, tmp_path / "b", scg_b))
    assert stats["resumed_at"] == 2
    a = (tmp_path / "a" / "metaword" / "learned_embeds.safetensors").read_bytes()
    b = (tmp_path / "b" / "metaword" / "learned_embeds.safetensors").read_bytes()
    assert a == b


def test_interrupted_lora_stage_resumes_to_identical_result(world, tmp_path, monkeypatch):
    cfg = _tiny_cfg(metaword_steps=2)
    models = align.load_models(cfg)
    scg = align.build_scg(models, cfg, tmp_path / "a")
    align.train_metaword_stage(models, cfg, tmp_path / "a", scg)
    torch.manual_seed(123)  # the global RNG state must not matter (peft draws LoRA A from it)
    align.train_lora_stage(models, cfg, tmp_path / "a", scg, 2, with_metaword=True)

    share_metaword(tmp_path / "a", tmp_path / "b")
    stats = interrupt_then_resume(
        monkeypatch, lambda: align.train_lora_stage(models, cfg, tmp_path / "b", scg, 2, with_metaword=True),
        before_each=lambda: torch.manual_seed(456))
    assert stats["resumed_at"] == 2
    a = (tmp_path / "a" / "makd_r2" / "pytorch_lora_weights.safetensors").read_bytes()
    b = (tmp_path / "b" / "makd_r2" / "pytorch_lora_weights.safetensors").read_bytes()
    assert a == b


def test_run_makd_with_baselines_package_and_aligned_latents(world, tmp_path):
    cfg = _tiny_cfg(precision_sweep=[2])
    res = align.run_makd(cfg, tmp_path)
    assert set(res["variants"]) == {"none", "metaword", "lora", "makd"}
    for row in res["variants"].values():
        assert set(row) >= {"heldout", "scg_seeds", "heldout_seeds_heldout_prompts"}
        h = row["heldout"]
        lo, hi = h["label_agreement_ci95"]
        assert lo <= h["label_agreement"] <= hi and hi - lo > 0.25  # 10 images: ≥ 0.28 wide even at 0 or 10 of 10
        assert h["n_images"] == 2 * (len(cfg.train_templates) + len(cfg.held_out_templates))
    chance, ceiling = res["baselines"]["chance"], res["baselines"]["ceiling"]
    assert chance["centred_cosine"] + 0.3 < ceiling["centred_cosine"]     # centring separates the classes
    assert chance["label_agreement"] + 0.8 < ceiling["label_agreement"]
    assert res["package"]["bytes"] > res["precision_sweep"]["2"]["package_bytes"] > 0
    z = align.aligned_edge_latents(tmp_path, ["a photo of a seven", "a handwritten seven"], [1, 2])
    assert z.shape == (2, 4, 8, 8)
    # resume: a rerun reuses every stage
    again = align.run_makd(cfg, tmp_path)
    assert again["stages"]["metaword"] == res["stages"]["metaword"]
    with pytest.raises(ConfigError, match="different config"):
        align.run_makd(_tiny_cfg(lora_lr=0.5), tmp_path)


def test_config_validation():
    with pytest.raises(ConfigError, match="overlap"):
        MakdConfig(eval_seed=10, n_images=40)
    with pytest.raises(ConfigError, match="unknown variants"):
        MakdConfig(variants=["none", "dreambooth"])
    with pytest.raises(ConfigError, match="precision"):
        MakdConfig(precision_sweep=[3])
    with pytest.raises(ConfigError, match="together"):
        MakdConfig(cloud_dir="x")
    with pytest.raises(ConfigError, match="lora_targets"):
        MakdConfig(lora_targets=[])
    cfg = MakdConfig(rank_sweep=[1, 2])
    assert MakdConfig.from_toml_str(cfg.to_toml_str()) == cfg


def test_to_edge_prompt_swaps_whole_word_only():
    cfg = MakdConfig()
    assert align.to_edge_prompt("a photo of a seven", cfg) == "a photo of a <meta-seven>"
    assert align.to_edge_prompt("sevens", cfg) == "sevens"


def test_prior_preservation_trains_on_the_edges_own_images_of_other_classes(world, tmp_path):
    cfg = _tiny_cfg(metaword_steps=1, lora_steps=2, prior_loss_weight=1.0, prior_words=["one", "two"],
                    n_prior_images=2)
    models = align.load_models(cfg)
    prior = align.build_prior(models, cfg, tmp_path)
    assert prior["latents"].shape == (4, 4, 8, 8)
    assert prior["prompts"] == ["a photo of a one", "a handwritten one", "a photo of a two", "a handwritten two"]
    expected = ldm.generate_latents(world.fresh_edge(), prior["prompts"][2:3], [cfg.prior_seed + 2],
                                    num_inference_steps=cfg.num_inference_steps, guidance_scale=cfg.guidance_scale)
    assert torch.allclose(prior["latents"][2:3], expected, atol=1e-5)   # the unaligned edge's own drawing
    scg = align.build_scg(models, cfg, tmp_path)
    align.train_metaword_stage(models, cfg, tmp_path, scg)
    with_prior = align.train_lora_stage(models, cfg, tmp_path / "p", scg, 2, with_metaword=False, prior=prior)
    without = align.train_lora_stage(models, cfg, tmp_path / "n", scg, 2, with_metaword=False)
    assert with_prior["final_loss"] > without["final_loss"]      # the prior term is added to the same batches
    with pytest.raises(ConfigError, match="prior_words"):
        MakdConfig(prior_loss_weight=1.0)
    with pytest.raises(ConfigError, match="subject word"):
        MakdConfig(prior_loss_weight=1.0, prior_words=["seven"])


def test_frozen_edge_prior_target_is_the_unaligned_edges_own_prediction(world):
    """With ``prior_target="frozen_edge"`` the prior term compares the edge with its LoRA switched off: zero while
    the LoRA is still a no-op, positive once it moved, and the LoRA is back on (and trainable) afterwards."""
    from diffusers import DDPMScheduler

    from dekag.makd.glora import adapters_disabled

    pipe = world.fresh_edge()
    params = add_glora(pipe.unet, 2, seed=0)
    ddpm = DDPMScheduler.from_config(pipe.scheduler.config)
    z, prompts = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0)), ["a photo of a one"] * 2
    reference = lambda: adapters_disabled(pipe.unet)  # noqa: E731
    loss = lambda: noise_prediction_loss(pipe, z, prompts, ddpm, torch.Generator().manual_seed(1), reference)  # noqa: E731
    assert loss().item() == 0.0                              # B = 0: the LoRA changes nothing yet
    with torch.no_grad():
        for p in params:
            p.add_(0.1)
    moved = loss()
    assert moved.item() > 0 and moved.requires_grad and all(p.requires_grad for p in params)
    with pytest.raises(ConfigError, match="prior_target"):
        MakdConfig(prior_target="replay")
    with pytest.raises(ConfigError, match="cond_dropout"):
        MakdConfig(cond_dropout=1.0)
