"""The same Pluto backend on a real ADALM-Pluto (run with --pluto-uri ip:192.168.2.1 -m hardware)."""
from __future__ import annotations

import numpy as np
import pytest

from radio.backends import PlutoBackend, PlutoConfig

pytestmark = pytest.mark.hardware


def _burst(n, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / np.sqrt(2)).astype(np.complex64)


def _peak_corr(rx, ref):
    c = np.abs(np.correlate(rx, ref, mode="valid"))
    energy = np.sqrt(np.convolve(np.abs(rx) ** 2, np.ones(ref.size), "valid"))
    return float((c / (np.linalg.norm(ref) * np.maximum(energy, 1e-12))).max())


def test_digital_loopback_on_real_pluto(pluto_uri):
    """BIST loopback needs no cable: the burst must come back almost exactly, with no overflow."""
    x = _burst(2000)
    with PlutoBackend(PlutoConfig(uri=pluto_uri, sample_rate_hz=3.84e6, loopback=1)) as radio:
        radio.transmit(x)
        rx = radio.receive(3 * x.size)
        assert rx.dtype == np.complex64 and rx.size == 3 * x.size
        assert _peak_corr(rx, x) > 0.99
        radio.transmit(_burst(2000, seed=1))      # update of the cyclic buffer, then a flushed capture
        rx2 = radio.receive(3 * x.size)
        assert _peak_corr(rx2, x) < 0.3
        assert radio.counters["rx_overflows"] == 0


def test_manual_gain_takes_effect_on_real_pluto(pluto_uri):
    with PlutoBackend(PlutoConfig(uri=pluto_uri, rx_gain_db=20.0, tx_gain_db=-40.0)) as radio:
        assert radio.gains["rx_gain_db"] == pytest.approx(20.0, abs=1.0)
        radio.set_gains(rx_gain_db=40.0)
        assert radio.gains["rx_gain_db"] == pytest.approx(40.0, abs=1.0)
