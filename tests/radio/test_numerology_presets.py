"""Numerology presets: selectable by name (and TOML), data keyed by the header's id, CP sized for 3000 ns on
TDL-A at the wide presets, frames decoded at every preset and refused across presets."""
import numpy as np
import pytest
from radio_channel_helpers import random_symbols

import radio
from common import ConfigError
from radio.numerology import PRESETS

TDL_A_LAST_TAP_PER_RMS = 9.6566  # 3GPP TR 38.901 TDL-A: normalised delay of the last tap


def test_presets_by_name_round_trip_and_conflicts():
    assert [PRESETS[name]["numerology_id"] for name in ("narrow", "wide-7.68", "wide-15.36", "wide-30.72")] == [0, 1, 2, 3]
    for name in PRESETS:
        cfg = radio.FrameConfig(preset=name)
        assert radio.FrameConfig.from_toml_str(cfg.to_toml_str()) == cfg
        assert radio.FrameConfig.from_toml_str(f'preset = "{name}"') == cfg
        assert cfg.numerology_id == PRESETS[name]["numerology_id"]
    assert radio.FrameConfig() == radio.FrameConfig(preset="narrow")
    with pytest.raises(ConfigError):
        radio.FrameConfig(preset="wide-30.72", fft_size=1024)
    with pytest.raises(ConfigError):
        radio.FrameConfig(preset="custom", numerology_id=3)  # a preset's id
    with pytest.raises(ConfigError):
        radio.FrameConfig(preset="wide-61.44")


@pytest.mark.parametrize("name", ["wide-7.68", "wide-15.36", "wide-30.72"])
def test_wide_presets_cp_covers_tdl_a_at_3000_ns_and_fit_a_pluto(name):
    cfg = radio.FrameConfig(preset=name)
    assert cfg.cp_length / cfg.sample_rate_hz >= TDL_A_LAST_TAP_PER_RMS * 3000e-9
    assert cfg.occupied_bandwidth_hz <= 20e6 and cfg.sample_rate_hz <= 30.72e6


def test_widest_preset_round_trip_and_other_presets_refused():
    rng = np.random.default_rng(3)
    wide = radio.FrameConfig(preset="wide-30.72")
    s = random_symbols(128, rng)  # one JSCC latent
    iq = radio.Transmitter(wide).modulate(s, frame_id=77, condition=(3.0, 1e-6))
    x = np.concatenate([np.zeros(3000, np.complex64), iq, np.zeros(3000, np.complex64)])
    x = x + 0.05 * (rng.normal(size=x.size) + 1j * rng.normal(size=x.size))
    frames = radio.Receiver(wide).receive(x.astype(np.complex64), final=True)
    assert [(f.status, f.header.frame_id, f.header.numerology_id) for f in frames] == [("ok", 77, 3)]
    assert np.mean(np.abs(frames[0].symbols - s) ** 2) < 0.05
    for other in ("narrow", "wide-15.36"):
        assert not [f for f in radio.Receiver(radio.FrameConfig(preset=other)).receive(x, final=True)
                    if f.status == "ok"]
