"""The channel condition c = (SNR dB, RMS delay spread s): normalisation and how layers see it.

The normalised condition is a [B, 2] float tensor in roughly [-1, 1]² over the design range
(SNR 0–20 dB, delay spread 30–3000 ns):

    snr_n = (snr_db − 10) / 10
    tau_n = (log10(delay_spread_s) − log10(√(30 ns · 3000 ns))) / log10(√(3000 / 30))

Values outside the range extrapolate linearly (no clipping): the gate sees what the receiver measured.

Condition-aware layers (CALA, ADJSCC attention) read the normalised condition of the current call from
:func:`current_condition`; :class:`~dekag.jscc.codec.JsccCodec` sets it with :func:`conditioned`
around every encode/decode, so the network's ``forward`` signatures stay plain.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from dekag.errors import DekagError

SNR_CENTER_DB = 10.0
SNR_HALF_RANGE_DB = 10.0
_LOG_TAU_CENTER = 0.5 * (math.log10(30e-9) + math.log10(3000e-9))
_LOG_TAU_HALF_RANGE = 0.5 * (math.log10(3000e-9) - math.log10(30e-9))

_CURRENT: contextvars.ContextVar[torch.Tensor | None] = contextvars.ContextVar("jscc_condition", default=None)


class ConditionError(DekagError, ValueError):
    """A condition is missing, non-finite, non-positive (delay spread) or of the wrong batch size."""


@dataclass(frozen=True)
class Condition:
    """Channel condition of one call: scalars, or tensors of shape [B] (one per latent).

    Attributes:
        snr_db: SNR, average Es/N0 per used subcarrier at the receiver input, dB.
        delay_spread_s: RMS delay spread of the power-delay profile, seconds (> 0).
    """

    snr_db: float | torch.Tensor
    delay_spread_s: float | torch.Tensor

    def normalised(self, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """[batch_size, 2] float32 tensor (snr_n, tau_n); scalars are broadcast."""
        snr = _as_batch(self.snr_db, batch_size, device, "snr_db")
        tau = _as_batch(self.delay_spread_s, batch_size, device, "delay_spread_s")
        if not bool(torch.isfinite(snr).all()):
            raise ConditionError("snr_db must be finite")
        if not bool((tau > 0).all()) or not bool(torch.isfinite(tau).all()):
            raise ConditionError("delay_spread_s must be positive and finite (map what a receiver reports "
                                 "through dekag.jscc.condition_domain.ConditionDomain.apply first)")
        return torch.stack([(snr - SNR_CENTER_DB) / SNR_HALF_RANGE_DB,
                            (torch.log10(tau) - _LOG_TAU_CENTER) / _LOG_TAU_HALF_RANGE], dim=-1)


def _as_batch(value: float | torch.Tensor, batch_size: int, device: torch.device | str, name: str) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64, device=device).flatten()
    if t.numel() == 1:
        t = t.expand(batch_size)
    elif t.numel() != batch_size:
        raise ConditionError(f"{name} has {t.numel()} values for a batch of {batch_size}")
    return t.to(torch.float32)


def as_condition(condition: Condition | tuple[float, float] | None) -> Condition:
    """Accept a :class:`Condition` or a ``(snr_db, delay_spread_s)`` pair."""
    if condition is None:
        raise ConditionError("a condition (snr_db, delay_spread_s) is required")
    if isinstance(condition, Condition):
        return condition
    if isinstance(condition, tuple) and len(condition) == 2:
        return Condition(*condition)
    raise ConditionError(f"expected Condition or (snr_db, delay_spread_s), got {type(condition).__name__}")


@contextlib.contextmanager
def conditioned(normalised: torch.Tensor) -> Iterator[None]:
    """Make ``normalised`` ([B, 2]) the condition seen by condition-aware layers inside the block."""
    token = _CURRENT.set(normalised)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current_condition() -> torch.Tensor:
    """The normalised condition [B, 2] of the running encode/decode; raises outside one."""
    c = _CURRENT.get()
    if c is None:
        raise ConditionError("condition-aware layer called outside JsccCodec.encode/decode "
                             "(or outside dekag.jscc.condition.conditioned)")
    return c
