"""CALA layers: identity at start, exact ΔW(c), gradients into gates and rank-1 factors, save/load; ADJSCC."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dekag.jscc import (AdjsccConfig, CalaConfig, CalaError, CalaLayer, CodecConfig, Condition, ConditionError,
                        JsccCodec, apply_adjscc, apply_cala, cala_num_parameters, cala_state_dict, load_cala, save_cala)
from dekag.jscc.condition import conditioned

COND = Condition(torch.tensor([0.0, 20.0]), torch.tensor([30e-9, 3000e-9]))


def _pair(gate="softmax", rank=8):
    torch.manual_seed(0)
    base = JsccCodec(CodecConfig())
    cala = JsccCodec(CodecConfig())
    cala.load_state_dict(base.state_dict())
    names = apply_cala(cala, CalaConfig(rank=rank, gate=gate))
    return base, cala, names


def _randomise_b(codec):
    for m in codec.modules():
        if isinstance(m, CalaLayer):
            nn.init.normal_(m.lora_b, std=0.05)


def test_fresh_cala_is_identity_and_freezes_base():
    base, cala, names = _pair()
    assert len(names) == 8  # 4 convolutions in encoder + 4 in decoder
    lat = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(cala.encode(lat, COND), base.encode(lat, COND))
    trainable = {n for n, p in cala.named_parameters() if p.requires_grad}
    assert trainable and all(("lora_" in n or ".gate." in n) for n in trainable)


@pytest.mark.parametrize("gate", ["softmax", "sigmoid"])
def test_gradients_reach_gate_and_rank1_factors_not_base(gate):
    _, cala, _ = _pair(gate)
    _randomise_b(cala)
    sym = cala.encode(torch.randn(2, 4, 8, 8), COND)
    cala.decode(sym, 0.1, COND).square().mean().backward()
    for m in cala.modules():
        if isinstance(m, CalaLayer):
            assert m.lora_a.weight.grad.abs().sum() > 0
            assert m.lora_b.grad.abs().sum() > 0
            assert all(p.grad.abs().sum() > 0 for p in m.gate.parameters())
            assert m.base.weight.grad is None


def test_forward_equals_conv_with_w_plus_delta_w_of_each_condition():
    layer = CalaLayer(nn.Conv2d(3, 5, 3, padding=1), CalaConfig(rank=4, gate="sigmoid"))
    nn.init.normal_(layer.lora_b)
    x = torch.randn(2, 3, 6, 6)
    c = COND.normalised(2)
    with conditioned(c):
        y = layer(x)
    dw = layer.delta_weight(c)
    for i in range(2):
        ref = F.conv2d(x[i:i + 1], layer.base.weight + dw[i], layer.base.bias, padding=1)
        torch.testing.assert_close(y[i:i + 1], ref, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(dw[0], dw[1])  # the update depends on the condition


def test_linear_layers_are_supported_and_condition_is_required():
    layer = CalaLayer(nn.Linear(6, 3), CalaConfig(rank=2))
    nn.init.normal_(layer.lora_b)
    c = COND.normalised(2)
    x = torch.randn(2, 6)
    with conditioned(c):
        y = layer(x)
    dw = layer.delta_weight(c)
    torch.testing.assert_close(y[1], layer.base(x[1:2])[0] + dw[1] @ x[1], atol=1e-5, rtol=1e-4)
    with pytest.raises(ConditionError):
        layer(x)
    with pytest.raises(CalaError):
        CalaLayer(nn.Conv1d(2, 2, 3), CalaConfig())


def test_gate_kinds():
    layer = CalaLayer(nn.Linear(4, 4), CalaConfig(rank=5, gate="softmax"))
    g = layer.gates(torch.randn(7, 2))
    torch.testing.assert_close(g.sum(dim=1), torch.full((7,), 5.0))
    layer = CalaLayer(nn.Linear(4, 4), CalaConfig(rank=5, gate="sigmoid"))
    g = layer.gates(torch.randn(7, 2))
    assert bool(((g > 0) & (g < 1)).all())


def test_cala_save_load_round_trip(tmp_path):
    base, cala, _ = _pair("sigmoid", rank=3)
    _randomise_b(cala)
    flat = cala_state_dict(cala)
    assert all(isinstance(v, torch.Tensor) for v in flat.values())
    assert not any(".base." in k for k in flat)
    assert sum(v.numel() for v in flat.values()) == cala_num_parameters(cala)
    path = save_cala(cala, tmp_path / "cala.safetensors")
    fresh = JsccCodec(CodecConfig())
    fresh.load_state_dict(base.state_dict())
    load_cala(fresh, path)
    assert fresh.cala_config.rank == 3 and fresh.cala_config.gate == "sigmoid"
    lat = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(fresh.encode(lat, COND), cala.encode(lat, COND))
    with pytest.raises(CalaError):
        apply_cala(fresh, CalaConfig())
    other = JsccCodec(CodecConfig(hidden_channels=16))
    with pytest.raises(CalaError):
        load_cala(other, path)


def test_adjscc_matches_cala_budget_and_depends_on_condition():
    _, cala, _ = _pair()
    budget = cala_num_parameters(cala)
    torch.manual_seed(0)
    codec = JsccCodec(CodecConfig())
    added = apply_adjscc(codec, AdjsccConfig(), param_budget=budget)
    assert abs(added - budget) / budget < 0.1
    for m in codec.modules():
        if hasattr(m, "mlp"):
            nn.init.normal_(m.mlp[2].weight)
    lat = torch.randn(1, 4, 8, 8).repeat(2, 1, 1, 1)
    sym = codec.encode(lat, COND)
    assert not torch.allclose(sym[0], sym[1])
