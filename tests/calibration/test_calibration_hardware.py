"""The calibration routines on a real ADALM-Pluto (run with --pluto-uri ip:192.168.2.1 -m hardware).

Digital (BIST) loopback needs no cable: TX codes come straight back, so the routines must read an ideal
link — no carrier offset (one crystal, no RF), no image, no fractional delay. RF loopback (loopback=2) or a
cable with ≥ 40 dB attenuation exercises the RF chain; run the same routines through `dekag-testbed calibrate
--backend pluto` for a profile.
"""
from __future__ import annotations

import pytest

from calibration import dc_iq, loopback_delay, oscillator
from radio.backends import PlutoBackend, PlutoConfig

pytestmark = pytest.mark.hardware


@pytest.fixture
def bist(pluto_uri):
    with PlutoBackend(PlutoConfig(uri=pluto_uri, sample_rate_hz=3.84e6, loopback=1)) as radio:
        yield radio


def test_oscillator_reads_no_offset_in_digital_loopback(bist):
    result, _ = oscillator.measure_oscillator(bist, captures=2)
    assert abs(result.ppm) < oscillator.TOLERANCE_PPM


def test_dc_iq_reads_no_imbalance_in_digital_loopback(bist):
    result, _ = dc_iq.measure_dc_iq(bist, captures=2)
    assert abs(result.amplitude_db) < dc_iq.TOLERANCE_AMPLITUDE_DB
    assert abs(result.phase_deg) < dc_iq.TOLERANCE_PHASE_DEG
    assert min(result.irr_db) > dc_iq.MIN_CORRECTED_IRR_DB


def test_delay_has_no_fractional_part_in_digital_loopback(bist):
    result = loopback_delay.measure_delay(bist, captures=2)
    assert abs(result.fractional_delay_samples) < loopback_delay.TOLERANCE_SAMPLES
