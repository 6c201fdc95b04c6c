"""Transmission knowledge alignment: JSCC codec, CALA, ADJSCC baseline, Sionna training channel, T-KA.

Public surface::

    from dekag.jscc import JsccCodec, CodecConfig, Condition
    codec = JsccCodec(CodecConfig())                                 # latents [B, 4, 8, 8], K = 128
    sym = codec.encode(latent, Condition(snr_db=10.0, delay_spread_s=100e-9))   # complex [B, K], unit power
    lat = codec.decode(sym_rx, noise_var, Condition(10.0, 100e-9))               # → [B, 4, 8, 8]
    arr = symbols_to_numpy(sym[0])                                   # 1-D complex64: what crosses to the radio
    sym_rx = symbols_from_numpy(arr_rx, codec.num_symbols)           # back, [1, K]

    apply_cala(codec, CalaConfig(rank=8)); save_cala(codec, "cala.safetensors")
    flat = cala_state_dict(codec)                                    # {name: tensor} for the knowledge package

The training channel (:class:`TrainingChannel`) imports Sionna lazily, on construction.
"""
from dekag.jscc.adjscc import AttentionFeature, apply_adjscc
from dekag.jscc.cala import (CalaError, CalaLayer, apply_cala, cala_num_parameters, cala_state_dict, is_cala, load_cala,
                             load_cala_state_dict, save_cala)
from dekag.jscc.codec import JsccCodec, ShapeError, symbols_from_numpy, symbols_to_numpy
from dekag.jscc.condition import Condition, ConditionError
from dekag.jscc.config import AdjsccConfig, CalaConfig, ChannelConfig, CodecConfig, TkaConfig, TrainingConfig
from dekag.jscc.latents import LatentSet, latent_file, standin_latents, vae_latents
from dekag.jscc.training_channel import TrainingChannel, seed_sionna

__all__ = [
    "AdjsccConfig", "AttentionFeature", "CalaConfig", "CalaError", "CalaLayer", "ChannelConfig", "CodecConfig",
    "Condition", "ConditionError", "JsccCodec", "LatentSet", "ShapeError", "TkaConfig", "TrainingChannel",
    "TrainingConfig", "apply_adjscc", "apply_cala", "cala_num_parameters", "cala_state_dict", "is_cala",
    "latent_file", "load_cala", "load_cala_state_dict", "save_cala", "seed_sionna", "standin_latents",
    "symbols_from_numpy", "symbols_to_numpy", "vae_latents",
]
