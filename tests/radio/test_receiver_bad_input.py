"""Bad input: NaN/Inf, empty and short buffers, wrong numerology, bad header CRC, clipping, noise only."""
import numpy as np
import pytest
from radio_channel_helpers import apply_channel, random_symbols

import radio

CFG = radio.FrameConfig()
TX = radio.Transmitter(CFG)


def _frame(rng, n=200, cfg=CFG, snr_db=25.0):
    s = random_symbols(n, rng)
    x, truth = apply_channel(radio.Transmitter(cfg).modulate(s, frame_id=5), cfg, rng, snr_db=snr_db)
    return x, truth, s


def test_wrong_types_raise_bad_input_error():
    rx = radio.Receiver(CFG)
    for bad in (np.ones((2, 100), np.complex64), np.ones(100), np.array(["a", "b"]), 3.0):
        with pytest.raises(radio.BadInputError):
            rx.receive(bad)


def test_empty_and_short_buffers_are_harmless():
    rx = radio.Receiver(CFG)
    assert rx.receive(np.zeros(0, np.complex64)) == []
    assert rx.receive(np.ones(5, np.complex64)) == []
    assert rx.flush() == []
    assert rx.stats.empty_buffers == 1 and rx.stats.frames_found == 0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_buffer_skipped_and_counted_stream_continues(bad):
    rng = np.random.default_rng(0)
    x, truth, s = _frame(rng)
    rx = radio.Receiver(CFG)
    poisoned = x.copy()
    poisoned[truth.start + 800] = bad
    assert rx.receive(poisoned) == []
    assert rx.stats.bad_buffers == 1
    frames = rx.receive(x, final=True)  # the next clean buffer decodes, with stream indices kept
    assert len(frames) == 1 and frames[0].status == "ok"
    assert abs(frames[0].start - (x.size + truth.start)) <= 1


def test_frame_cut_at_end_of_single_buffer_not_reported_as_frame():
    rng = np.random.default_rng(1)
    x, truth, _ = _frame(rng, n=3000)
    rx = radio.Receiver(CFG)
    frames = rx.receive(x[:truth.start + 2500], final=True)
    assert all(f.symbols is None for f in frames)
    assert rx.stats.truncated_frames == 1 and rx.stats.frames_ok == 0


def test_wrong_numerology_reported_not_decoded():
    rng = np.random.default_rng(2)
    other = radio.FrameConfig(preset="custom", numerology_id=14)
    x, _, _ = _frame(rng, cfg=other)
    rx = radio.Receiver(CFG)
    frames = rx.receive(x, final=True)
    assert [f.status for f in frames] == ["numerology_mismatch"]
    assert frames[0].symbols is None and frames[0].header.numerology_id == 14
    assert rx.stats.numerology_mismatches == 1
    # a different FFT size is simply not a frame for this receiver
    x2, _, _ = _frame(rng, cfg=radio.FrameConfig(preset="custom", fft_size=256, cp_length=32, num_used_subcarriers=192))
    rx2 = radio.Receiver(CFG)
    assert [f for f in rx2.receive(x2, final=True) if f.status == "ok"] == []


def test_corrupted_header_reported_with_crc_false_and_no_payload(monkeypatch):
    rng = np.random.default_rng(3)
    good_bits = radio.FrameHeader.to_bits

    def one_bit_flipped(self):
        bits = good_bits(self).copy()
        bits[17] ^= 1
        return bits

    monkeypatch.setattr(radio.FrameHeader, "to_bits", one_bit_flipped)
    x, truth, _ = _frame(rng, snr_db=40.0)
    rx = radio.Receiver(CFG)
    frames = rx.receive(x, final=True)
    assert len(frames) == 1
    f = frames[0]
    assert f.crc_ok is False and f.status == "header_crc" and f.symbols is None and f.header is None
    assert rx.stats.header_crc_failures == 1 and rx.stats.frames_ok == 0


def test_saturated_adc_flagged_and_counted():
    rng = np.random.default_rng(4)
    x, _, s = _frame(rng, snr_db=30.0)
    full_scale = 1.2
    clipped = (np.clip(x.real, -full_scale, full_scale) + 1j * np.clip(x.imag, -full_scale, full_scale))
    rx = radio.Receiver(CFG)
    f = rx.receive(clipped.astype(np.complex64), final=True)[0]
    assert f.clipped and rx.stats.clipped_frames == 1
    assert not radio.Receiver(CFG).receive(x, final=True)[0].clipped


def test_noise_only_gives_no_frames():
    rng = np.random.default_rng(5)
    rx = radio.Receiver(CFG)
    for _ in range(4):
        noise = (rng.normal(size=100_000) + 1j * rng.normal(size=100_000)).astype(np.complex64)
        assert rx.receive(noise) == []
    assert rx.stats.frames_found == 0
