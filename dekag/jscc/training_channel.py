"""Differentiable OFDM training channel (Sionna 2.x, frequency domain) with LS estimation + LMMSE.

One latent's K symbols fill the data resource elements of a small resource grid (frequency first),
behind Kronecker pilots on ``pilot_ofdm_symbol_indices``; unused data REs carry zeros. Per example:
TDL profile, SNR (Es/N0 per used subcarrier, dB) and RMS delay spread. The TDL impulse response is
drawn with a unit delay scale and its delays multiplied by each example's delay spread, then turned
into the frequency response (normalised to unit average energy, so SNR = 1 / N0). The receiver does
LS estimation on the pilots and LMMSE equalisation, and returns the equalised data symbols with
their effective noise variance — what the decoder sees from the real receiver. ``perfect_csi``
equalises with the true channel instead (err_var = 0).

>>> import torch
>>> from dekag.jscc import TrainingChannel, ChannelConfig
>>> ch = TrainingChannel(ChannelConfig(), num_symbols=128)
>>> x = torch.ones(2, 128, dtype=torch.complex64)
>>> y, no_eff = ch(x, snr_db=torch.tensor([20., 5.]), delay_spread_s=torch.tensor([100e-9, 1e-6]),
...                model_index=torch.tensor([0, 2]))
>>> y.shape, no_eff.shape
(torch.Size([2, 128]), torch.Size([2, 128]))

Sionna draws its fading from its own generator ``sionna.phy.config.torch_rng("cpu")``; seed it with
:func:`seed_sionna` (never ``sionna.phy.config.seed``, which also reseeds torch's global generator).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from dekag.jscc.config import ChannelConfig


def _sionna():
    """Import Sionna lazily (≈ 5 s): only code that builds a training channel pays for it."""
    import sionna.phy as sp
    from sionna.phy.channel import ApplyOFDMChannel, cir_to_ofdm_channel, subcarrier_frequencies  # noqa: F401
    from sionna.phy.channel.tr38901 import TDL  # noqa: F401
    from sionna.phy.mimo import StreamManagement  # noqa: F401
    from sionna.phy.ofdm import (LMMSEEqualizer, LSChannelEstimator, RemoveNulledSubcarriers,  # noqa: F401
                                 ResourceGrid, ResourceGridMapper)
    return sp, locals()   # the names above, by name


def sionna_generator() -> torch.Generator:
    """The CPU generator Sionna's channel models draw from."""
    sp, _ = _sionna()
    return sp.config.torch_rng("cpu")


def seed_sionna(seed: int) -> None:
    """Seed only Sionna's CPU generator (torch's global generator is left alone)."""
    sionna_generator().manual_seed(seed)


