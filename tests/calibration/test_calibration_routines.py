"""Every calibration routine recovers impairments injected by the emulator (and the fake Pluto) within the
tolerance its module states."""
from __future__ import annotations

import math

import numpy as np
import pytest
from calibration_helpers import FS, tone_offset_air

import radio
from calibration import dc_iq, estimator_bias, gain_snr, loopback_delay, oscillator
from calibration.probe import frame_burst
from radio.backends import (
    EmulatedBackend,
    FakePluto,
    PlutoBackend,
    PlutoConfig,
    RadioBackend,
)
from radio.device_profile import DeviceProfile, MeasurementConditions
from radio.emulator import Emulator

CFG = radio.FrameConfig()


@pytest.fixture
def emulated():
    """``emulated(snr_db, profile="AWGN", **impairments)`` → an EmulatedBackend at 2.4 GHz, 3.84 MS/s."""
    def make(snr_db: float, profile: str = "AWGN", delay_spread_s: float = 100e-9, seed: int = 3,
             **impairments) -> EmulatedBackend:
        return EmulatedBackend.from_frame_config(radio.FrameConfig(), profile=profile, snr_db=snr_db,
                                                 delay_spread_s=delay_spread_s, seed=seed,
                                                 impairments=radio.Impairments(**impairments))
    return make


@pytest.fixture
def fake_pluto():
    """``fake_pluto(air=None, **PlutoConfig fields)`` → a PlutoBackend over a FakePluto (closed after the test)."""
    opened = []

    def make(air=None, **cfg) -> PlutoBackend:
        backend = PlutoBackend(PlutoConfig(sample_rate_hz=FS, **cfg), device=FakePluto(channel=air, seed=2))
        opened.append(backend)
        return backend
    yield make
    for backend in opened:
        backend.close()


@pytest.mark.parametrize("ppm", [-7.5, 12.3])
def test_oscillator_offset_from_the_emulator(emulated, ppm):
    backend = emulated(20.0, cfo=True, cfo_ppm=ppm, phase_noise=True, dc_offset=True, iq_imbalance=True,
                       start_offset=True)
    result, _ = oscillator.measure_oscillator(backend)
    assert result.ppm == pytest.approx(ppm, abs=oscillator.TOLERANCE_PPM)
    assert len(result.cfo_hz) == 4 and result.ppm_std < oscillator.TOLERANCE_PPM


def test_oscillator_offset_through_the_fake_pluto(fake_pluto):
    air, cfo = tone_offset_air(11e3, 2 * 32768)                 # 12 ppm at 915 MHz
    result, _ = oscillator.measure_oscillator(fake_pluto(air, center_frequency_hz=915e6))
    assert result.ppm == pytest.approx(cfo / 915e6 * 1e6, abs=oscillator.TOLERANCE_PPM)


def test_oscillator_refuses_a_search_window_past_nyquist(emulated):
    with pytest.raises(ValueError, match="lower search_ppm"):
        oscillator.measure_oscillator(emulated(20.0), search_ppm=800.0)


def test_dc_and_iq_imbalance_from_the_emulator(emulated):
    backend = emulated(30.0, cfo=True, cfo_ppm=5.0, dc_offset=True, dc_offset_dbc=-20.0, iq_imbalance=True,
                       iq_amplitude_db=0.5, iq_phase_deg=3.0)
    r, _ = dc_iq.measure_dc_iq(backend)
    assert r.amplitude_db == pytest.approx(0.5, abs=dc_iq.TOLERANCE_AMPLITUDE_DB)
    assert r.phase_deg == pytest.approx(3.0, abs=dc_iq.TOLERANCE_PHASE_DEG)
    # the emulator's dBc refers to the received power before the imbalance; it grows by (1 + g²)/2
    g = 10 ** (0.5 / 20)
    assert r.dc_dbc == pytest.approx(-20.0 - 10 * math.log10((1 + g * g) / 2), abs=dc_iq.TOLERANCE_DC_DB)
    assert max(r.irr_db) < 30 and min(r.irr_corrected_db) >= dc_iq.MIN_CORRECTED_IRR_DB


