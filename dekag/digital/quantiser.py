"""Latent quantiser of the digital baseline: transform, per-coefficient statistics, bit allocation, bits.

A latent [C, H, W] is transformed (orthonormal 2-D DCT-II of each channel, or the identity) into N = C·H·W
coefficients; coefficient i is standardised with its dataset mean μ_i and standard deviation σ_i, and
quantised by a uniform mid-rise quantiser of b_i bits (2^b_i levels, step Δ_b, clipped at the outer
levels, reconstruction at the cell midpoints). The steps Δ_b are fitted to the dataset (the step that
minimises the pooled mean squared error of the standardised coefficients), and their pooled normalised
distortions D_b (D_0 = 1: the coefficient is replaced by its mean) drive the bit allocation:

    give the next bit to the coefficient with the largest  σ_i² · (D_{b_i} − D_{b_i + 1})

until the payload is spent (greedy = optimal for these convex decreasing D_b, reverse water-filling in
integers). The allocation depends only on the stored statistics and the budget, so encoder and decoder
compute the same one without signalling. Bits are packed coefficient by coefficient in C, H, W order, each
index most significant bit first (natural binary).

A coefficient with no bits, or whose bits were lost, is reconstructed as its dataset mean: with all bits
lost the output is exactly the dataset mean latent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

_LOADING_GRID = torch.linspace(math.log(0.25), math.log(8.0), 61).exp()
"""Candidate half-ranges L = Δ_b · 2^(b−1) of the quantiser, in standard deviations."""


def dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix [n, n] (row k = frequency k), float64."""
    i = torch.arange(n, dtype=torch.float64)
    d = torch.cos(math.pi * (i[None, :] + 0.5) * i[:, None] / n) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d


@dataclass(frozen=True)
class Allocation:
    """Bits per coefficient for one payload size, and where each payload bit comes from.

    Attributes:
        bits: [N] int64 bit depth b_i of each coefficient.
        coefficient: [P_used] coefficient index of each payload bit.
        shift: [P_used] bit position inside that coefficient's index (b_i − 1 for the MSB … 0).
    """

    bits: torch.Tensor
    coefficient: torch.Tensor
    shift: torch.Tensor

    @property
    def num_bits(self) -> int:
        return int(self.coefficient.numel())