class TrainingChannel(nn.Module):
    """Symbols [B, K] complex → (equalised symbols [B, K] complex64, effective noise variance [B, K]).

    Gradients flow from the outputs back to the input symbols (channel, estimator and equaliser are
    torch operations; the fading itself is detached). ``seed`` seeds Sionna's generator before the
    (random QPSK) pilots are drawn, so one seed gives one pilot sequence.
    """

    def __init__(self, config: ChannelConfig, num_symbols: int, seed: int = 0) -> None:
        super().__init__()
        sp, m = _sionna()
        seed_sionna(seed)  # the Kronecker pilots are drawn at construction
        self.config, self.num_symbols = config, num_symbols
        used = config.num_used_subcarriers
        n_data_ofdm = math.ceil(num_symbols / used)
        n_ofdm = n_data_ofdm + len(config.pilot_ofdm_symbol_indices)
        if max(config.pilot_ofdm_symbol_indices) >= n_ofdm:
            raise ValueError(f"pilot OFDM symbol index {max(config.pilot_ofdm_symbol_indices)} "
                             f"≥ grid length {n_ofdm}")
        guard = config.fft_size - used - 1
        self.resource_grid = m["ResourceGrid"](
            num_ofdm_symbols=n_ofdm, fft_size=config.fft_size, subcarrier_spacing=config.subcarrier_spacing_hz,
            cyclic_prefix_length=config.cp_length, num_guard_carriers=(guard - guard // 2, guard // 2),
            dc_null=True, pilot_pattern="kronecker", pilot_ofdm_symbol_indices=list(config.pilot_ofdm_symbol_indices),
            device="cpu")
        rg = self.resource_grid
        self._pad = rg.num_data_symbols - num_symbols
        self._mapper = m["ResourceGridMapper"](rg, device="cpu")
        self._tdl = nn.ModuleList(
            m["TDL"](model=name, delay_spread=1.0, carrier_frequency=config.carrier_frequency_hz,
                     min_speed=0.0, max_speed=config.max_speed_mps, device="cpu")
            for name in config.tdl_models)
        self.register_buffer("_frequencies", m["subcarrier_frequencies"](config.fft_size,
                                                                        config.subcarrier_spacing_hz, device="cpu"))
        self._cir_to_ofdm = m["cir_to_ofdm_channel"]
        self._apply_channel = m["ApplyOFDMChannel"](device="cpu")
        self._ls = m["LSChannelEstimator"](rg, interpolation_type=config.ls_interpolation, device="cpu")
        self._remove_nulled = m["RemoveNulledSubcarriers"](rg, device="cpu")
        self._equalizer = m["LMMSEEqualizer"](rg, m["StreamManagement"](np.array([[1]]), 1), device="cpu")

    def sample_conditions(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Per-example SNR dB (uniform), delay spread s (log-uniform) and TDL model index (uniform)."""
        c = self.config
        u = torch.rand(2, batch_size, generator=generator, dtype=torch.float64)
        snr = c.snr_db_min + (c.snr_db_max - c.snr_db_min) * u[0]
        lo, hi = math.log(c.delay_spread_s_min), math.log(c.delay_spread_s_max)
        tau = torch.exp(lo + (hi - lo) * u[1])
        model = torch.randint(len(c.tdl_models), (batch_size,), generator=generator)
        return {"snr_db": snr.float(), "delay_spread_s": tau.float(), "model_index": model}

    def frequency_response(self, delay_spread_s: torch.Tensor, model_index: torch.Tensor) -> torch.Tensor:
        """Channel frequency response [B, 1, 1, 1, 1, num_ofdm_symbols, fft_size], unit average energy."""
        b = delay_spread_s.shape[0]
        rg = self.resource_grid
        h = torch.zeros(b, 1, 1, 1, 1, rg.num_ofdm_symbols, rg.fft_size, dtype=torch.complex64)
        for k, tdl in enumerate(self._tdl):
            sel = (model_index == k).nonzero().flatten()
            if sel.numel() == 0:
                continue
            a, tau = tdl(sel.numel(), rg.num_ofdm_symbols, 1.0 / rg.ofdm_symbol_duration)
            tau = tau * delay_spread_s[sel].to(tau.dtype)[:, None, None, None]
            h[sel] = self._cir_to_ofdm(self._frequencies, a, tau, normalize=True).to(torch.complex64)
        return h

    def forward(self, symbols: torch.Tensor, snr_db: torch.Tensor, delay_spread_s: torch.Tensor,
                model_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if symbols.dim() != 2 or symbols.shape[1] != self.num_symbols:
            raise ValueError(f"symbols must be [B, {self.num_symbols}], got {tuple(symbols.shape)}")
        b = symbols.shape[0]
        if not (snr_db.shape == delay_spread_s.shape == model_index.shape == (b,)):
            raise ValueError("snr_db, delay_spread_s and model_index must each be [B]")
        if bool((model_index < 0).any()) or bool((model_index >= len(self._tdl)).any()):
            raise ValueError(f"model_index out of range 0..{len(self._tdl) - 1}")
        x = symbols.to(torch.complex64)
        if self._pad:
            x = torch.cat([x, x.new_zeros(b, self._pad)], dim=1)
        x_rg = self._mapper(x[:, None, None, :])
        h = self.frequency_response(delay_spread_s, model_index)
        no = torch.pow(10.0, -snr_db.float() / 10.0)
        y = self._apply_channel(x_rg, h, no)
        if self.config.perfect_csi:
            h_hat = self._remove_nulled(h)
            err_var = torch.zeros((), dtype=torch.float32)
        else:
            h_hat, err_var = self._ls(y, no)
        x_hat, no_eff = self._equalizer(y, h_hat, err_var, no)
        x_hat = x_hat.reshape(b, -1)[:, :self.num_symbols]
        no_eff = no_eff.reshape(b, -1)[:, :self.num_symbols].clamp_min(1e-10)
        return x_hat, no_eff
