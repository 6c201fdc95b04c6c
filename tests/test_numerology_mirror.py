"""The JSCC training channel's numerology (dekag, copied by value) agrees with the radio's for every preset."""
import pytest

import radio
from common import ConfigError
from dekag.jscc.numerology import PRESETS as DEKAG_PRESETS
from dekag.jscc.numerology import channel_config_for_preset
from radio.numerology import PRESETS as RADIO_PRESETS


def test_every_radio_preset_is_mirrored_in_dekag_with_the_same_numerology():
    assert set(DEKAG_PRESETS) == set(RADIO_PRESETS)
    for name in RADIO_PRESETS:
        frame = radio.FrameConfig(preset=name)
        channel = channel_config_for_preset(name)
        for field in ("sample_rate_hz", "fft_size", "cp_length", "num_used_subcarriers"):
            assert getattr(channel, field) == getattr(frame, field), (name, field)
        assert channel.subcarrier_spacing_hz == frame.subcarrier_spacing_hz


def test_unknown_preset_is_refused_on_both_sides():
    with pytest.raises(KeyError):
        channel_config_for_preset("wide-61.44")
    with pytest.raises(ConfigError):
        radio.FrameConfig(preset="wide-61.44")
