"""In-process emulator backend: burst → channel → receive queue, truth kept per burst."""
from __future__ import annotations

import doctest

import numpy as np
import pytest

import radio.backends.emulated
import radio.backends.pluto
import radio.backends.sigmf_io
from radio.backends import BackendError, EmulatedBackend
from radio.config import FrameConfig


def test_queue_order_zero_fill_and_truth_positions():
    calls = []

    def channel(iq):
        calls.append(iq.size)
        return np.concatenate([np.zeros(3, np.complex64), iq]), {"call": len(calls)}

    radio = EmulatedBackend(channel, sample_rate_hz=1e6, center_frequency_hz=915e6)
    radio.transmit(np.full(4, 1 + 1j, np.complex64))
    radio.transmit(np.full(2, 2j, np.complex64))
    out = radio.receive(10)
    np.testing.assert_array_equal(out, [0, 0, 0, 1 + 1j, 1 + 1j, 1 + 1j, 1 + 1j, 0, 0, 0])
    np.testing.assert_array_equal(radio.receive(5), [2j, 2j, 0, 0, 0])
    assert radio.truths == [(0, {"call": 1}), (7, {"call": 2})]
    assert radio.counters == {"bursts": 2, "rx_zero_fill_samples": 3}
    radio.transmit(np.ones(1, np.complex64))
    assert radio.truths[-1][0] == 15                # idle time passed: the next burst starts after it
    assert radio.describe()["center_frequency_hz"] == 915e6


def test_bad_channel_output_is_refused():
    radio = EmulatedBackend(lambda iq: (iq.real, None), sample_rate_hz=1e6)
    with pytest.raises(BackendError, match="1-D complex"):
        radio.transmit(np.ones(4, np.complex64))


def test_with_the_sionna_emulator():
    cfg = FrameConfig()
    iq = np.exp(2j * np.pi * 0.05 * np.arange(2048)).astype(np.complex64)
    a = EmulatedBackend.from_frame_config(cfg, profile="TDL-C", snr_db=30.0, delay_spread_s=100e-9, seed=1)
    b = EmulatedBackend.from_frame_config(cfg, profile="TDL-C", snr_db=30.0, delay_spread_s=100e-9, seed=1)
    a.transmit(iq)
    b.transmit(iq)
    ra, rb = a.receive(2100), b.receive(2100)
    assert ra.tobytes() == rb.tobytes()              # seeded: reproducible
    assert a.last_truth.nominal_snr_db == 30.0 and a.last_truth.profile == "TDL-C"
    assert np.mean(np.abs(ra[100:2000]) ** 2) > 0.05


@pytest.mark.parametrize("module", [radio.backends.emulated, radio.backends.pluto, radio.backends.sigmf_io])
def test_docstring_examples_run(module):
    assert doctest.testmod(module).failed == 0
