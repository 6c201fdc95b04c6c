"""Headers that lie and buffers that break: a CRC-passing header with a false payload length neither swallows
the frames behind it nor is reported "ok"; a frame cut by a NaN buffer is counted as truncated; buffers out of
float32's usable range are counted."""
import numpy as np
import pytest
from radio_channel_helpers import apply_channel, random_symbols

import radio
import radio.transmitter

CFG = radio.FrameConfig()
GAP = np.zeros(400, np.complex64)


def _forging_lengths(monkeypatch, forged: dict[int, int]):
    """Transmitters build the header of frame id k with payload_len ``forged[k]`` (its CRC is right)."""
    real = radio.FrameHeader

    def header(**fields):
        if fields["frame_id"] in forged:
            fields["payload_len"] = forged[fields["frame_id"]]
        return real(**fields)

    monkeypatch.setattr(radio.transmitter, "FrameHeader", header)


def _stream(ids, rng, n=128, snr_db=20.0):
    tx = radio.Transmitter(CFG)
    parts = [GAP]
    for k in ids:
        parts += [tx.modulate(random_symbols(n, rng), frame_id=k), GAP]
    x, _ = apply_channel(np.concatenate(parts), CFG, rng, snr_db=snr_db)
    return x


def _receive_in_chunks(rx, x, chunk=4096):
    frames = []
    for i in range(0, x.size, chunk):
        frames += rx.receive(x[i:i + chunk])
    return frames + rx.flush()


@pytest.mark.parametrize("false_len", [2**20 - 1, 300])
def test_false_length_header_does_not_swallow_the_frames_behind_it(monkeypatch, false_len):
    _forging_lengths(monkeypatch, {0: false_len})
    rng = np.random.default_rng(4)
    x = _stream(range(41), rng)
    rx = radio.Receiver(CFG)
    frames = _receive_in_chunks(rx, x)
    assert [f.header.frame_id for f in frames if f.status == "ok"] == list(range(1, 41))
    liar = [f for f in frames if f.header is not None and f.header.frame_id == 0]
    assert [f.status for f in liar] == ["bad_length"] and liar[0].symbols is None
    assert rx.stats.payload_pilot_mismatches == 1


def test_length_bound_comes_from_the_configuration(monkeypatch):
    _forging_lengths(monkeypatch, {0: 129})  # one symbol more than the codec ever sends
    rng = np.random.default_rng(5)
    rx = radio.Receiver(CFG.replace(max_payload_symbols=128))
    frames = _receive_in_chunks(rx, _stream(range(3), rng))
    assert [f.status for f in frames] == ["bad_length", "ok", "ok"]
    assert rx.stats.bad_lengths == 1


def test_frame_cut_by_a_nan_buffer_is_counted_truncated():
    rng = np.random.default_rng(6)
    x = _stream([7, 8], rng, n=2000)
    rx = radio.Receiver(CFG)
    cut = GAP.size + 3000  # inside frame 7's payload
    frames = rx.receive(x[:cut])
    frames += rx.receive(np.full(100, np.nan, np.complex64))
    frames += rx.receive(x[cut:], final=True)
    assert rx.stats.truncated_frames == 1 and rx.stats.bad_buffers == 1
    assert [f.status for f in frames] == ["truncated", "ok"] and frames[1].header.frame_id == 8


@pytest.mark.parametrize("scale", [1e20, 1e-30])
def test_buffers_out_of_range_are_counted_and_the_stream_goes_on(scale):
    rng = np.random.default_rng(7)
    x = _stream([1], rng)
    rx = radio.Receiver(CFG)
    assert rx.receive((x * scale).astype(np.complex64)) == []
    assert rx.stats.out_of_range_buffers == 1
    frames = rx.receive(x, final=True)
    assert [f.header.frame_id for f in frames if f.status == "ok"] == [1]


def test_ordinary_scales_are_in_range():
    rng = np.random.default_rng(8)
    x = _stream([2], rng)
    for scale in (1e-6, 2048.0):  # a weak signal in full-scale units, raw 12-bit ADC codes
        rx = radio.Receiver(CFG)
        assert [f.status for f in rx.receive((x * scale).astype(np.complex64), final=True)] == ["ok"]
        assert rx.stats.out_of_range_buffers == 0
