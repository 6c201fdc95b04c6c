"""The digital baseline codec: quantised latent → CRC → 5G LDPC → scrambling → QAM, on the JSCC codec's K symbols.

>>> import torch
>>> from dekag.digital import DigitalCodec, DigitalCodecConfig
>>> codec = DigitalCodec(DigitalCodecConfig())                 # [4, 8, 8] latents, K = 128
>>> codec.set_latent_stats(torch.randn(64, 4, 8, 8, generator=torch.Generator().manual_seed(0)))
>>> z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
>>> sym = codec.encode(z, (12.0, 100e-9))                       # complex64 [2, 128], unit average power
>>> report = codec.decode_report(sym, 1e-3, (12.0, 100e-9))     # nearly noiseless
>>> report.mcs_index.tolist(), report.failed_codewords.tolist()
([4, 4], [0, 0])
>>> bool(torch.equal(report.latent, codec.quantised(z, (12.0, 100e-9))))
True

The same surface as :class:`~dekag.jscc.JsccCodec`: ``encode(latent, condition)`` → symbols [B, K] complex64
and ``decode(symbols, noise_var, condition)`` → latent [B, C, H, W], so nodes and studies take either.

Link adaptation: the MCS (QAM order, LDPC rate) is chosen per latent from the condition's SNR
(:func:`~dekag.digital.mcs.select_mcs` with ``config.margin_db``). The decoder recomputes it from the condition
it is given; in the loop that is the encoder's condition read from the frame header, so the MCS needs no
signalling of its own (``mcs_index`` in :meth:`decode_report` is what a header would carry). The delay
spread is validated but unused.

Encoder, per latent: the quantiser (:mod:`dekag.digital.quantiser`) spends the payload bits the MCS leaves
in its frame layout (:func:`~dekag.digital.mcs.frame_layout`); each codeword gets a CRC, is LDPC-encoded with
5G rate matching and the 38.212 bit interleaver for its QAM order, scrambled with a fixed pseudo-random
sequence (so any latent, even a constant one, gives symbols of unit average power), Gray-mapped to QAM
(E|s|² = 1) and placed on frame symbols c, c + C, …

Decoder: exact (APP) demapping with each symbol's noise variance (the effective noise of unbiased equalised
symbols, as the receiver reports it), descrambling, belief propagation (``config.ldpc_iterations``), CRC
check. Coefficients that have a bit in a failed codeword decode to their dataset mean: a frame with every
codeword failed decodes to the dataset mean latent (the cliff), and :meth:`decode_report` says so.

Sionna is imported on the first encode or decode.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dekag.digital.config import DigitalCodecConfig
from dekag.digital.mcs import FrameLayout, Mcs, frame_layout, mcs_table, select_mcs
from dekag.digital.quantiser import Allocation, LatentQuantiser
from dekag.jscc.codec import ShapeError
from dekag.jscc.condition import Condition, as_condition

SCRAMBLING_SEED = 0x5EED
"""Seeds the fixed scrambling sequence of codeword c of length n (numpy PCG64 of (seed, n, c))."""


@dataclass(frozen=True)
class DecodeReport:
    """What :meth:`DigitalCodec.decode_report` returns.

    Attributes:
        latent: decoded latents [B, C, H, W].
        mcs_index: [B] row of the MCS table each latent was decoded with.
        num_codewords: [B] codewords in each latent's frame.
        failed_codewords: [B] codewords whose CRC failed (their part of the latent is the dataset mean).
    """

    latent: torch.Tensor
    mcs_index: torch.Tensor
    num_codewords: torch.Tensor
    failed_codewords: torch.Tensor

    @property
    def codeword_failure_rate(self) -> float:
        return float(self.failed_codewords.sum() / self.num_codewords.sum())


@dataclass(frozen=True)
class _Fec:
    """Sionna blocks of one (MCS, codeword length)."""

    crc: object
    crc_check: object
    ldpc: object
    ldpc_decoder: object
    mapper: object
    demapper: object
    scrambling: torch.Tensor  # [n] float {0, 1}


class DigitalCodec(nn.Module):
    """Separate source and channel coding of latents ``config.latent_shape`` on ``config.num_symbols`` symbols.

    Attributes:
        config: the :class:`DigitalCodecConfig`.
        num_symbols: K, complex symbols per latent.
        quantiser: the :class:`LatentQuantiser` (its statistics are the codec's state).
    """

    def __init__(self, config: DigitalCodecConfig) -> None:
        super().__init__()
        self.config = config
        self.num_symbols = config.num_symbols
        self.quantiser = LatentQuantiser(config.latent_shape, config.transform, config.max_bits)
        self._allocations: dict[int, Allocation] = {}
        self._fec: dict[tuple[int, int, int], _Fec] = {}

    # -- statistics and state -----------------------------------------------------------------------------
    @torch.no_grad()
    def set_latent_stats(self, latents: torch.Tensor) -> None:
        """Fit the quantiser to a latent dataset [N, C, H, W] (like :meth:`JsccCodec.set_latent_stats`)."""
        self._check_latent(latents)
        self.quantiser.set_latent_stats(latents)
        self._allocations.clear()

    @classmethod
    @torch.no_grad()
    def fit(cls, config: DigitalCodecConfig, latents: torch.Tensor,
            transforms: Sequence[str] = ("dct", "identity")) -> DigitalCodec:
        """A codec fitted to ``latents`` [N, C, H, W] with whichever of ``transforms`` quantises them with less
        distortion (:meth:`quantisation_error_db`): the source coder a careful engineer would pick for this
        latent distribution, so the baseline is not handicapped by a transform that suits another one."""
        best, best_db = None, float("inf")
        for transform in transforms:
            codec = cls(replace(config, transform=transform))
            codec.set_latent_stats(latents)
            error_db = codec.quantisation_error_db(latents)
            if error_db < best_db:
                best, best_db = codec, error_db
        return best

    @torch.no_grad()
    def quantisation_error_db(self, latents: torch.Tensor) -> float:
        """Mean over the MCS table of 10·log10(MSE) (dB) of ``latents`` [N, C, H, W] quantised at that MCS, no
        channel errors."""
        self._check_latent(latents)
        x = latents.cpu()
        errors = [(self._quantise_at(x, mcs) - x).double().square().mean().log10().item() * 10
                  for mcs in mcs_table(self.config.mcs_table)]
        return sum(errors) / len(errors)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self._allocations.clear()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def save(self, path: str | Path) -> Path:
        """State (quantiser statistics) in safetensors, the config as TOML in the file's metadata."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path),
                  metadata={"kind": "digital", "config": self.config.to_toml_str()})
        return path

    @classmethod
    def load(cls, path: str | Path) -> DigitalCodec:
        """A codec saved by :meth:`save`."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("kind") != "digital" or "config" not in meta:
            raise ValueError(f"{path}: not a digital codec file (metadata kind={meta.get('kind')!r})")
        codec = cls(DigitalCodecConfig.from_toml_str(meta["config"]))
        codec.load_state_dict(load_file(str(path)))
        return codec

    # -- link adaptation ----------------------------------------------------------------------------------
    def mcs_for(self, condition: Condition | tuple[float, float], batch_size: int = 1) -> list[Mcs]:
        """The MCS of each of ``batch_size`` latents under ``condition`` (scalars are broadcast)."""
        cond = as_condition(condition)
        cond.normalised(batch_size)  # validates: finite SNR, positive delay spread, batch size
        snr = torch.as_tensor(cond.snr_db, dtype=torch.float64).flatten().expand(batch_size)
        return [select_mcs(self.config.mcs_table, float(s), self.config.margin_db) for s in snr]

    def layout(self, mcs: Mcs) -> FrameLayout:
        return frame_layout(mcs, self.num_symbols)

    def allocation(self, mcs: Mcs) -> Allocation:
        """Bits per latent coefficient under ``mcs``."""
        budget = self.layout(mcs).payload_bits
        if budget not in self._allocations:
            self._allocations[budget] = self.quantiser.allocate(budget)
        return self._allocations[budget]

    # -- public surface -----------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, latent: torch.Tensor, condition: Condition | tuple[float, float]) -> torch.Tensor:
        """latent [B, C, H, W] float → symbols [B, K] complex64, unit average power."""
        self._check_latent(latent)
        out = torch.zeros(latent.shape[0], self.num_symbols, dtype=torch.complex64)
        for mcs, rows in self._groups(condition, latent.shape[0]):
            lay = self.layout(mcs)
            bits = self.quantiser.to_bits(latent[rows].cpu(), self.allocation(mcs))
            payload = torch.cat([bits, bits.new_zeros(len(rows), lay.payload_bits - bits.shape[1])], dim=1)
            for c, u in enumerate(torch.split(payload, lay.codeword_payload_bits, dim=1)):
                fec = self._blocks(lay, c)
                coded = (fec.ldpc(fec.crc(u)) + fec.scrambling) % 2
                out[rows, c::lay.num_codewords] = fec.mapper(coded).to(torch.complex64)
        return out.to(latent.device)

    def decode(self, symbols: torch.Tensor, noise_var: float | torch.Tensor,
               condition: Condition | tuple[float, float]) -> torch.Tensor:
        """symbols [B, K] complex, noise variance (scalar, [B] or [B, K], linear) → latent [B, C, H, W]."""
        return self.decode_report(symbols, noise_var, condition).latent

    @torch.no_grad()
    def decode_report(self, symbols: torch.Tensor, noise_var: float | torch.Tensor,
                      condition: Condition | tuple[float, float]) -> DecodeReport:
        """:meth:`decode` with the MCS used and the failed codewords of each latent."""
        b = self._check_symbols(symbols)
        nv = self._noise_per_symbol(noise_var, b, symbols.device).cpu()
        sym = symbols.detach().cpu().to(torch.complex64)
        latent = torch.zeros(b, *self.config.latent_shape)
        mcs_index, num_cw, failed = (torch.zeros(b, dtype=torch.long) for _ in range(3))
        for mcs, rows in self._groups(condition, b):
            lay, alloc = self.layout(mcs), self.allocation(mcs)
            parts, oks = [], []
            for c in range(lay.num_codewords):
                fec = self._blocks(lay, c)
                llr = fec.demapper(sym[rows, c::lay.num_codewords], nv[rows, c::lay.num_codewords])
                u_hat, ok = fec.crc_check(fec.ldpc_decoder(llr * (1 - 2 * fec.scrambling)))
                parts.append(u_hat)
                oks.append(ok.reshape(-1))
            ok = torch.stack(oks, dim=1)                                              # [b, C]
            owner = torch.repeat_interleave(torch.arange(lay.num_codewords),
                                            torch.tensor(lay.codeword_payload_bits))[:alloc.num_bits]
            lost_bits = torch.zeros(len(rows), alloc.bits.numel(), dtype=torch.long)
            lost_bits.index_add_(1, alloc.coefficient, (~ok[:, owner]).long())
            latent[rows] = self.quantiser.from_bits(torch.cat(parts, dim=1)[:, :alloc.num_bits], alloc,
                                                    lost_bits > 0)
            mcs_index[rows], num_cw[rows], failed[rows] = mcs.index, lay.num_codewords, (~ok).sum(1)
        return DecodeReport(latent.to(symbols.device), mcs_index, num_cw, failed)

    @torch.no_grad()
    def quantised(self, latent: torch.Tensor, condition: Condition | tuple[float, float]) -> torch.Tensor:
        """The latent [B, C, H, W] the decoder outputs when every codeword arrives (quantisation only)."""
        self._check_latent(latent)
        out = torch.zeros(latent.shape[0], *self.config.latent_shape)
        for mcs, rows in self._groups(condition, latent.shape[0]):
            out[rows] = self._quantise_at(latent[rows].cpu(), mcs)
        return out.to(latent.device)

    def mean_latent(self) -> torch.Tensor:
        """The dataset mean latent [C, H, W]: the output when every codeword fails."""
        return self.quantiser.mean_latent()

    # -- internals ----------------------------------------------------------------------------------------
    def _quantise_at(self, latent: torch.Tensor, mcs: Mcs) -> torch.Tensor:
        """CPU latents [B, C, H, W] through the quantiser at ``mcs``'s bit budget and back."""
        alloc = self.allocation(mcs)
        return self.quantiser.from_bits(self.quantiser.to_bits(latent, alloc), alloc)

    def _groups(self, condition, batch_size: int) -> list[tuple[Mcs, torch.Tensor]]:
        """(MCS, latent indices) for each distinct MCS in the batch."""
        chosen = self.mcs_for(condition, batch_size)
        index = torch.tensor([m.index for m in chosen])
        return [(next(m for m in chosen if m.index == i), (index == i).nonzero().flatten())
                for i in sorted(set(index.tolist()))]

    def _blocks(self, lay: FrameLayout, c: int) -> _Fec:
        key = (lay.mcs.index, lay.coded_bits[c], c)
        if key not in self._fec:
            from sionna.phy.fec.crc import CRCDecoder, CRCEncoder
            from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
            from sionna.phy.mapping import Demapper, Mapper

            m, n, k = lay.mcs.bits_per_symbol, lay.coded_bits[c], lay.info_bits[c]
            crc = CRCEncoder("CRC16" if lay.crc_bits[c] == 16 else "CRC24A", device="cpu")
            ldpc = LDPC5GEncoder(k, n, num_bits_per_symbol=m, device="cpu")
            rng = np.random.Generator(np.random.PCG64([SCRAMBLING_SEED, n, c]))
            self._fec[key] = _Fec(
                crc, CRCDecoder(crc, device="cpu"), ldpc,
                LDPC5GDecoder(ldpc, num_iter=self.config.ldpc_iterations, hard_out=True, device="cpu"),
                Mapper("qam", m, device="cpu"), Demapper("app", "qam", m, device="cpu"),
                torch.from_numpy(rng.integers(0, 2, n).astype(np.float32)))
        return self._fec[key]

    def _noise_per_symbol(self, noise_var, b: int, device) -> torch.Tensor:
        nv = torch.as_tensor(noise_var, dtype=torch.float32, device=device)
        if nv.dim() == 1 and nv.numel() == b:
            nv = nv[:, None]
        nv = nv.expand(b, self.num_symbols) if nv.numel() in (1, b) else nv
        if nv.shape != (b, self.num_symbols):
            raise ShapeError(f"noise_var must be scalar, [B] or [B, K]; got {tuple(nv.shape)}")
        if not bool((nv > 0).all()) or not bool(torch.isfinite(nv).all()):
            raise ShapeError("noise_var must be positive and finite")
        return nv

    def _check_symbols(self, symbols: torch.Tensor) -> int:
        if symbols.dim() != 2 or symbols.shape[1] != self.num_symbols or not symbols.is_complex():
            raise ShapeError(f"symbols must be complex [B, {self.num_symbols}], got {tuple(symbols.shape)} "
                             f"{symbols.dtype}")
        return symbols.shape[0]

    def _check_latent(self, latent: torch.Tensor) -> None:
        want = self.config.latent_shape
        if latent.dim() != 4 or tuple(latent.shape[1:]) != want:
            raise ShapeError(f"latent must be [B, {want[0]}, {want[1]}, {want[2]}], got {tuple(latent.shape)}")
