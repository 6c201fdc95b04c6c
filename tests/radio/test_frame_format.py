"""Frame format pieces: config validation and TOML round trip, header bits and CRC, transmitter output."""
import numpy as np
import pytest

import radio
from common import ConfigError
from radio.frame_layout import FrameLayout
from radio.header import HEADER_BITS


def test_frame_config_toml_round_trip_and_validation():
    cfg = radio.FrameConfig(preset="custom", cp_length=32, pilot_spacing=8, numerology_id=13)
    assert radio.FrameConfig.from_toml_str(cfg.to_toml_str()) == cfg
    assert radio.FrameConfig().subcarrier_spacing_hz == 30e3
    for bad in ({"cp_length": 0}, {"fft_size": 100}, {"num_used_subcarriers": 126},
                {"pilot_spacing": 1}, {"preamble_cp_length": 8}, {"numerology_id": 16}):
        with pytest.raises(ConfigError):
            radio.FrameConfig(**bad)
    with pytest.raises(ConfigError):
        radio.ReceiverConfig(channel_estimator="zf")
    assert radio.ReceiverConfig.from_toml_str(radio.ReceiverConfig().to_toml_str()) == radio.ReceiverConfig()


def test_header_round_trip_quantises_condition_and_crc_catches_bit_errors():
    h = radio.FrameHeader(frame_id=65535, payload_len=123456, numerology_id=5, snr_db=7.13,
                          delay_spread_s=312.4e-9, flags=5)
    bits = h.to_bits()
    assert bits.size == HEADER_BITS
    back = radio.FrameHeader.from_bits(bits)
    assert (back.frame_id, back.payload_len, back.numerology_id, back.flags) == (65535, 123456, 5, 5)
    assert back.snr_db == pytest.approx(7.25) and back.delay_spread_s == pytest.approx(312e-9)
    assert radio.FrameHeader.from_bits(radio.FrameHeader(1, 1, 0).to_bits()).snr_db is None
    for i in range(HEADER_BITS):
        flipped = bits.copy()
        flipped[i] ^= 1
        assert radio.FrameHeader.from_bits(flipped) is None
    with pytest.raises(radio.ConfigurationError):
        radio.FrameHeader(frame_id=1, payload_len=0, numerology_id=0).to_bits()


@pytest.mark.parametrize("length", [1, 7, 80, 1000])
def test_transmitter_length_dtype_and_unit_power(length):
    cfg = radio.FrameConfig()
    rng = np.random.default_rng(length)
    s = (rng.normal(size=length) + 1j * rng.normal(size=length)) / np.sqrt(2)
    iq = radio.Transmitter(cfg).modulate(s, frame_id=9, condition=(5.0, 1e-7))
    assert iq.dtype == np.complex64
    assert iq.size == FrameLayout(cfg).frame_length(length)
    assert np.mean(np.abs(iq) ** 2) == pytest.approx(1.0, abs=0.1)


def test_preamble_halves_identical_and_bad_payloads_rejected():
    cfg = radio.FrameConfig()
    lay = FrameLayout(cfg)
    w = lay.preamble.waveform
    half = cfg.fft_size // 2
    body = w[cfg.cp_length - half // 2:cfg.cp_length + cfg.fft_size]  # CP tail + both halves
    np.testing.assert_allclose(body[:-half], body[half:], atol=1e-12)
    tx = radio.Transmitter(cfg)
    for bad in (np.zeros(0, complex), np.ones((2, 2), complex), np.array([np.nan + 0j])):
        with pytest.raises(radio.ConfigurationError):
            tx.modulate(bad)
    with pytest.raises(radio.ConfigurationError):
        tx.modulate(np.ones(3, complex), frame_id=70000)