def test_no_imbalance_reads_as_none(emulated):
    r, _ = dc_iq.measure_dc_iq(emulated(30.0), captures=2)
    assert abs(r.amplitude_db) < dc_iq.TOLERANCE_AMPLITUDE_DB and abs(r.phase_deg) < dc_iq.TOLERANCE_PHASE_DEG
    assert r.dc_dbc < -40


def test_loopback_delay_is_the_emulator_start_offset(emulated):
    cfo_hz = 4e-6 * 2.4e9
    backend = emulated(20.0, start_offset=True, start_offset_max_samples=1500, cfo=True, cfo_ppm=4.0)
    r = loopback_delay.measure_delay(backend, cfo_hz=cfo_hz)
    starts = [truth.start for _, truth in backend.truths]
    assert len(set(starts)) > 1
    np.testing.assert_allclose(r.delay_samples, starts, atol=loopback_delay.TOLERANCE_SAMPLES)


@pytest.mark.parametrize("delay", [0.3, -0.45])
def test_fractional_loopback_delay_through_the_fake_pluto(fake_pluto, delay):
    def air(x):
        f = np.fft.fftfreq(x.size)
        return np.fft.ifft(np.fft.fft(x) * np.exp(-2j * np.pi * f * delay))
    r = loopback_delay.measure_delay(fake_pluto(air))
    assert r.fractional_delay_samples == pytest.approx(delay, abs=loopback_delay.TOLERANCE_SAMPLES)


def test_gain_to_snr_from_the_emulator(emulated):
    r = gain_snr.measure_gain_snr(emulated(5.0), CFG, [-8, -4, 0, 4, 8, 12, 16])
    assert r.offset_db == pytest.approx(5.0, abs=gain_snr.TOLERANCE_OFFSET_DB)
    assert r.slope == pytest.approx(1.0, abs=gain_snr.TOLERANCE_SLOPE)
    assert not r.used[0] and all(r.used[2:])               # -3 dB SNR is outside the linear range
    assert r.update(DeviceProfile()).tx_gain_for_snr(15.0) == pytest.approx(10.0, abs=0.5)


def test_gain_to_snr_through_the_fake_pluto_matches_its_link_budget(fake_pluto):
    """Expected SNR from the fake's model: burst peak → 2^14 DAC codes, gain tx + rx − 26 dB path loss,
    ±2048 RX codes, 2 codes of noise per rail plus the RX rounding (1/12 code² per rail)."""
    backend = fake_pluto(rx_gain_db=30.0)
    r = gain_snr.measure_gain_snr(backend, CFG, [-45, -40, -35, -30, -25, -20])
    burst = frame_burst(CFG, 4, 240, gap=400, rng=np.random.default_rng(0))      # the routine's burst
    peak = max(np.abs(burst.real).max(), np.abs(burst.imag).max())
    amplitude = 2.0**14 / peak / 2.0**15 * 10 ** ((30 - 26) / 20) * 2048          # codes per unit amplitude at 0 dB
    noise = 2 * (2.0**2 + 1 / 12)
    offset = 10 * math.log10(amplitude**2 / noise * CFG.fft_size / CFG.num_used_subcarriers)
    assert r.offset_db == pytest.approx(offset, abs=0.5) and r.slope == pytest.approx(1.0, abs=0.05)
    assert r.rx_gain_db == 30.0


class _NoGains(RadioBackend):
    sample_rate_hz = FS
    center_frequency_hz = 915e6

    def transmit(self, iq):
        pass

    def receive(self, num_samples):
        return np.zeros(num_samples, np.complex64)


def test_gain_to_snr_needs_adjustable_gains():
    with pytest.raises(ValueError, match="_NoGains has no set_gains"):
        gain_snr.measure_gain_snr(_NoGains(), CFG, [0.0])


