"""CALA: channel-adaptive low-rank alignment of a frozen JSCC codec.

Each adapted layer (``nn.Conv2d`` or ``nn.Linear``) keeps its frozen base weight W and adds

    ΔW(c) = Σ_{k=1..R} g_k(c) · b_k a_kᵀ,        g(c) = gate(MLP(c)),   c = normalised (SNR, log τ_rms)

computed without forming ΔW: the input goes through the R "a" filters (a conv with the base layer's
kernel, stride and padding, or a linear), is scaled per example by the gates, and mixed back to the
output channels by the R "b" vectors. b starts at zero, so a freshly applied CALA leaves the codec
unchanged. Gates: ``sigmoid`` (independent, in (0, 1)) or ``softmax`` scaled by R (a convex mix whose
mean gate is 1). Every layer has its own small gating MLP 2 → gate_hidden → R.

Why plain torch rather than peft's custom-module dispatch (``LoraConfig._register_custom_module``):
the codec is ours (no foreign model to inject into), CALA's state is then a plain flat dict with our
own key names, loading needs no re-registration of an experimental mapping, and the gate MLPs live
in the layer instead of beside the adapter. ``bench/tka.py`` measures both implementations on the
same codec (parameters, outputs, time per training step); see ``docs/tka.md``.

>>> import torch
>>> from dekag.jscc import JsccCodec, CodecConfig, CalaConfig, apply_cala, cala_state_dict
>>> codec = JsccCodec(CodecConfig())
>>> names = apply_cala(codec, CalaConfig(rank=8))
>>> sorted(cala_state_dict(codec))[:2]
['decoder.0.gate.0.bias', 'decoder.0.gate.0.weight']
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from dekag.errors import DekagError
from dekag.jscc.codec import JsccCodec
from dekag.jscc.condition import current_condition
from dekag.jscc.config import CalaConfig

_METADATA_KEY = "cala_config"


class CalaError(DekagError, ValueError):
    """CALA weights do not fit the codec, or CALA was applied twice / not at all."""


class CalaLayer(nn.Module):
    """Frozen ``base`` (Conv2d or Linear) + condition-gated sum of R rank-1 updates.

    Shapes: conv input [B, C_in, H, W] → [B, C_out, H', W']; linear input [B, ..., F_in] → [B, ..., F_out].
    The condition [B, 2] comes from :func:`dekag.jscc.condition.current_condition`.
    """

    def __init__(self, base: nn.Conv2d | nn.Linear, config: CalaConfig) -> None:
        super().__init__()
        if isinstance(base, nn.Conv2d) and base.groups != 1:
            raise CalaError("CALA supports ungrouped convolutions only")
        self.base = base.requires_grad_(False)
        self.rank, self.gate_kind = config.rank, config.gate
        r = config.rank
        if isinstance(base, nn.Conv2d):
            self.lora_a = nn.Conv2d(base.in_channels, r, base.kernel_size, base.stride, base.padding,
                                    base.dilation, bias=False)
            out_features = base.out_channels
        elif isinstance(base, nn.Linear):
            self.lora_a = nn.Linear(base.in_features, r, bias=False)
            out_features = base.out_features
        else:
            raise CalaError(f"CALA adapts nn.Conv2d or nn.Linear, not {type(base).__name__}")
        self.lora_b = nn.Parameter(torch.zeros(out_features, r))
        self.gate = nn.Sequential(nn.Linear(2, config.gate_hidden), nn.SiLU(), nn.Linear(config.gate_hidden, r))

    def gates(self, condition: torch.Tensor) -> torch.Tensor:
        """Normalised condition [B, 2] → gates [B, R]."""
        logits = self.gate(condition)
        if self.gate_kind == "softmax":
            return self.rank * torch.softmax(logits, dim=-1)
        return torch.sigmoid(logits)

    def delta_weight(self, condition: torch.Tensor) -> torch.Tensor:
        """ΔW(c) for a condition [B, 2]: [B, *base.weight.shape] (for inspection and tests)."""
        a = self.lora_a.weight.flatten(1)                                      # [R, fan_in]
        dw = torch.einsum("or,br,rf->bof", self.lora_b, self.gates(condition), a)
        return dw.reshape(condition.shape[0], *self.base.weight.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gates(current_condition())
        if g.shape[0] != x.shape[0]:
            raise CalaError(f"condition batch {g.shape[0]} != input batch {x.shape[0]}")
        h = self.lora_a(x)
        if isinstance(self.base, nn.Conv2d):
            h = h * g[:, :, None, None]
            return self.base(x) + F.conv2d(h, self.lora_b[:, :, None, None])
        h = h * g.view(g.shape[0], *([1] * (h.dim() - 2)), -1)
        return self.base(x) + h @ self.lora_b.T


def _targets(codec: JsccCodec, targets: str) -> list[tuple[nn.Sequential, int, str]]:
    out = []
    for stack_name in ("encoder", "decoder"):
        stack = getattr(codec, stack_name)
        idx = [i for i, m in enumerate(stack) if isinstance(m, (nn.Conv2d, nn.Linear))]
        if targets == "hidden":
            idx = idx[1:-1]
        out += [(stack, i, f"{stack_name}.{i}") for i in idx]
    return out


def apply_cala(codec: JsccCodec, config: CalaConfig) -> list[str]:
    """Freeze ``codec`` and wrap its target layers in :class:`CalaLayer` in place; returns their names."""
    if is_cala(codec):
        raise CalaError("CALA is already applied to this codec")
    codec.requires_grad_(False)
    codec.cala_config = config
    names = []
    for stack, i, name in _targets(codec, config.targets):
        stack[i] = CalaLayer(stack[i], config)
        names.append(name)
    return names


def is_cala(codec: nn.Module) -> bool:
    return any(isinstance(m, CalaLayer) for m in codec.modules())


def cala_state_dict(codec: JsccCodec) -> dict[str, torch.Tensor]:
    """CALA's own weights (a, b, gate MLPs) as a flat ``{name: tensor}`` dict; base weights excluded."""
    out = {}
    for name, module in codec.named_modules():
        if isinstance(module, CalaLayer):
            for key, value in module.state_dict().items():
                if not key.startswith("base."):
                    out[f"{name}.{key}"] = value.detach().clone()
    if not out:
        raise CalaError("codec has no CALA layers")
    return out


