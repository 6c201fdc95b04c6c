"""Per-device profiles: the TOML file keyed by serial or URI, the corrections, and the Pluto backend applying them."""
from __future__ import annotations

import math

import numpy as np
import pytest

from common.tomlconfig import ConfigError
from radio.backends import FakePluto, PlutoBackend, PlutoConfig
from radio.device_profile import (
    DeviceProfile,
    MeasurementConditions,
    ProfileNotFound,
    correct_dc_iq,
    derotate,
    find_profile,
    load_profiles,
    save_profile,
)
from radio.impairments import iq_imbalance

FS = 3.84e6


def test_profiles_are_keyed_by_serial_then_uri_and_other_devices_are_kept(tmp_path):
    path = tmp_path / "lab.toml"
    a = DeviceProfile(serial="1044abc", uri="usb:1.2.5", date="2026-11-30", firmware="v0.39", oscillator_ppm=3.5,
                      conditions=MeasurementConditions(center_frequency_hz=915e6, link="cable + 30 dB"))
    assert save_profile(path, a) == "1044abc"
    save_profile(path, DeviceProfile(uri="ip:192.168.2.2", iq_phase_deg=1.5))
    save_profile(path, DeviceProfile(serial="1044abc", oscillator_ppm=-2.0, date="2026-12-01"))  # replaces a
    assert sorted(load_profiles(path)) == ["1044abc", "ip:192.168.2.2"]
    assert find_profile(path, serial="1044abc", uri="ip:192.168.2.2").oscillator_ppm == -2.0   # serial wins
    assert find_profile(path, serial="unknown", uri="ip:192.168.2.2").iq_phase_deg == 1.5
    with pytest.raises(ProfileNotFound, match=r"it holds \['1044abc', 'ip:192.168.2.2'\]"):
        find_profile(path, serial="nope", uri="ip:10.0.0.1")
    reloaded = load_profiles(path)["1044abc"]
    assert reloaded.gain_snr_offset_db is None and reloaded.dc_offset_dbc is None and reloaded == load_profiles(path)["1044abc"]
    assert math.isnan(reloaded.expected_snr_db(-30.0))


def test_bad_profile_file_is_a_clear_error(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text('["1044abc"]\noscilator_ppm = 3.0\n')
    with pytest.raises(ConfigError, match=r"\[1044abc\].*unknown key.*oscilator_ppm"):
        load_profiles(path)
    with pytest.raises(ConfigError, match="needs a key"):
        save_profile(path, DeviceProfile())


def test_gain_map_predicts_and_inverts_only_at_its_rx_gain():
    p = DeviceProfile(gain_snr_offset_db=40.0, gain_snr_slope=1.0, gain_snr_tx_range_db=(-40.0, -10.0),
                      conditions=MeasurementConditions(rx_gain_db=30.0))
    assert p.expected_snr_db(-25.0, 30.0) == 15.0
    assert p.tx_gain_for_snr(15.0) == -25.0 and p.tx_gain_for_snr(60.0) == -10.0   # clipped to the fitted range
    with pytest.raises(ConfigError, match="recalibrate at that RX gain"):
        p.expected_snr_db(-25.0, 50.0)
    with pytest.raises(ConfigError, match="calibrate gain-snr"):
        DeviceProfile().tx_gain_for_snr(10.0)


def test_dc_iq_correction_inverts_the_emulator_model():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(1000) + 1j * rng.standard_normal(1000)).astype(np.complex64)
    y, _ = iq_imbalance(x.copy(), 0.7, -4.0)                 # the emulator applies it in place
    y = y + (0.03 - 0.02j)
    np.testing.assert_allclose(correct_dc_iq(y, 0.03 - 0.02j, 0.7, -4.0), x, atol=1e-5)
    np.testing.assert_allclose(derotate(x * np.exp(2j * np.pi * 1e3 / FS * np.arange(1000)), 1e3, FS), x, atol=1e-4)