def test_snr_estimator_bias_against_the_emulator_truth(emulated):
    points = [estimator_bias.measure_estimator_bias(emulated(snr), CFG, label=f"AWGN {snr}") for snr in (10.0, 20.0)]
    for p in points:
        assert len(p.snr_est_db) == 8 and p.missed == 0
        assert abs(p.snr_bias_db) <= estimator_bias.TOLERANCE_SNR_DB
    assert estimator_bias.EstimatorBiasResult(points).snr_bias_db == pytest.approx(
        np.mean([np.mean(np.subtract(p.snr_est_db, p.snr_ref_db)) for p in points]))


def _emulator_plus(extra):
    """An emulated backend whose channel adds ``extra(y, truth)`` to the emulator's output, unreported in its truth."""
    em = Emulator(CFG, profile="AWGN", snr_db=20.0, seed=3)

    def channel(iq):
        y, truth = em(iq)
        return y + extra(y, truth), truth
    return EmulatedBackend(channel, sample_rate_hz=FS)


def test_an_unreported_noise_source_shows_as_snr_bias():
    rng = np.random.default_rng(0)

    def noise(y, truth):
        return np.sqrt(truth.noise_var / 2) * (rng.standard_normal(y.size) + 1j * rng.standard_normal(y.size))
    p = estimator_bias.measure_estimator_bias(_emulator_plus(noise), CFG, label="twice the noise")
    assert p.snr_bias_db == pytest.approx(-10 * math.log10(2), abs=estimator_bias.TOLERANCE_SNR_DB)


def test_an_unreported_echo_shows_as_delay_spread_bias():
    """Echo at 4 samples, −6 dB: RMS delay spread √(p1 p2)/(p1 + p2) · 4/fs = 417 ns (the truth says 0)."""
    def echo(y, truth):
        return 0.5 * np.concatenate([np.zeros(4, np.complex64), y[:-4]])
    p = estimator_bias.measure_estimator_bias(_emulator_plus(echo), CFG, label="echo")
    assert p.ds_bias_s == pytest.approx(0.4 * 4 / FS, abs=estimator_bias.TOLERANCE_DELAY_SPREAD_S)


def test_estimator_bias_over_the_air_needs_a_reference(fake_pluto):
    with pytest.raises(ValueError, match="give reference"):
        estimator_bias.measure_estimator_bias(fake_pluto(), CFG, label="x")
    p = estimator_bias.measure_estimator_bias(fake_pluto(tx_gain_db=-20.0), CFG, label="cable", frames=3,
                                              reference=(20.0, 0.0))
    assert len(p.snr_ref_db) == 3 and set(p.snr_ref_db) == {20.0} and set(p.ds_ref_s) == {0.0}


def test_calibrated_profile_impersonated_by_the_emulator_calibrates_the_same(emulated):
    """Calibrate an emulated device, impersonate its profile, calibrate the impersonation: same numbers."""
    device = emulated(25.0, cfo=True, cfo_ppm=-3.2, iq_imbalance=True, iq_amplitude_db=0.4, iq_phase_deg=-2.0,
                      dc_offset=True, dc_offset_dbc=-28.0)
    profile = DeviceProfile(uri="emulated", conditions=MeasurementConditions(center_frequency_hz=2.4e9))
    for measure in (oscillator.measure_oscillator, dc_iq.measure_dc_iq):
        profile = measure(device, captures=2)[0].update(profile)
    twin = EmulatedBackend(Emulator(CFG, profile.emulator_config(profile="AWGN", snr_db=25.0, seed=9)),
                           sample_rate_hz=FS, center_frequency_hz=profile.conditions.center_frequency_hz)
    again = oscillator.measure_oscillator(twin, captures=2)[0], dc_iq.measure_dc_iq(twin, captures=2)[0]
    assert again[0].ppm == pytest.approx(profile.oscillator_ppm, abs=oscillator.TOLERANCE_PPM)
    assert again[1].phase_deg == pytest.approx(profile.iq_phase_deg, abs=dc_iq.TOLERANCE_PHASE_DEG)
    assert again[1].amplitude_db == pytest.approx(profile.iq_amplitude_db, abs=dc_iq.TOLERANCE_AMPLITUDE_DB)
