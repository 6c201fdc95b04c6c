"""The testbed's real frame pipeline as a T-KA link: CALA trained through the frames it actually rides on.

Per example: the encoder's symbols → ``radio.Transmitter`` (preamble, header with the encoder's
condition, comb pilots) → ``radio.Emulator`` (Sionna TDL, the example's SNR and delay spread, every
Pluto-like impairment) → ``radio.Receiver`` (detection, sync, CFO, LMMSE channel, MMSE + unbiasing as
the user node applies it) → the unbiased symbols and their effective noise variance. Frames the
receiver loses (not detected, header failed) are marked ``received = False``.

CSI is what the loop has, mapped through the codec's :class:`~dekag.jscc.condition_domain.ConditionDomain`:
the decoder is gated on the receiver's estimate of this frame; the encoder on the estimate of the
*previous* frame of the same channel setting (one frame old, as the ZeroMQ feedback delivers it; each
frame is an independent channel realisation, so that estimate is what the encoder can know). Settings
are drawn on a grid (1 dB × 4 delay spreads per decade × TDL model) so each cell keeps its last report.

The radio is numpy, so the symbols pass straight through for gradients: the output is
``x + (y_radio − x).detach()`` — exact in the forward pass, and the additive-noise gradient of unbiased
equalised symbols in the backward pass (it leaves out the small dependence of channel-estimation error
on the symbols).

>>> import torch
>>> from dekag.jscc import ChannelConfig
>>> link = FrameLink(ChannelConfig(), num_symbols=128, seed=0)
>>> nominal = link.sample_conditions(4, torch.Generator().manual_seed(0))
>>> out = link(torch.ones(4, 128, dtype=torch.complex64), nominal)
>>> out.symbols.shape, out.received.dtype
(torch.Size([4, 128]), torch.bool)
"""
from __future__ import annotations

import json
import math

import numpy as np
import torch

from dekag.jscc.condition import Condition
from dekag.jscc.condition_domain import ConditionDomain
from dekag.jscc.config import ChannelConfig
from dekag.jscc.link import LinkOutput, Nominal
from radio.config import FrameConfig, ReceiverConfig
from radio.emulator import Emulator, EmulatorConfig
from radio.impairments import Impairments
from radio.numerology import CUSTOM, PRESETS
from radio.receiver import ReceivedFrame, Receiver
from radio.transmitter import Transmitter

TAIL_SAMPLES = 256
"""Zeros appended after each frame so the channel's delay spread and the receiver's window fit."""


def frame_config_for(channel: ChannelConfig) -> FrameConfig:
    """The radio numerology a training channel copies by value: the preset with the same numerology (so the
    header carries its id), else a custom one with the same fields."""
    fields = {"sample_rate_hz": channel.sample_rate_hz, "fft_size": channel.fft_size,
              "cp_length": channel.cp_length, "num_used_subcarriers": channel.num_used_subcarriers}
    for name, preset in PRESETS.items():
        if all(preset[k] == v for k, v in fields.items()):
            return FrameConfig(preset=name)
    return FrameConfig(preset=CUSTOM, **fields)


