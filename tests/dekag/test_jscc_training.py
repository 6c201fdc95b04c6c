"""Training channel (Sionna) and T-KA training: shapes, gradients, noise, determinism, resume, smoke."""
import json
import shutil

import pytest
import torch
from safetensors import safe_open

from common.tomlconfig import ConfigError
from dekag.jscc import ChannelConfig, TkaConfig, TrainingChannel, TrainingConfig, standin_latents
from dekag.jscc.evaluate import round_trip
from dekag.jscc.link import SimulatedLink
from dekag.jscc.train import Stage, load_stage, prepare_run_dir, run_tka, stage_budget, stages, train_stage

K = 128
torch.set_num_threads(1)  # 2 shared cores: one thread is faster than two contended ones


@pytest.fixture(scope="module")
def channel():
    return TrainingChannel(ChannelConfig(), K, seed=0)


def _conds(b, snr, ds):
    return torch.full((b,), float(snr)), torch.full((b,), float(ds)), torch.arange(b) % 5


def test_channel_shapes_gradient_and_estimated_noise(channel):
    x = torch.exp(2j * torch.pi * torch.rand(64, K)).to(torch.complex64).requires_grad_(True)
    y, no_eff = channel(x, *_conds(64, 20.0, 100e-9))
    assert y.shape == (64, K) and no_eff.shape == (64, K) and bool((no_eff > 0).all())
    y.real.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    err = float((y - x).detach().abs().square().mean())
    assert 0.3 < err / float(no_eff.detach().mean()) < 3.0  # reported effective noise matches the actual error


def test_perfect_csi_beats_ls_and_snr_matters(channel):
    x = torch.exp(2j * torch.pi * torch.rand(128, K)).to(torch.complex64)
    perfect = TrainingChannel(ChannelConfig(perfect_csi=True), K, seed=0)
    err = {}
    for name, ch in (("ls", channel), ("perfect", perfect)):
        for snr in (0.0, 20.0):
            y, _ = ch(x, *_conds(128, snr, 30e-9))
            err[name, snr] = float((y - x).abs().square().mean())
    assert err["perfect", 20.0] < err["ls", 20.0]
    assert err["ls", 20.0] < err["ls", 0.0] / 10


def test_channel_rejects_bad_inputs(channel):
    x = torch.ones(2, K, dtype=torch.complex64)
    with pytest.raises(ValueError):
        channel(x[:, :5], *_conds(2, 10, 1e-7))
    with pytest.raises(ValueError):
        channel(x, torch.zeros(2), torch.full((2,), 1e-7), torch.tensor([0, 9]))


def _tiny_cfg(**kw):
    t = dict(base_steps=6, adaptive_steps=4, checkpoint_every=2, batch_size=16,
             cala_gates=["softmax"], oracle_snr_db=[], oracle_delay_spread_s=[])
    t.update(kw)
    return TkaConfig(training=TrainingConfig(**t))


def test_training_resumes_bit_identical_from_checkpoint(tmp_path, channel):
    cfg = _tiny_cfg()
    lat = standin_latents().latents[:200]
    calls = {"n": 0}

    def stage(fail_at=None):
        def sample(b, g):
            calls["n"] += 1
            if fail_at is not None and calls["n"] == fail_at:
                raise KeyboardInterrupt
            return channel.sample_conditions(b, g)
        return Stage("base", "base", 6, 1e-3, sample)

    a_dir, b_dir = prepare_run_dir(cfg, tmp_path / "a"), prepare_run_dir(cfg, tmp_path / "b")
    link = SimulatedLink(channel)
    straight = train_stage(stage(), cfg, link, lat, a_dir, progress=False)
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        train_stage(stage(fail_at=4), cfg, link, lat, b_dir, progress=False)   # dies in step 4
    assert (b_dir / "base.ckpt.safetensors").is_file()
    resumed = train_stage(stage(), cfg, link, lat, b_dir, progress=False)
    assert not (b_dir / "base.ckpt.safetensors").exists()
    for k, v in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, atol=0, rtol=0)


def test_tiny_tka_run_trains_base_then_cala_and_reloads(tmp_path):
    cfg = _tiny_cfg(base_steps=30, adaptive_steps=6)
    lat = standin_latents()
    out = run_tka(cfg, lat, tmp_path / "run", progress=False)
    assert set(out) == {"base", "mismatch", "cala_softmax", "adjscc", "adjscc_frozen", "base_longer",
                        "cala_on_longer", "blind_base", "blind_cala"}
    blind = load_stage(tmp_path / "run", "blind_cala", cfg)
    assert not blind.config.noise_input and blind.decoder[0].base.in_channels == 2 * cfg.codec.symbol_channels
    with safe_open(str(tmp_path / "run" / "base.safetensors"), framework="pt") as f:
        losses = json.loads(f.metadata()["losses"])
    assert sum(losses[-5:]) < 0.9 * sum(losses[:5])                 # the base codec learns
    with safe_open(str(tmp_path / "run" / "cala_softmax.safetensors"), framework="pt") as f:
        cala_losses = json.loads(f.metadata()["losses"])
    assert cala_losses[0] < 0.9 * losses[0]                          # CALA starts from the trained base
    cala = load_stage(tmp_path / "run", "cala_softmax", cfg)
    base = out["base"]
    for n, p in base.state_dict().items():                           # base weights stayed frozen
        key = n if n in cala.state_dict() else n.replace(".weight", ".base.weight").replace(".bias", ".base.bias")
        torch.testing.assert_close(cala.state_dict()[key], p)
    frozen, full = out["adjscc_frozen"].state_dict(), out["adjscc"].state_dict()
    torch.testing.assert_close(frozen["encoder.0.weight"], base.state_dict()["encoder.0.weight"])
    assert not torch.equal(full["encoder.0.weight"], base.state_dict()["encoder.0.weight"])
    ch = TrainingChannel(cfg.channel, cfg.codec.num_symbols)
    rec = round_trip(cala, ch, lat.latents[:4], 20.0, 100e-9, 0)
    assert rec.shape == (4, 4, 8, 8) and bool(torch.isfinite(rec).all())
    shutil.rmtree(tmp_path / "run")


def test_baselines_get_equal_budgets():
    cfg = _tiny_cfg(base_steps=50, adaptive_steps=20, oracle_snr_db=[0.0], oracle_delay_spread_s=[300e-9])
    link = SimulatedLink(TrainingChannel(cfg.channel, cfg.codec.num_symbols))
    budget = stage_budget(stages(cfg, link))
    assert budget["mismatch"] == budget["base"] == 50
    assert budget["oracle_0dB_300ns"] == budget["cala_softmax"] == 70
    assert budget["cala_on_longer"] == 90 and budget["blind_cala"] == 70


def test_only_trains_the_named_stages_and_what_they_start_from(tmp_path):
    cfg = _tiny_cfg(base_steps=4, adaptive_steps=2)
    out = run_tka(cfg, standin_latents(), tmp_path / "run", progress=False, only=["cala_on_longer"])
    assert set(out) == {"base", "base_longer", "cala_on_longer"}
    with pytest.raises(ConfigError, match="unknown T-KA stage"):
        run_tka(cfg, standin_latents(), tmp_path / "run", progress=False, only=["nope"])