class LatentQuantiser(nn.Module):
    """Transform + per-coefficient scalar quantiser for latents [B, C, H, W]; statistics are buffers."""

    def __init__(self, latent_shape: tuple[int, int, int], transform: str = "dct", max_bits: int = 12) -> None:
        super().__init__()
        c, h, w = latent_shape
        self.latent_shape, self.transform, self.max_bits = (c, h, w), transform, max_bits
        if transform == "dct":
            self.register_buffer("_dct_h", dct_matrix(h).float(), persistent=False)
            self.register_buffer("_dct_w", dct_matrix(w).float(), persistent=False)
        elif transform != "identity":
            raise ValueError(f"transform must be 'dct' or 'identity', got {transform!r}")
        self.register_buffer("coef_mean", torch.zeros(c, h, w))
        self.register_buffer("coef_std", torch.ones(c, h, w))
        self.register_buffer("step", torch.zeros(max_bits))
        self.register_buffer("distortion", torch.zeros(max_bits + 1))
        gaussian = torch.special.ndtri((torch.arange(4096, dtype=torch.float64) + 0.5) / 4096)
        self._fit_steps(gaussian.float())  # standard normal until set_latent_stats sees data

    # -- transform ----------------------------------------------------------------------------------------
    def forward_transform(self, latent: torch.Tensor) -> torch.Tensor:
        """Latents [B, C, H, W] → coefficients [B, C, H, W]."""
        if self.transform == "identity":
            return latent.float()
        return self._dct_h @ latent.float() @ self._dct_w.T

    def inverse_transform(self, coef: torch.Tensor) -> torch.Tensor:
        if self.transform == "identity":
            return coef
        return self._dct_h.T @ coef @ self._dct_w

    # -- statistics ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def set_latent_stats(self, latents: torch.Tensor) -> None:
        """Fit μ_i, σ_i and the steps Δ_b to a latent dataset [N, C, H, W] (N ≥ 2)."""
        if latents.dim() != 4 or tuple(latents.shape[1:]) != self.latent_shape or latents.shape[0] < 2:
            raise ValueError(f"need latents [N ≥ 2, {', '.join(map(str, self.latent_shape))}], "
                             f"got {tuple(latents.shape)}")
        coef = self.forward_transform(latents)
        self.coef_mean.copy_(coef.mean(0))
        self.coef_std.copy_(coef.std(0).clamp_min(1e-6))
        self._fit_steps(((coef - self.coef_mean) / self.coef_std).flatten())

    def _fit_steps(self, u: torch.Tensor) -> None:
        """Per bit depth, the half-range on ``_LOADING_GRID`` with the least MSE on standardised samples ``u``."""
        u = u[torch.linspace(0, u.numel() - 1, min(u.numel(), 50_000)).long()].double()  # bounded fitting cost
        self.distortion[0] = u.square().mean()
        for b in range(1, self.max_bits + 1):
            steps = _LOADING_GRID.double() / 2 ** (b - 1)
            mse = torch.stack([(self._dequantise_std(self._quantise_std(u, b, s), b, s) - u).square().mean()
                               for s in steps])
            best = int(mse.argmin())
            self.step[b - 1], self.distortion[b] = steps[best], mse[best]

    # -- quantiser ----------------------------------------------------------------------------------------
    @staticmethod
    def _quantise_std(u: torch.Tensor, bits: torch.Tensor | int, step: torch.Tensor | float) -> torch.Tensor:
        levels = torch.as_tensor(2 ** torch.as_tensor(bits), dtype=torch.float64)
        q = torch.floor(u.double() / step) + levels / 2
        return torch.minimum(q.clamp_min(0), levels - 1).long()

    @staticmethod
    def _dequantise_std(q: torch.Tensor, bits: torch.Tensor | int, step: torch.Tensor | float) -> torch.Tensor:
        levels = torch.as_tensor(2 ** torch.as_tensor(bits), dtype=torch.float64)
        return (q.double() - levels / 2 + 0.5) * step

    def allocate(self, budget_bits: int) -> Allocation:
        """Greedy allocation of ``budget_bits`` (fewer are used when every coefficient has ``max_bits``)."""
        var = self.coef_std.double().flatten().square()
        gain = var[:, None] * (self.distortion[:-1] - self.distortion[1:]).double()[None, :]     # [N, max_bits]
        order = torch.argsort(-gain.flatten(), stable=True)[:max(budget_bits, 0)]
        # D_b is convex in b, so each row's gains decrease: the number of top entries in a row is its depth
        bits = torch.bincount(order // self.max_bits, minlength=var.numel())
        coefficient = torch.repeat_interleave(torch.arange(var.numel()), bits)
        first = torch.cumsum(bits, 0) - bits
        shift = bits[coefficient] - 1 - (torch.arange(coefficient.numel()) - first[coefficient])
        return Allocation(bits, coefficient, shift)

    def to_bits(self, latent: torch.Tensor, alloc: Allocation) -> torch.Tensor:
        """Latents [B, C, H, W] → payload bits [B, P_used] float32 in {0, 1}."""
        u = ((self.forward_transform(latent) - self.coef_mean) / self.coef_std).flatten(1)
        b = alloc.bits.clamp_min(1)
        step = self.step[b - 1].double()
        q = self._quantise_std(u, b, step)
        return ((q[:, alloc.coefficient] >> alloc.shift) & 1).float()

    def from_bits(self, bits: torch.Tensor, alloc: Allocation, lost: torch.Tensor | None = None) -> torch.Tensor:
        """Payload bits [B, P_used] → latents [B, C, H, W]; coefficients with no bits, or marked in ``lost``
        ([B, N] bool), take their dataset mean."""
        n = alloc.bits.numel()
        q = torch.zeros(bits.shape[0], n, dtype=torch.long)
        q.index_add_(1, alloc.coefficient, bits.round().long() << alloc.shift)
        b = alloc.bits.clamp_min(1)
        u = self._dequantise_std(q, b, self.step[b - 1].double()).float()
        known = (alloc.bits > 0)[None, :].expand_as(u)
        if lost is not None:
            known = known & ~lost
        u = torch.where(known, u, torch.zeros_like(u))
        coef = u.reshape(-1, *self.latent_shape) * self.coef_std + self.coef_mean
        return self.inverse_transform(coef)

    def mean_latent(self) -> torch.Tensor:
        """The dataset mean latent [C, H, W] (what a coefficient with no information decodes to)."""
        return self.inverse_transform(self.coef_mean[None])[0]
