"""The digital baseline: what a user would otherwise build instead of JSCC.

Public surface::

    from dekag.digital import DigitalCodec, DigitalCodecConfig
    codec = DigitalCodec(DigitalCodecConfig.matching(jscc_codec.config))   # same latent shape and K
    codec.set_latent_stats(train_latents)                                  # quantiser statistics
    sym = codec.encode(latent, (snr_db, delay_spread_s))                   # complex64 [B, K], unit power
    lat = codec.decode(sym_rx, noise_var, (snr_db, delay_spread_s))        # [B, C, H, W]
    rep = codec.decode_report(sym_rx, noise_var, (snr_db, delay_spread_s)) # + MCS and failed codewords
    codec.save("digital.safetensors"); DigitalCodec.load("digital.safetensors")

Modules: :mod:`~dekag.digital.config` (TOML config, default MCS table), :mod:`~dekag.digital.mcs` (MCS
choice and frame layout), :mod:`~dekag.digital.quantiser` (transform, statistics, bit allocation),
:mod:`~dekag.digital.codec` (CRC + 5G LDPC + QAM with Sionna, imported lazily).
"""
from dekag.digital.codec import DecodeReport, DigitalCodec
from dekag.digital.config import DEFAULT_MCS_TABLE, DigitalCodecConfig
from dekag.digital.mcs import FrameLayout, Mcs, frame_layout, select_mcs
from dekag.digital.quantiser import Allocation, LatentQuantiser

__all__ = ["DEFAULT_MCS_TABLE", "Allocation", "DecodeReport", "DigitalCodec", "DigitalCodecConfig",
           "FrameLayout", "LatentQuantiser", "Mcs", "frame_layout", "select_mcs"]
