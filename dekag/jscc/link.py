"""What T-KA trains through: a *link* — the channel plus the CSI each end of it gates CALA on.

A link decides, per example, which condition the encoder sees (before transmission: in the testbed the
receiver's estimate of an earlier frame, fed back), carries the symbols, and says which condition the
decoder sees (its own estimate of this frame) and whether the frame arrived at all. Two implementations:

* :class:`SimulatedLink` (here): the differentiable Sionna channel of :mod:`dekag.jscc.training_channel`
  with perfect, current CSI at both ends (the paper's assumption); every frame arrives.
* :class:`experiments.frame_link.FrameLink`: the testbed's real frame pipeline (``radio.Transmitter`` →
  ``radio.Emulator`` with impairments → ``radio.Receiver``), estimated and one-frame-old CSI, lost frames.
  It lives in ``experiments`` because ``dekag`` never imports ``radio``.

Every link is called the same way::

    nominal = link.sample_conditions(batch_size, generator)      # what the channel is set to
    enc = link.encoder_condition(nominal)                        # Condition [B] the encoder is gated on
    out = link(codec.encode(latents, enc), nominal)              # LinkOutput
    rec = codec.decode(out.symbols, out.noise_var, out.decoder_condition)
    loss = mse(rec[out.received], latents[out.received])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from dekag.jscc.condition import Condition
from dekag.jscc.training_channel import TrainingChannel, seed_sionna, sionna_generator

Nominal = dict[str, torch.Tensor]
"""Per-example channel settings: ``snr_db`` [B] float (dB), ``delay_spread_s`` [B] float (s),
``model_index`` [B] long (index into the link's TDL models)."""


@dataclass
class LinkOutput:
    """What the decoder gets for a batch.

    Attributes:
        symbols: [B, K] complex64, unbiased equalised symbols (zeros for lost frames); differentiable
            with respect to the transmitted symbols.
        noise_var: [B, K] float32, effective noise variance of each symbol (> 0).
        decoder_condition: the condition the decoder is gated on ([B] tensors).
        received: [B] bool, False where the frame was lost (not detected, header failed).
    """

    symbols: torch.Tensor
    noise_var: torch.Tensor
    decoder_condition: Condition
    received: torch.Tensor


class Link(Protocol):
    """Channel + CSI as T-KA trains through it (see the module docstring)."""

    num_symbols: int
    num_models: int

    def sample_conditions(self, batch_size: int, generator: torch.Generator) -> Nominal: ...
    def encoder_condition(self, nominal: Nominal) -> Condition: ...
    def __call__(self, symbols: torch.Tensor, nominal: Nominal) -> LinkOutput: ...
    def seed(self, seed: int) -> None: ...
    def rng_state(self) -> torch.Tensor: ...
    def set_rng_state(self, state: torch.Tensor) -> None: ...


class SimulatedLink:
    """:class:`TrainingChannel` with perfect, current CSI at both ends; no frame is ever lost."""

    def __init__(self, channel: TrainingChannel):
        self.channel = channel
        self.num_symbols = channel.num_symbols
        self.num_models = len(channel.config.tdl_models)

    def sample_conditions(self, batch_size: int, generator: torch.Generator) -> Nominal:
        return self.channel.sample_conditions(batch_size, generator)

    def encoder_condition(self, nominal: Nominal) -> Condition:
        return Condition(nominal["snr_db"], nominal["delay_spread_s"])

    def __call__(self, symbols: torch.Tensor, nominal: Nominal) -> LinkOutput:
        y, no_eff = self.channel(symbols, nominal["snr_db"], nominal["delay_spread_s"], nominal["model_index"])
        return LinkOutput(y, no_eff, Condition(nominal["snr_db"], nominal["delay_spread_s"]),
                          torch.ones(symbols.shape[0], dtype=torch.bool))

    def seed(self, seed: int) -> None:
        seed_sionna(seed)

    def rng_state(self) -> torch.Tensor:
        return sionna_generator().get_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        sionna_generator().set_state(state)
