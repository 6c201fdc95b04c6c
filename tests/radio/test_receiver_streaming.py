"""Streaming: frames cut across receive() calls, several frames per buffer, absolute start indices."""
import numpy as np
import pytest
from radio_channel_helpers import apply_channel, random_symbols

import radio

CFG = radio.FrameConfig()
TX = radio.Transmitter(CFG)


def _stream(rng, lengths, gap=700, snr_db=25.0):
    parts, starts, payloads = [], [], []
    pos = 0
    for i, n in enumerate(lengths):
        s = random_symbols(n, rng)
        x, truth = apply_channel(TX.modulate(s, frame_id=i), CFG, rng, snr_db=snr_db, lead=gap, tail=0,
                                 cfo_subcarriers=0.4)
        parts.append(x)
        starts.append(pos + truth.start)
        payloads.append(s)
        pos += x.size
    return np.concatenate(parts), starts, payloads


def test_several_frames_in_one_buffer():
    rng = np.random.default_rng(1)
    x, starts, payloads = _stream(rng, [1, 90, 400, 7, 1200])
    frames = radio.Receiver(CFG).receive(x, final=True)
    assert [f.header.frame_id for f in frames] == [0, 1, 2, 3, 4]
    for f, st, s in zip(frames, starts, payloads):
        assert abs(f.start - st) <= 1
        assert f.symbols.size == s.size and np.mean(np.abs(f.symbols - s) ** 2) < 0.02


@pytest.mark.parametrize("chunk", [97, 1000, 4096])
def test_frames_cut_at_buffer_edges_found_in_next_call(chunk):
    rng = np.random.default_rng(chunk)
    x, starts, payloads = _stream(rng, [300, 5, 700, 60])
    rx = radio.Receiver(CFG)
    frames = []
    for i in range(0, x.size, chunk):
        frames += rx.receive(x[i:i + chunk])
    frames += rx.flush()
    assert [f.header.frame_id for f in frames] == [0, 1, 2, 3]
    assert [abs(f.start - st) <= 1 for f, st in zip(frames, starts)] == [True] * 4
    for f, s in zip(frames, payloads):
        assert np.mean(np.abs(f.symbols - s) ** 2) < 0.02
    assert rx.stats.frames_ok == 4 and rx.stats.truncated_frames == 0


def test_frame_cut_in_two_calls_and_buffer_is_bounded():
    rng = np.random.default_rng(2)
    x, starts, _ = _stream(rng, [2000])
    cut = starts[0] + 3000  # inside the payload
    rx = radio.Receiver(CFG)
    assert rx.receive(x[:cut]) == []
    frames = rx.receive(x[cut:])
    assert len(frames) == 1 and frames[0].status == "ok" and abs(frames[0].start - starts[0]) <= 1
    # after the frame only a short tail is kept
    rx.receive(np.zeros(50_000, np.complex64))
    assert rx._buf.size < 2000


def test_flush_counts_a_truncated_frame_and_reset_restarts_the_clock():
    rng = np.random.default_rng(3)
    x, starts, _ = _stream(rng, [2000])
    rx = radio.Receiver(CFG)
    assert rx.receive(x[:starts[0] + 3000]) == []
    frames = rx.flush()
    assert [f.status for f in frames] == ["truncated"] and frames[0].symbols is None
    assert rx.stats.truncated_frames == 1
    rx.reset()
    assert rx.stats.truncated_frames == 0
    frames = rx.receive(x, final=True)
    assert abs(frames[0].start - starts[0]) <= 1
