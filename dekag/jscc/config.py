"""TOML configurations of the JSCC codec, CALA, the ADJSCC baseline, the training channel and T-KA training.

All are dataclasses inheriting :class:`common.TomlConfig`; :class:`TkaConfig` nests them so one TOML
file describes a whole T-KA run::

    [codec]
    latent_channels = 4
    ...
    [cala]
    rank = 8
    [channel]
    fft_size = 128
    [training]
    seed = 0

The OFDM numerology in :class:`ChannelConfig` is given BY VALUE (``dekag`` never imports ``radio``);
its defaults mirror the radio's ``FrameConfig``: 3.84 MS/s, FFT 128, CP 16, 96 used subcarriers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from common.tomlconfig import ConfigError, TomlConfig
from dekag.jscc.condition_domain import ConditionDomain

TDL_MODELS = ("A", "B", "C", "D", "E")


@dataclass
class CodecConfig(TomlConfig):
    """Shape of the JSCC codec.

    Attributes:
        latent_channels, latent_height, latent_width: latent shape C, H, W (miniature world: 4, 8, 8;
            Stable Diffusion at 512 px: 4, 64, 64).
        bandwidth_ratio: K / (C·H·W), K = complex channel symbols per latent.
        downsample: spatial factor d ∈ {1, 2, 4} of the encoder (first conv strided, decoder ends in a
            PixelShuffle); the symbol map is [B, K/(H/d·W/d), H/d, W/d]. Use 4 at 64×64.
        hidden_channels: width of the hidden convolutions.
        num_hidden_layers: hidden 3×3 convolutions between the input and output convolution (each side).
        noise_input: the decoder reads each symbol's noise variance (log10) beside its real and imaginary
            part; False gives a noise-blind decoder (the ablation that shows what the noise input takes from
            condition gating).
    """

    latent_channels: int = 4
    latent_height: int = 8
    latent_width: int = 8
    bandwidth_ratio: float = 0.5
    downsample: int = 1
    hidden_channels: int = 32
    num_hidden_layers: int = 2
    noise_input: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if min(self.latent_channels, self.latent_height, self.latent_width) < 1:
            raise ConfigError("latent_channels/height/width must be ≥ 1")
        if self.downsample not in (1, 2, 4):
            raise ConfigError(f"downsample must be 1, 2 or 4, got {self.downsample}")
        if self.latent_height % self.downsample or self.latent_width % self.downsample:
            raise ConfigError(f"latent {self.latent_height}×{self.latent_width} not divisible by downsample "
                              f"{self.downsample}")
        if self.bandwidth_ratio <= 0:
            raise ConfigError(f"bandwidth_ratio must be positive, got {self.bandwidth_ratio}")
        q = self.symbol_channels_float
        if abs(q - round(q)) > 1e-9 or round(q) < 1:
            raise ConfigError(f"bandwidth_ratio {self.bandwidth_ratio} × C {self.latent_channels} × downsample² "
                              f"{self.downsample ** 2} = {q} must be a positive integer (complex symbol channels)")
        if self.hidden_channels < 1 or self.num_hidden_layers < 0:
            raise ConfigError("hidden_channels must be ≥ 1 and num_hidden_layers ≥ 0")

    @property
    def symbol_channels_float(self) -> float:
        return self.bandwidth_ratio * self.latent_channels * self.downsample ** 2

    @property
    def symbol_channels(self) -> int:
        """Complex channels of the encoder's symbol map."""
        return round(self.symbol_channels_float)

    @property
    def num_symbols(self) -> int:
        """K: complex channel symbols per latent."""
        return self.symbol_channels * (self.latent_height // self.downsample) * (self.latent_width // self.downsample)


@dataclass
class CalaConfig(TomlConfig):
    """CALA: ΔW(c) = Σ_k g_k(c)·b_k a_kᵀ added to frozen convolutions.

    Attributes:
        rank: number R of rank-1 components per adapted layer (1..16).
        gate: "softmax" (gates sum to 1, a convex mix) or "sigmoid" (independent gates in (0, 1)).
        gate_hidden: hidden width of each layer's gating MLP 2 → gate_hidden → R.
        targets: "all" (every convolution of encoder and decoder) or "hidden" (hidden 3×3 only).
    """

    rank: int = 8
    gate: Literal["softmax", "sigmoid"] = "softmax"
    gate_hidden: int = 16
    targets: Literal["all", "hidden"] = "all"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not 1 <= self.rank <= 16:
            raise ConfigError(f"cala rank must be in 1..16, got {self.rank}")
        if self.gate not in ("softmax", "sigmoid"):
            raise ConfigError(f"cala gate must be 'softmax' or 'sigmoid', got {self.gate!r}")
        if self.gate_hidden < 1:
            raise ConfigError(f"gate_hidden must be ≥ 1, got {self.gate_hidden}")
        if self.targets not in ("all", "hidden"):
            raise ConfigError(f"targets must be 'all' or 'hidden', got {self.targets!r}")


@dataclass
class AdjsccConfig(TomlConfig):
    """ADJSCC-style attention feature (AF) modules after every hidden convolution.

    Attributes:
        af_hidden: hidden width of each AF module's MLP (C_feat + 2 → af_hidden → C_feat). ``0`` picks
            the width whose added parameter count is closest to CALA's (equal parameter budget).
    """

    af_hidden: int = 0

    def __post_init__(self) -> None:
        if self.af_hidden < 0:
            raise ConfigError(f"af_hidden must be ≥ 0, got {self.af_hidden}")


@dataclass
class ChannelConfig(TomlConfig):
    """Differentiable OFDM training channel (Sionna 2.x, frequency domain).

    Attributes:
        sample_rate_hz, fft_size, cp_length, num_used_subcarriers: numerology, by value (mirrors the radio).
        carrier_frequency_hz: carrier of the TDL model (only Doppler depends on it).
        max_speed_mps: terminal speed; 0 = static channel during one latent.
        pilot_ofdm_symbol_indices: OFDM symbols carrying Kronecker pilots (on every used subcarrier).
        tdl_models: TDL profiles sampled uniformly per example during training.
        snr_db_min/max: SNR (Es/N0 per used subcarrier, dB) sampled uniformly per example.
        delay_spread_s_min/max: RMS delay spread sampled log-uniformly per example.
        perfect_csi: equalise with the true channel instead of LS estimates.
        ls_interpolation: Sionna LS interpolation "nn" or "lin".
    """

    sample_rate_hz: float = 3.84e6
    fft_size: int = 128
    cp_length: int = 16
    num_used_subcarriers: int = 96
    carrier_frequency_hz: float = 2.4e9
    max_speed_mps: float = 0.0
    pilot_ofdm_symbol_indices: list[int] = field(default_factory=lambda: [0])
    tdl_models: list[str] = field(default_factory=lambda: list(TDL_MODELS))
    snr_db_min: float = 0.0
    snr_db_max: float = 20.0
    delay_spread_s_min: float = 30e-9
    delay_spread_s_max: float = 3000e-9
    perfect_csi: bool = False
    ls_interpolation: Literal["nn", "lin"] = "nn"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.sample_rate_hz <= 0 or self.carrier_frequency_hz <= 0:
            raise ConfigError("sample_rate_hz and carrier_frequency_hz must be positive")
        if self.fft_size < 16 or self.fft_size & (self.fft_size - 1):
            raise ConfigError(f"fft_size must be a power of two ≥ 16, got {self.fft_size}")
        if not 0 < self.cp_length < self.fft_size:
            raise ConfigError(f"cp_length must be in (0, fft_size), got {self.cp_length}")
        if self.num_used_subcarriers % 2 or not 0 < self.num_used_subcarriers < self.fft_size:
            raise ConfigError(f"num_used_subcarriers must be even and < fft_size, got {self.num_used_subcarriers}")
        if not self.pilot_ofdm_symbol_indices or min(self.pilot_ofdm_symbol_indices) < 0:
            raise ConfigError("pilot_ofdm_symbol_indices must be a non-empty list of non-negative indices")
        bad = [m for m in self.tdl_models if m not in TDL_MODELS]
        if bad or not self.tdl_models:
            raise ConfigError(f"tdl_models must be a non-empty subset of {TDL_MODELS}, got {self.tdl_models}")
        if self.snr_db_min > self.snr_db_max:
            raise ConfigError("snr_db_min > snr_db_max")
        if not 0 < self.delay_spread_s_min <= self.delay_spread_s_max:
            raise ConfigError("need 0 < delay_spread_s_min ≤ delay_spread_s_max")
        if self.max_speed_mps < 0:
            raise ConfigError("max_speed_mps must be ≥ 0")
        if self.ls_interpolation not in ("nn", "lin"):
            raise ConfigError(f"ls_interpolation must be 'nn' or 'lin', got {self.ls_interpolation!r}")

    @property
    def subcarrier_spacing_hz(self) -> float:
        return self.sample_rate_hz / self.fft_size

    @property
    def condition_domain(self) -> ConditionDomain:
        """The domain of a codec trained on this channel: its SNR and delay-spread ranges and the
        numerology's delay-resolution floor (1 / occupied bandwidth)."""
        return ConditionDomain.for_numerology(
            self.num_used_subcarriers * self.subcarrier_spacing_hz, snr_db_min=self.snr_db_min,
            snr_db_max=self.snr_db_max, delay_spread_s_min=self.delay_spread_s_min,
            delay_spread_s_max=self.delay_spread_s_max)


@dataclass
class TrainingConfig(TomlConfig):
    """T-KA schedule and the baselines trained in the same run.

    Steps are optimiser steps of ``batch_size`` latents. Stage names: ``base`` (a), ``mismatch`` (b),
    ``oracle_<snr>dB_<ns>ns`` (c), ``adjscc`` (d), ``cala_<gate>`` (e).

    Attributes:
        seed: seeds data order, condition sampling, model init and Sionna's channel generator.
        base_steps: (a) base codec across all conditions.
        adaptive_steps: (d) ADJSCC (all weights) and (e) CALA (base frozen), each started from (a), and (c)
            each oracle, fine-tuned from (a) at its own condition (TDL models mixed), so an oracle has (a)'s
            steps plus CALA's. (b) trains ``base_steps`` on (a)'s schedule at ``mismatch_snr_db`` /
            ``mismatch_delay_spread_s`` only: equal budgets by construction.
        cala_gates: gate kinds trained as (e) ("softmax", "sigmoid"); the first is the headline CALA.
        checkpoint_every: steps between resumable checkpoints.
        link: what the codec trains through: "simulated" (the Sionna training channel, perfect CSI) or
            "frames" (the testbed's real frame pipeline with estimated, fed-back CSI and lost frames;
            built by ``experiments.frame_link`` — run it with ``dekag-testbed train``).
    """

    seed: int = 0
    batch_size: int = 64
    learning_rate: float = 2e-3
    adaptive_learning_rate: float = 2e-3
    base_steps: int = 3000
    adaptive_steps: int = 2000
    mismatch_snr_db: float = 10.0
    mismatch_delay_spread_s: float = 100e-9
    oracle_snr_db: list[float] = field(default_factory=lambda: [0.0, 10.0, 20.0])
    oracle_delay_spread_s: list[float] = field(default_factory=lambda: [30e-9, 300e-9, 3000e-9])
    cala_gates: list[str] = field(default_factory=lambda: ["softmax", "sigmoid"])
    checkpoint_every: int = 250
    link: Literal["simulated", "frames"] = "simulated"
    test_fraction: float = 0.1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.batch_size < 1 or self.checkpoint_every < 1:
            raise ConfigError("batch_size and checkpoint_every must be ≥ 1")
        for name in ("base_steps", "adaptive_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be ≥ 0")
        if self.learning_rate <= 0 or self.adaptive_learning_rate <= 0:
            raise ConfigError("learning rates must be positive")
        bad = [g for g in self.cala_gates if g not in ("softmax", "sigmoid")]
        if bad or not self.cala_gates:
            raise ConfigError(f"cala_gates must be a non-empty list of 'softmax'/'sigmoid', got {self.cala_gates}")
        if self.link not in ("simulated", "frames"):
            raise ConfigError(f"training.link must be 'simulated' or 'frames', got {self.link!r}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError("test_fraction must be in (0, 1)")
        if any(not math.isfinite(v) for v in self.oracle_snr_db) or any(d <= 0 for d in self.oracle_delay_spread_s):
            raise ConfigError("oracle grid must hold finite SNRs and positive delay spreads")


@dataclass
class TkaConfig(TomlConfig):
    """A whole T-KA run: codec, CALA, ADJSCC baseline, training channel, schedule."""

    codec: CodecConfig = field(default_factory=CodecConfig)
    cala: CalaConfig = field(default_factory=CalaConfig)
    adjscc: AdjsccConfig = field(default_factory=AdjsccConfig)
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
