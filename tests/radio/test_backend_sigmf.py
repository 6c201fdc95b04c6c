"""SigMF record and replay: full metadata, truth per capture, replay through a receiver, refusal of bad files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from radio.backends import (BackendError, EmulatedBackend, FakePluto, PlutoBackend, PlutoConfig, RecordingBackend,
                            RecordingError, ReplayExhausted, SigMFRecorder, SigMFReplayBackend)
from radio.config import FrameConfig


def _noise(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)


def _recording(tmp_path, frame_config=None):
    base = tmp_path / "rec"
    frame_config = frame_config or FrameConfig().to_dict()
    with SigMFRecorder(base, sample_rate_hz=3.84e6, center_frequency_hz=915e6,
                       device={"device": "fake", "rx_gain_db": 30.0, "tx_gain_db": -10.0},
                       frame_config=frame_config, description="unit test") as rec:
        rec.append(_noise(300, 1), truth={"snr_db": np.float32(7.5), "delay_spread_s": 1e-7}, frame_id=0)
        rec.append(_noise(200, 2), frame_id=1, gains={"rx_gain_db": 31.0})
    return base


def test_recording_holds_full_metadata_and_replays_exactly(tmp_path):
    base = _recording(tmp_path)
    meta = json.loads(base.with_suffix(".sigmf-meta").read_text())
    g = meta["global"]
    assert g["core:sample_rate"] == 3.84e6 and g["core:datatype"] == "cf32_le" and g["core:hw"] == "fake"
    assert g["dekag:frame_config"] == FrameConfig().to_dict() and "core:sha512" in g
    assert meta["captures"][0]["core:frequency"] == 915e6
    with SigMFReplayBackend(base, expected_sample_rate_hz=3.84e6, expected_frame_config=FrameConfig().to_dict()) as r:
        assert r.captures[0]["truth"] == {"snr_db": 7.5, "delay_spread_s": 1e-7}
        assert r.captures[1]["gains"] == {"rx_gain_db": 31.0} and r.captures[1]["start"] == 300
        got = np.concatenate([r.receive(250), r.receive(250)])
        assert r.capture_at(299)["frame_id"] == 0 and r.capture_at(300)["frame_id"] == 1
        with pytest.raises(ReplayExhausted):
            r.receive(1)
        with pytest.raises(BackendError, match="only receives"):
            r.transmit(np.ones(4, np.complex64))
        assert r.gains == {"rx_gain_db": 30.0, "tx_gain_db": -10.0} and r.center_frequency_hz == 915e6
    assert got.tobytes() == np.concatenate([_noise(300, 1), _noise(200, 2)]).tobytes()


def test_loop_replay_wraps(tmp_path):
    with SigMFReplayBackend(_recording(tmp_path), loop=True) as r:
        x = r.receive(1200)
    np.testing.assert_array_equal(x[:500], x[500:1000])


def test_corrupt_data_is_refused(tmp_path):
    base = _recording(tmp_path)
    data = base.with_suffix(".sigmf-data")
    raw = bytearray(data.read_bytes())
    raw[100] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(RecordingError, match="not a valid SigMF"):
        SigMFReplayBackend(base)


def test_truncated_data_and_missing_files_are_refused(tmp_path):
    base = _recording(tmp_path)
    data = base.with_suffix(".sigmf-data")
    data.write_bytes(data.read_bytes()[:-3])
    with pytest.raises(RecordingError):
        SigMFReplayBackend(base)
    with pytest.raises(RecordingError, match="not found"):
        SigMFReplayBackend(tmp_path / "nothing")
    base.with_suffix(".sigmf-meta").write_text("{ not json")
    with pytest.raises(RecordingError):
        SigMFReplayBackend(base)


def test_mismatched_rate_or_frame_config_is_refused(tmp_path):
    base = _recording(tmp_path)
    with pytest.raises(RecordingError, match="expected 1920000"):
        SigMFReplayBackend(base, expected_sample_rate_hz=1.92e6)
    with pytest.raises(RecordingError, match="fft_size"):
        SigMFReplayBackend(base, expected_frame_config=FrameConfig(preset="custom", fft_size=256, cp_length=32).to_dict())


def test_recorder_refuses_overwrite_and_bad_captures(tmp_path):
    base = _recording(tmp_path)
    with pytest.raises(RecordingError, match="exists"):
        SigMFRecorder(base, sample_rate_hz=1e6, center_frequency_hz=1e9, device={})
    with SigMFRecorder(tmp_path / "other", sample_rate_hz=1e6, center_frequency_hz=1e9, device={}) as rec:
        with pytest.raises(RecordingError):
            rec.append(np.ones(5))
    with pytest.raises(RecordingError, match="empty"):   # closed cleanly, but nothing to replay
        SigMFReplayBackend(tmp_path / "other")


def test_recording_backend_captures_a_pluto_session_with_truth(tmp_path):
    """Any capture can be recorded: a (fake) Pluto session, then replayed offline sample for sample."""
    cfg = PlutoConfig(sample_rate_hz=3.84e6, center_frequency_hz=2.4e9)
    truth = {"snr_db": 20.0}
    inner = PlutoBackend(cfg, device=FakePluto(seed=2))
    rec = SigMFRecorder.for_backend(tmp_path / "pluto", inner, frame_config=FrameConfig().to_dict())
    with RecordingBackend(inner, rec, truth=lambda: truth) as radio:
        radio.transmit(_noise(256, 3))
        radio.frame_id = 5
        live = [radio.receive(1000), radio.receive(600)]
    with SigMFReplayBackend(tmp_path / "pluto.sigmf-meta") as replay:
        assert replay.device_info["device"] == "pluto" and replay.device_info["uri"] == cfg.uri
        assert replay.captures[1]["truth"] == truth and replay.captures[1]["frame_id"] == 5
        assert replay.center_frequency_hz == 2.4e9
        assert replay.receive(1600).tobytes() == np.concatenate(live).tobytes()


def test_emulated_capture_records_the_channel_truth(tmp_path):
    def channel(iq):
        return 0.5 * iq, {"snr_db": 12.0, "delay_spread_s": 3e-7}
    inner = EmulatedBackend(channel, sample_rate_hz=3.84e6)
    rec = SigMFRecorder.for_backend(tmp_path / "emu", inner)
    with RecordingBackend(inner, rec, truth=lambda: inner.last_truth) as radio:
        radio.transmit(_noise(100, 0))
        radio.receive(100)
    assert SigMFReplayBackend(tmp_path / "emu").captures[0]["truth"]["delay_spread_s"] == 3e-7
