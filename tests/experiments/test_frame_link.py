"""T-KA's frame link: the real Transmitter → emulator → Receiver chain as a training channel."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dekag.jscc import ChannelConfig, CodecConfig, JsccCodec
from experiments.frame_link import FrameLink, frame_config_for


def _nominal(snr, tau=300e-9, model=0, n=1):
    return {"snr_db": torch.full((n,), float(snr)), "delay_spread_s": torch.full((n,), float(tau)),
            "model_index": torch.full((n,), model, dtype=torch.long)}


@pytest.fixture(scope="module")
def link():
    return FrameLink(ChannelConfig(snr_db_min=-5, snr_db_max=25), num_symbols=128, seed=0)


def test_numerology_is_copied_by_value():
    ch = ChannelConfig(sample_rate_hz=7.68e6, fft_size=256, cp_length=32, num_used_subcarriers=192)
    f = frame_config_for(ch)
    assert (f.sample_rate_hz, f.fft_size, f.cp_length, f.num_used_subcarriers) == (7.68e6, 256, 32, 192)


def test_frames_arrive_at_high_snr_with_the_radio_noise_and_are_lost_far_below(link):
    x = torch.exp(2j * torch.pi * torch.rand(8, 128, generator=torch.Generator().manual_seed(1))).to(torch.complex64)
    out = link(x, _nominal(25.0, n=8))
    assert bool(out.received.all())
    err = float((out.symbols - x).abs().square().mean())
    assert err < 0.05 and float(out.noise_var.mean()) < 0.05          # ≈ −14 dB and below
    assert bool(((out.decoder_condition.snr_db > 15) & (out.decoder_condition.snr_db <= 25)).all())
    lost = link(x, _nominal(-25.0, n=8))
    assert not bool(lost.received.any())
    assert bool((lost.decoder_condition.delay_spread_s > 0).all())


def test_gradients_flow_through_the_radio(link):
    codec = JsccCodec(CodecConfig())
    z = torch.randn(4, 4, 8, 8)
    nominal = _nominal(20.0, n=4)
    out = link(codec.encode(z, link.encoder_condition(nominal)), nominal)
    rec = codec.decode(out.symbols, out.noise_var, out.decoder_condition)
    loss = (rec[out.received] - z[out.received]).square().mean()
    loss.backward()
    enc_grad = codec.encoder[0].weight.grad
    assert enc_grad is not None and float(enc_grad.abs().sum()) > 0


def test_encoder_sees_the_previous_frames_estimate_of_the_same_setting():
    link = FrameLink(ChannelConfig(), num_symbols=128, seed=3)
    x = torch.ones(1, 128, dtype=torch.complex64)
    first = link.encoder_condition(_nominal(12.0))
    assert float(first.snr_db[0]) == 12.0                               # no report yet: the nominal setting
    out = link(x, _nominal(12.0))
    assert bool(out.received.all())
    second = link.encoder_condition(_nominal(12.0))
    assert float(second.snr_db[0]) == pytest.approx(float(out.decoder_condition.snr_db[0]))
    assert float(link.encoder_condition(_nominal(12.0, model=1)).snr_db[0]) == 12.0   # another setting


def test_rng_state_round_trip_reproduces_the_channel():
    a = FrameLink(ChannelConfig(), num_symbols=128, seed=5)
    x = torch.ones(2, 128, dtype=torch.complex64)
    a(x, _nominal(10.0, n=2))
    state = a.rng_state()
    y1 = a(x, _nominal(10.0, n=2))
    b = FrameLink(ChannelConfig(), num_symbols=128, seed=0)
    b.set_rng_state(state)
    y2 = b(x, _nominal(10.0, n=2))
    np.testing.assert_array_equal(y1.symbols.numpy(), y2.symbols.numpy())
    torch.testing.assert_close(b.encoder_condition(_nominal(10.0)).snr_db, a.encoder_condition(_nominal(10.0)).snr_db)


def test_tka_trains_through_the_frame_link_from_the_command_line(tmp_path):
    from common.tomlconfig import ConfigError
    from dekag.jscc import TkaConfig, TrainingConfig, standin_latents
    from dekag.jscc.train import load_stage, run_tka
    from experiments.cli import main

    cfg = TkaConfig(training=TrainingConfig(base_steps=3, adaptive_steps=2, batch_size=8, cala_gates=["softmax"],
                                            oracle_snr_db=[], oracle_delay_spread_s=[], link="frames"))
    with pytest.raises(ConfigError, match="built outside dekag"):
        run_tka(cfg, standin_latents(), tmp_path / "direct", progress=False)
    cfg.save(tmp_path / "tka.toml")
    assert main(["train", "--config", str(tmp_path / "tka.toml"), "--source", "standin",
                 "--run-dir", str(tmp_path / "run"), "--only", "cala_softmax"]) == 0
    trained = {p.name for p in (tmp_path / "run").glob("*.safetensors")}
    assert trained == {"base.safetensors", "cala_softmax.safetensors"}
    codec = load_stage(tmp_path / "run", "cala_softmax", cfg)
    assert codec.encode(torch.randn(1, 4, 8, 8), (10.0, 1e-6)).shape == (1, 128)


def test_a_real_scale_latent_rides_one_frame():
    """SD-sized latents 4×64×64 (512 px): bandwidth ratio 1/4 with downsample 4 → 16 symbol channels on a
    16×16 map = K = 4096 complex symbols, all in one frame (80 data subcarriers per OFDM symbol → 52 payload
    OFDM symbols); the receiver's payload bound is set from the codec as the user node sets it."""
    from dekag.jscc import symbols_from_numpy, symbols_to_numpy
    from experiments.frame_link import FramePipeline, unbiased

    codec = JsccCodec(CodecConfig(latent_height=64, latent_width=64, bandwidth_ratio=0.25, downsample=4,
                                  hidden_channels=16, num_hidden_layers=1)).eval()
    assert codec.num_symbols == 4096
    assert CodecConfig(latent_height=64, latent_width=64, bandwidth_ratio=1 / 16, downsample=4).num_symbols == 1024
    latent = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        sent = codec.encode(latent, (25.0, 100e-9))
    pipeline = FramePipeline(frame_config_for(ChannelConfig()).replace(max_payload_symbols=codec.num_symbols))
    frame, _ = pipeline.send(symbols_to_numpy(sent[0]), 7, (25.0, 100e-9),
                             pipeline.emulator("TDL-A", 25.0, 100e-9, seed=3))
    assert frame is not None and frame.header.payload_len == 4096
    s, no_eff = unbiased(frame.symbols, frame.noise_var)
    rx = symbols_from_numpy(s, codec.num_symbols)
    assert float((rx - sent).abs().square().mean()) < 0.05
    with torch.no_grad():
        out = codec.decode(rx, torch.from_numpy(no_eff)[None], (25.0, 100e-9))
    assert out.shape == (1, 4, 64, 64) and bool(torch.isfinite(out).all())


def test_a_channel_shorter_than_the_resolution_reaches_the_decoder_as_below_resolution(link):
    """A 30 ns TDL-A channel is below the narrow preset's resolution: the decoder is gated on the domain's
    below-resolution value (the receiver's flag, or its floor below the domain's resolution), never on a made-up
    spread."""
    x = torch.exp(2j * torch.pi * torch.rand(8, 128, generator=torch.Generator().manual_seed(2))).to(torch.complex64)
    out = link(x, _nominal(20.0, tau=30e-9, n=8))
    assert bool(out.received.all())
    below = torch.as_tensor(link.domain.below_resolution_value, dtype=out.decoder_condition.delay_spread_s.dtype)
    assert int((out.decoder_condition.delay_spread_s == below).sum()) >= 6