def load_cala_state_dict(codec: JsccCodec, state: dict[str, torch.Tensor]) -> None:
    """Load a :func:`cala_state_dict` into a codec that already has CALA applied (strict)."""
    own = cala_state_dict(codec)
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise CalaError(f"CALA state mismatch: missing {missing[:4]}, unexpected {unexpected[:4]}")
    for key, value in state.items():
        if own[key].shape != value.shape:
            raise CalaError(f"{key}: shape {tuple(value.shape)} != codec's {tuple(own[key].shape)}")
    codec.load_state_dict(state, strict=False)


def cala_num_parameters(codec: JsccCodec) -> int:
    """Parameters CALA adds (a, b and gates of every adapted layer)."""
    return sum(v.numel() for v in cala_state_dict(codec).values())


def save_cala(codec: JsccCodec, path: str | Path) -> Path:
    """Write CALA weights + its config (safetensors metadata) to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in cala_state_dict(codec).items()}
    save_file(tensors, str(path), metadata={"format": "pt", _METADATA_KEY: json.dumps(codec.cala_config.to_dict())})
    return path


def load_cala(codec: JsccCodec, path: str | Path) -> JsccCodec:
    """Apply CALA (config from the file) to a base ``codec`` and load its weights; returns ``codec``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if _METADATA_KEY not in meta:
        raise CalaError(f"{path}: no '{_METADATA_KEY}' metadata, not a CALA file")
    config = CalaConfig.from_dict(json.loads(meta[_METADATA_KEY]))
    if not is_cala(codec):
        apply_cala(codec, config)
    load_cala_state_dict(codec, load_file(str(path)))
    return codec
