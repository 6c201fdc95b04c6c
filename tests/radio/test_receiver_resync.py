"""Resynchronisation after an undecoded header: every later candidate is still examined (a real
frame that starts inside the failed candidate's span is not lost), but the failed candidate's LTS
pair is never accepted again (a frame is never reported twice)."""
import numpy as np
from radio_channel_helpers import apply_channel, random_symbols

import radio

CFG = radio.FrameConfig()
TX = radio.Transmitter(CFG)
PREAMBLE = radio.frame_layout.FrameLayout(CFG).preamble.waveform


def _noise(rng, n, power):
    return np.sqrt(power / 2) * (rng.normal(size=n) + 1j * rng.normal(size=n))


def test_truncated_burst_before_a_frame_does_not_hide_it():
    """A preamble followed by garbage (a cut-off burst, or what noise + DC offset once faked) 700
    samples before a real frame: its header fails, and the real frame inside that header's span is
    still decoded."""
    rng = np.random.default_rng(10)
    s = random_symbols(300, rng)
    good = TX.modulate(s, frame_id=42)
    gap = 700 - PREAMBLE.size  # the false header's span (preamble + 8 symbols ≈ 1600) covers the real frame
    burst = np.concatenate([PREAMBLE, _noise(rng, gap, 1.0), good])
    x, _ = apply_channel(burst, CFG, rng, snr_db=30.0)
    rx = radio.Receiver(CFG)
    frames = rx.receive(x, final=True)
    assert [f.status for f in frames] == ["header_crc", "ok"]
    assert frames[1].header.frame_id == 42 and frames[0].symbols is None
    assert abs(frames[1].start - (500 + 700)) <= 1
    assert np.mean(np.abs(frames[1].symbols - s) ** 2) < 0.05
    assert rx.stats.header_crc_failures == 1 and rx.stats.frames_ok == 1


def test_false_preamble_overlapping_the_real_one_does_not_hide_it():
    """A weaker preamble 350 samples before a real frame (overlapping its preamble, as the emulator's
    DC offset once made noise look 269 samples early): resuming only after the false LTS pair would
    skip the real frame's candidate, so every later candidate is still examined."""
    rng = np.random.default_rng(12)
    s = random_symbols(300, rng)
    burst = np.concatenate([np.zeros(350, complex), TX.modulate(s, frame_id=43)])
    burst[:PREAMBLE.size] += 0.5 * PREAMBLE
    x, _ = apply_channel(burst, CFG, rng, snr_db=30.0)
    rx = radio.Receiver(CFG)
    frames = rx.receive(x, final=True)
    # the false candidate is either merged into the real one's detection run or examined and, its window
    # holding little of its energy, not reported
    assert [f.status for f in frames] == ["ok"]
    assert frames[0].header.frame_id == 43 and abs(frames[0].start - (500 + 350)) <= 1
    assert np.mean(np.abs(frames[0].symbols - s) ** 2) < 0.05


def test_frame_with_bad_header_reported_once_then_next_frame_decoded(monkeypatch):
    """A real frame with a corrupted header and a long payload, followed by good frames: the bad
    frame is reported once (its header and payload are searched but hold no preamble), its payload
    is never decoded, and the frames after it are."""
    rng = np.random.default_rng(11)
    good_bits = radio.FrameHeader.to_bits

    def flip_for_frame_7(self):
        bits = good_bits(self).copy()
        if self.frame_id == 7:
            bits[17] ^= 1
        return bits

    monkeypatch.setattr(radio.FrameHeader, "to_bits", flip_for_frame_7)
    ids = [1, 7, 8, 9]
    iq = np.concatenate([np.concatenate([TX.modulate(random_symbols(3000, rng), frame_id=i),
                                         np.zeros(200, np.complex64)]) for i in ids])
    x, _ = apply_channel(iq, CFG, rng, snr_db=25.0)
    rx = radio.Receiver(CFG)
    frames = [f for k in range(0, x.size, 4000) for f in rx.receive(x[k:k + 4000])] + rx.flush()
    assert [f.status for f in frames] == ["ok", "header_crc", "ok", "ok"]
    assert [f.header.frame_id for f in frames if f.status == "ok"] == [1, 8, 9]
    assert rx.stats.header_crc_failures == 1 and rx.stats.frames_found == 4