def unbiased(symbols: np.ndarray, error_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MMSE estimates ``ŝ`` and their error variance ``e`` (the receiver's output) → unbiased estimates
    ``ŝ / (1 − e)`` and effective noise variance ``e / (1 − e)`` (what the JSCC decoder reads)."""
    e = np.clip(np.asarray(error_var, dtype=np.float64), 1e-6, 1 - 1e-6)
    return (np.asarray(symbols) / (1 - e)).astype(np.complex64), (e / (1 - e)).astype(np.float32)


class FramePipeline:
    """One frame through Transmitter → Emulator → Receiver; reproducible from an emulator seed.

    Args:
        frame: numerology of transmitter, emulator and receiver.
        impairments: the emulator's hardware impairments (default: all on, Pluto-like).
        receiver: receiver settings.
        carrier_frequency_hz: carrier of the TDL model and the CFO in ppm.
    """

    def __init__(self, frame: FrameConfig, impairments: Impairments | None = None,
                 receiver: ReceiverConfig | None = None, carrier_frequency_hz: float = 2.4e9):
        self.frame = frame
        self.impairments = impairments if impairments is not None else Impairments.typical()
        self.carrier_frequency_hz = carrier_frequency_hz
        self.transmitter = Transmitter(frame)
        self.receiver = Receiver(frame, receiver)

    def emulator(self, profile: str, snr_db: float, delay_spread_s: float, seed: int) -> Emulator:
        """An emulator whose first call draws the channel realisation and noise that ``seed`` names."""
        return Emulator(self.frame, EmulatorConfig(profile=profile, snr_db=snr_db, delay_spread_s=delay_spread_s,
                                                   carrier_frequency_hz=self.carrier_frequency_hz, seed=seed,
                                                   impairments=self.impairments))

    def send(self, symbols: np.ndarray, frame_id: int, encoder_condition: tuple[float, float],
             emulator: Emulator) -> tuple[ReceivedFrame | None, object]:
        """Transmit one frame of ``symbols`` (1-D complex64) through ``emulator``; returns the receiver's
        frame with this id and status "ok" (None if it was lost) and the emulator's truth."""
        iq = self.transmitter.modulate(symbols, frame_id=frame_id, condition=encoder_condition)
        rx_iq, truth = emulator(np.concatenate([iq, np.zeros(TAIL_SAMPLES, np.complex64)]))
        self.receiver.reset()
        frames = self.receiver.receive(rx_iq, final=True)
        ok = [f for f in frames if f.status == "ok" and f.header is not None and f.header.frame_id == frame_id
              and f.header.payload_len == len(symbols)]
        return (ok[0] if ok else None), truth


class FrameLink:
    """:class:`~dekag.jscc.link.Link` over the real frame pipeline (see the module docstring).

    Args:
        channel: the T-KA channel config: numerology (by value), TDL models, SNR and delay-spread ranges.
        num_symbols: K, symbols per latent (one frame each).
        impairments: emulator impairments (default: all on).
        seed: seed of channel draws and noise.
        stale_csi: gate the encoder on the previous frame's estimate (True) or on this frame's
            nominal setting mapped through the domain (False).
    """

    def __init__(self, channel: ChannelConfig, num_symbols: int, impairments: Impairments | None = None,
                 seed: int = 0, stale_csi: bool = True):
        self.config = channel
        self.num_symbols = num_symbols
        self.num_models = len(channel.tdl_models)
        self.domain: ConditionDomain = channel.condition_domain
        self.pipeline = FramePipeline(frame_config_for(channel), impairments,
                                      carrier_frequency_hz=channel.carrier_frequency_hz)
        self.stale_csi = stale_csi
        self._snr_grid = np.arange(math.ceil(channel.snr_db_min), math.floor(channel.snr_db_max) + 1, 1.0)
        decades = math.log10(channel.delay_spread_s_max / channel.delay_spread_s_min)
        self._tau_grid = channel.delay_spread_s_min * 10 ** np.linspace(0, decades, max(2, round(4 * decades) + 1))
        self.seed(seed)

    # -- Link protocol ------------------------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        """Restart the channel draws at ``seed`` and forget the fed-back reports."""
        self._rng = np.random.default_rng(seed)
        self._reports: dict[str, tuple[float, float]] = {}

    def sample_conditions(self, batch_size: int, generator: torch.Generator) -> Nominal:
        """Per example: SNR on a 1 dB grid, delay spread on a log grid (4 per decade), TDL model, uniform."""
        i = torch.randint(len(self._snr_grid), (batch_size,), generator=generator)
        j = torch.randint(len(self._tau_grid), (batch_size,), generator=generator)
        return {"snr_db": torch.as_tensor(self._snr_grid, dtype=torch.float32)[i],
                "delay_spread_s": torch.as_tensor(self._tau_grid, dtype=torch.float32)[j],
                "model_index": torch.randint(self.num_models, (batch_size,), generator=generator)}

    def encoder_condition(self, nominal: Nominal) -> Condition:
        conds = [self._encoder_condition(*setting) for setting in _settings(nominal)]
        return Condition(torch.tensor([c[0] for c in conds]), torch.tensor([c[1] for c in conds]))

    def __call__(self, symbols: torch.Tensor, nominal: Nominal) -> LinkOutput:
        b, k = symbols.shape
        if k != self.num_symbols:
            raise ValueError(f"symbols must be [B, {self.num_symbols}], got {tuple(symbols.shape)}")
        sent = symbols.detach().cpu().numpy().astype(np.complex64)
        y = np.zeros((b, k), np.complex64)
        nv = np.ones((b, k), np.float32)
        dec = np.zeros((2, b))
        received = np.zeros(b, bool)
        for n, (snr, tau, model) in enumerate(_settings(nominal)):
            enc = self._encoder_condition(snr, tau, model)
            emulator = self.pipeline.emulator(f"TDL-{self.config.tdl_models[model]}", snr, tau,
                                              int(self._rng.integers(2 ** 31)))
            frame, _ = self.pipeline.send(sent[n], n % 65536, enc, emulator)
            if frame is None:
                dec[:, n] = self.domain.apply(None, None).as_tuple()
                continue
            y[n], nv[n] = unbiased(frame.symbols, frame.noise_var)
            report = self.domain.apply(frame.snr_db, frame.delay_spread_s, frame.delay_spread_below_resolution)
            dec[:, n] = report.as_tuple()
            received[n] = True
            self._reports[_cell(snr, tau, model)] = report.as_tuple()
        x = symbols.to(torch.complex64)
        out = x + (torch.from_numpy(y) - x).detach()
        return LinkOutput(out, torch.from_numpy(nv), Condition(torch.from_numpy(dec[0]).float(),
                                                              torch.from_numpy(dec[1]).float()),
                          torch.from_numpy(received))

    def rng_state(self) -> torch.Tensor:
        """The channel generator and the fed-back reports, as a uint8 tensor (JSON inside)."""
        state = {"rng": self._rng.bit_generator.state, "reports": self._reports}
        return torch.frombuffer(bytearray(json.dumps(state).encode()), dtype=torch.uint8)

    def set_rng_state(self, state: torch.Tensor) -> None:
        values = json.loads(bytes(state.numpy().tobytes()).decode())
        self._rng.bit_generator.state = values["rng"]
        self._reports = {k: tuple(v) for k, v in values["reports"].items()}

    # -- helpers ------------------------------------------------------------------------------------------
    def _encoder_condition(self, snr: float, tau: float, model: int) -> tuple[float, float]:
        report = self._reports.get(_cell(snr, tau, model)) if self.stale_csi else None
        return report if report is not None else self.domain.apply(snr, tau).as_tuple()


def _settings(nominal: Nominal) -> list[tuple[float, float, int]]:
    return list(zip(nominal["snr_db"].tolist(), nominal["delay_spread_s"].tolist(),
                    nominal["model_index"].tolist(), strict=True))


def _cell(snr: float, tau: float, model: int) -> str:
    return f"{snr:.2f}|{tau * 1e9:.1f}|{model}"

