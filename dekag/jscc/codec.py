"""The JSCC codec: latent [B, C, H, W] ↔ K complex channel symbols per latent.

>>> import torch
>>> from dekag.jscc import JsccCodec, CodecConfig, Condition
>>> codec = JsccCodec(CodecConfig())                       # [4, 8, 8] latents, K = 128
>>> sym = codec.encode(torch.randn(2, 4, 8, 8), Condition(10.0, 100e-9))
>>> sym.shape, sym.dtype
(torch.Size([2, 128]), torch.complex64)
>>> codec.decode(sym, 0.1, Condition(10.0, 100e-9)).shape
torch.Size([2, 4, 8, 8])

Encoder: conv stack → [B, 2Q, H/d, W/d] real map → Q complex channels → flattened to K = Q·H/d·W/d
symbols, scaled so each latent's symbols have unit average power (mean |s|² = 1).
Decoder input per symbol: real, imaginary part and (unless ``CodecConfig.noise_input`` is False) log10 of
its noise variance (the equaliser's effective noise, or a scalar), reshaped back to maps → conv stack → latent.

The base network ignores the condition; CALA (:mod:`dekag.jscc.cala`) and ADJSCC
(:mod:`dekag.jscc.adjscc`) make layers condition-aware in place. Latents are standardised per channel
with stored statistics (:meth:`JsccCodec.set_latent_stats`) so one codec config serves any latent scale.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dekag.errors import DekagError
from dekag.jscc.condition import Condition, as_condition, conditioned
from dekag.jscc.config import CodecConfig


class ShapeError(DekagError, ValueError):
    """A latent or symbol tensor does not have the shape the codec was built for."""


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1)


def _stack(cin: int, cout_last: int, cfg: CodecConfig, stride: int) -> nn.Sequential:
    h = cfg.hidden_channels
    layers: list[nn.Module] = [_conv(cin, h, stride), nn.PReLU(h)]
    for _ in range(cfg.num_hidden_layers):
        layers += [_conv(h, h), nn.PReLU(h)]
    layers.append(_conv(h, cout_last))
    return nn.Sequential(*layers)


class JsccCodec(nn.Module):
    """JSCC encoder/decoder pair for latents of shape ``[C, H, W]`` from ``config``.

    Attributes:
        config: the :class:`CodecConfig`.
        num_symbols: K, complex symbols per latent.
    """

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        self.config = config
        d, q, c = config.downsample, config.symbol_channels, config.latent_channels
        self.num_symbols = config.num_symbols
        self.encoder = _stack(c, 2 * q, config, stride=d)
        decoder = _stack((3 if config.noise_input else 2) * q, c * d * d, config, stride=1)
        if d > 1:
            decoder.append(nn.PixelShuffle(d))
        self.decoder = decoder
        self.register_buffer("latent_mean", torch.zeros(c))
        self.register_buffer("latent_std", torch.ones(c))

    # -- statistics -------------------------------------------------------------------------------------
    @torch.no_grad()
    def set_latent_stats(self, latents: torch.Tensor) -> None:
        """Store per-channel mean/std of a latent dataset [N, C, H, W] for standardisation."""
        self._check_latent(latents)
        self.latent_mean.copy_(latents.mean(dim=(0, 2, 3)))
        self.latent_std.copy_(latents.std(dim=(0, 2, 3)).clamp_min(1e-6))

    def standardise(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent → per-channel standardised latent (the space the training loss is computed in)."""
        return (latent - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]

    # -- public surface ---------------------------------------------------------------------------------
    def encode(self, latent: torch.Tensor, condition: Condition | tuple[float, float]) -> torch.Tensor:
        """latent [B, C, H, W] float → symbols [B, K] complex64 with mean |s|² = 1 per latent."""
        self._check_latent(latent)
        b = latent.shape[0]
        with conditioned(as_condition(condition).normalised(b, latent.device)):
            z = self.encoder(self.standardise(latent))
        q = self.config.symbol_channels
        sym = torch.complex(z[:, :q].reshape(b, -1), z[:, q:].reshape(b, -1))
        power = sym.real.square().add(sym.imag.square()).mean(dim=1, keepdim=True)
        return sym / power.clamp_min(1e-12).sqrt()

    def decode(self, symbols: torch.Tensor, noise_var: float | torch.Tensor,
               condition: Condition | tuple[float, float]) -> torch.Tensor:
        """symbols [B, K] complex, noise variance (scalar, [B] or [B, K], linear) → latent [B, C, H, W]."""
        if symbols.dim() != 2 or symbols.shape[1] != self.num_symbols or not symbols.is_complex():
            raise ShapeError(f"symbols must be complex [B, {self.num_symbols}], got {tuple(symbols.shape)} "
                             f"{symbols.dtype}")
        b = symbols.shape[0]
        nv = torch.as_tensor(noise_var, dtype=torch.float32, device=symbols.device)
        if nv.dim() == 1 and nv.numel() == b:
            nv = nv[:, None]
        nv = nv.expand(b, self.num_symbols) if nv.numel() in (1, b) else nv
        if nv.shape != (b, self.num_symbols):
            raise ShapeError(f"noise_var must be scalar, [B] or [B, K]; got {tuple(nv.shape)}")
        if not bool((nv > 0).all()):
            raise ShapeError("noise_var must be positive")
        cfg = self.config
        hs, ws = cfg.latent_height // cfg.downsample, cfg.latent_width // cfg.downsample
        parts = (symbols.real.float(), symbols.imag.float()) + ((torch.log10(nv),) if cfg.noise_input else ())
        maps = [t.reshape(b, cfg.symbol_channels, hs, ws) for t in parts]
        with conditioned(as_condition(condition).normalised(b, symbols.device)):
            out = self.decoder(torch.cat(maps, dim=1))
        return out * self.latent_std[:, None, None] + self.latent_mean[:, None, None]

    def _check_latent(self, latent: torch.Tensor) -> None:
        cfg = self.config
        want = (cfg.latent_channels, cfg.latent_height, cfg.latent_width)
        if latent.dim() != 4 or tuple(latent.shape[1:]) != want:
            raise ShapeError(f"latent must be [B, {want[0]}, {want[1]}, {want[2]}], got {tuple(latent.shape)}")


def symbols_to_numpy(symbols: torch.Tensor) -> np.ndarray:
    """One latent's symbols ([K] or [1, K] complex tensor) → 1-D complex64 numpy array for the radio."""
    s = symbols.detach().cpu()
    if s.dim() == 2 and s.shape[0] == 1:
        s = s[0]
    if s.dim() != 1 or not s.is_complex():
        raise ShapeError(f"expected one latent's complex symbols [K] or [1, K], got {tuple(symbols.shape)}")
    return s.numpy().astype(np.complex64)


def symbols_from_numpy(array: np.ndarray, num_symbols: int) -> torch.Tensor:
    """1-D complex array of K symbols received from the radio → complex64 tensor [1, K]."""
    a = np.asarray(array)
    if a.ndim != 1 or a.shape[0] != num_symbols or not np.iscomplexobj(a):
        raise ShapeError(f"expected a 1-D complex array of {num_symbols} symbols, got {a.dtype} {a.shape}")
    return torch.from_numpy(a.astype(np.complex64))[None]
