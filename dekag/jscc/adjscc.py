"""Baseline (d): ADJSCC-style attention feature (AF) modules (Xu et al., "Wireless Image Transmission
Using Deep Source Channel Coding With Attention Modules", IEEE TCSVT 2021), with the condition
(SNR, log delay spread) as the side information.

After every hidden convolution of encoder and decoder, an AF module rescales the feature channels:

    s = sigmoid(W2 · ReLU(W1 · [mean_{h,w}(x), c]))        x ← x · s[:, :, None, None]

W2's bias starts at +4 and W2 at zero, so a freshly applied AF module multiplies by sigmoid(4) ≈ 0.98
(close to the base codec).
"""
from __future__ import annotations

import torch
from torch import nn

from dekag.jscc.codec import JsccCodec
from dekag.jscc.condition import current_condition
from dekag.jscc.config import AdjsccConfig


class AttentionFeature(nn.Module):
    """AF module: features [B, C, H, W] × channel weights from (pooled features, condition [B, 2])."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels + 2, hidden), nn.ReLU(), nn.Linear(hidden, channels))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.constant_(self.mlp[2].bias, 4.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ctx = torch.cat([x.mean(dim=(2, 3)), current_condition()], dim=1)
        return x * torch.sigmoid(self.mlp(ctx))[:, :, None, None]


def af_parameters(channels: int, hidden: int) -> int:
    """Parameters of one AF module."""
    return (channels + 2) * hidden + hidden + hidden * channels + channels


def _hidden_positions(codec: JsccCodec) -> list[tuple[nn.Sequential, int]]:
    """(stack, index) of every PReLU (i.e. after every convolution except the output ones)."""
    return [(stack, i) for stack in (codec.encoder, codec.decoder)
            for i, m in enumerate(stack) if isinstance(m, nn.PReLU)]


def budget_af_hidden(codec: JsccCodec, param_budget: int) -> int:
    """AF hidden width whose total added parameters are closest to ``param_budget``."""
    n = len(_hidden_positions(codec))
    c = codec.config.hidden_channels
    return min(range(1, 4 * c + 1), key=lambda h: abs(n * af_parameters(c, h) - param_budget))


def apply_adjscc(codec: JsccCodec, config: AdjsccConfig, param_budget: int | None = None) -> int:
    """Insert AF modules after every hidden activation of ``codec`` in place; returns parameters added.

    ``config.af_hidden == 0`` picks the width matching ``param_budget`` (CALA's added parameters).
    """
    hidden = config.af_hidden
    if hidden == 0:
        if param_budget is None:
            raise ValueError("af_hidden = 0 needs a param_budget to match")
        hidden = budget_af_hidden(codec, param_budget)
    c = codec.config.hidden_channels
    added = 0
    for stack, i in _hidden_positions(codec):
        stack[i] = nn.Sequential(stack[i], AttentionFeature(c, hidden))
        added += af_parameters(c, hidden)
    return added