def test_profile_impersonation_switches_on_what_was_measured():
    p = DeviceProfile(oscillator_ppm=4.0, iq_amplitude_db=0.3, iq_phase_deg=1.0, dc_offset_dbc=-30.0,
                      gain_snr_offset_db=40.0, conditions=MeasurementConditions(center_frequency_hz=915e6))
    cfg = p.emulator_config(tx_gain_db=-25.0, profile="AWGN", seed=3)
    imp = cfg.impairments
    assert (imp.cfo, imp.cfo_ppm, imp.iq_imbalance, imp.dc_offset, imp.dc_offset_dbc) == (True, 4.0, True, True, -30.0)
    assert not imp.phase_noise and cfg.snr_db == 15.0 and cfg.carrier_frequency_hz == 915e6 and cfg.seed == 3
    assert not DeviceProfile().impairments().dc_offset and not DeviceProfile().impairments().cfo


def _tone_image_and_frequency(iq: np.ndarray, f0: float) -> tuple[float, float]:
    """Image rejection (dB) of a tone at f0 and its frequency (Hz), from the FFT."""
    spec = np.abs(np.fft.fft(iq)) ** 2
    freqs = np.fft.fftfreq(iq.size, 1 / FS)
    peak = int(np.argmax(spec))
    image = int(np.argmin(np.abs(freqs + freqs[peak])))
    return 10 * np.log10(spec[peak] / spec[image]), float(freqs[peak])


@pytest.mark.parametrize("cfo_correction", ["digital", "lo"])
def test_pluto_backend_applies_its_profile(tmp_path, cfo_correction):
    """The fake's air adds +20 kHz of CFO and a 1 dB / 5° IQ imbalance; the profile removes both.
    (The fake applies its channel to the burst once and replays the result: whole cycles per burst.)"""
    fc, n = 915e6, 8192
    cfo_hz = 43 * FS / n
    profile = DeviceProfile(serial="1044abc", oscillator_ppm=cfo_hz / fc * 1e6, iq_amplitude_db=1.0, iq_phase_deg=5.0,
                            gain_snr_offset_db=45.0, conditions=MeasurementConditions(rx_gain_db=30.0))
    save_profile(tmp_path / "lab.toml", profile)
    f0 = 60 * FS / n                                    # whole cycles per burst: cyclic replay stays a tone
    burst = np.exp(2j * np.pi * f0 / FS * np.arange(n)).astype(np.complex64)

    def air(x, lo_hz):   # CFO as seen with the RX LO at lo_hz, then RX IQ imbalance
        t = np.arange(x.size) / FS
        return iq_imbalance((x * np.exp(2j * np.pi * (fc + cfo_hz - lo_hz) * t)).astype(np.complex64), 1.0, 5.0)[0]

    results = {}
    for name, cfg in (("raw", PlutoConfig(center_frequency_hz=fc, sample_rate_hz=FS)),
                      ("profiled", PlutoConfig(center_frequency_hz=fc, sample_rate_hz=FS, profile=str(tmp_path / "lab.toml"),
                                               profile_key="1044abc", cfo_correction=cfo_correction))):
        device = FakePluto(noise_rms_codes=0.5, seed=1)
        device.channel = lambda x, d=device: air(x, d.rx_lo)
        with PlutoBackend(cfg, device=device) as radio:
            radio.transmit(burst)
            results[name] = _tone_image_and_frequency(radio.receive(n), f0)
            if name == "profiled":
                assert radio.expected_snr_db == -30 + 45.0
                assert radio.describe()["calibration_profile"]["serial"] == "1044abc"
                assert device.rx_lo == (round(fc + cfo_hz) if cfo_correction == "lo" else fc)
    (irr_raw, f_raw), (irr_fixed, f_fixed) = results["raw"], results["profiled"]
    assert irr_raw < 25 and irr_fixed > 45
    assert abs(f_raw - (f0 + cfo_hz)) < FS / n and abs(f_fixed - f0) < FS / n


def test_pluto_backend_names_a_missing_profile(tmp_path):
    with pytest.raises(ProfileNotFound, match="run `dekag-testbed calibrate`"):
        PlutoBackend(PlutoConfig(profile=str(tmp_path / "none.toml")), device=FakePluto())
    with pytest.raises(ConfigError, match="cfo_correction"):
        PlutoConfig(cfo_correction="both")


def test_docstring_examples_run():
    import doctest

    import radio.device_profile
    assert doctest.testmod(radio.device_profile).failed == 0
