"""`dekag-testbed calibrate NAME`: JSON + PNG written, the device profile updated, the emulator impersonating it."""
from __future__ import annotations

import json

import pytest

from experiments.cli import main
from radio.device_profile import find_profile, load_profiles


def test_calibrate_writes_json_png_and_the_profile(tmp_path):
    out, lab = tmp_path / "cal", tmp_path / "lab.toml"
    common = ["--out", str(out), "--profile", str(lab), "--key", "1044abc", "--firmware", "v0.39", "--captures", "2"]
    assert main(["calibrate", "oscillator", "--cfo-ppm", "6.0", *common]) == 0
    assert main(["calibrate", "dc-iq", "--iq-phase-deg", "2.0", "--dc-dbc", "-25", *common]) == 0
    record = json.loads((out / "dc-iq.json").read_text())
    assert record["routine"] == "dc-iq" and record["injected"]["iq_phase_deg"] == 2.0
    assert record["backend"]["device"] == "emulator" and "git_revision" in record["provenance"]
    assert (out / "oscillator.png").stat().st_size > 10_000 and (out / "dc-iq.png").stat().st_size > 10_000
    profile = find_profile(lab, serial="1044abc")
    assert profile.oscillator_ppm == pytest.approx(6.0, abs=0.01) and profile.iq_phase_deg == pytest.approx(2.0, abs=0.2)
    assert profile.firmware == "v0.39" and profile.date and profile.conditions.backend == "emulator"
    # an emulator impersonating the profiled device shows the same offset; the delay routine takes the known CFO
    assert main(["calibrate", "delay", "--from-profile", str(lab), "--start-offset", "200", *common]) == 0
    delays = json.loads((out / "delay.json").read_text())["result"]["delay_samples"]
    assert all(0 <= d <= 200.05 and abs(d - round(d)) < 0.05 for d in delays)
    assert list(load_profiles(lab)) == ["1044abc"]


def test_calibrate_gain_snr_through_the_fake_pluto_prints_the_gain_for_a_target(tmp_path, capsys):
    out = tmp_path / "cal"
    assert main(["calibrate", "gain-snr", "--backend", "fake-pluto", "--tx-gains-db", "-40", "-35", "-30", "-25",
                 "--target-snr-db", "12", "--out", str(out)]) == 0
    record = json.loads((out / "gain-snr.json").read_text())
    assert record["backend"]["device"] == "pluto" and record["result"]["slope"] == pytest.approx(1.0, abs=0.05)
    assert -40 <= record["tx_gain_for_target_db"] <= -25
    assert "TX gain for 12 dB SNR" in capsys.readouterr().out


def test_calibrate_estimator_bias_over_a_grid(tmp_path):
    out = tmp_path / "cal"
    assert main(["calibrate", "estimator-bias", "--channel", "TDL-C", "--snr-db", "10", "20", "--delay-spread-ns",
                 "300", "--frames", "3", "--out", str(out)]) == 0
    result = json.loads((out / "estimator-bias.json").read_text())["result"]
    assert [c["label"] for c in result["conditions"]] == ["TDL-C 10 dB 300 ns", "TDL-C 20 dB 300 ns"]
    assert abs(result["snr_bias_db"]) < 0.5


def test_unknown_routine_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["calibrate", "temperature"])
    assert "invalid choice" in capsys.readouterr().err


def test_estimator_bias_over_the_air_takes_the_users_reference(tmp_path):
    with pytest.raises(SystemExit, match="needs --reference-snr-db"):
        main(["calibrate", "estimator-bias", "--backend", "fake-pluto", "--out", str(tmp_path)])
    assert main(["calibrate", "estimator-bias", "--backend", "fake-pluto", "--tx-gain-db", "-20", "--frames", "2",
                 "--reference-snr-db", "20", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "estimator-bias.json").read_text())["result"]
    assert [c["label"] for c in result["conditions"]] == ["reference 20 dB"] and result["frames"][0]["snr_ref_db"] == [20.0, 20.0]


def test_a_measurement_with_nothing_to_store_leaves_the_profile_alone(tmp_path, capsys):
    lab = tmp_path / "lab.toml"
    assert main(["calibrate", "gain-snr", "--snr-db", "-30", "--tx-gains-db", "0", "3", "--profile", str(lab),
                 "--out", str(tmp_path)]) == 1
    assert "widen --tx-gains-db" in capsys.readouterr().err
    assert not lab.exists() and (tmp_path / "gain-snr.json").exists()
