"""Every study runs from its command on the emulator, resumes, and reports real numbers with the digital
baseline beside JSCC (the smoke grids: the shipped codec, seconds)."""
from __future__ import annotations

import json

import pytest

from experiments.cli import main
from experiments.run_folder import read_jsonl
from experiments.studies import STUDIES
from experiments.studies.base import run_study


def _load(name):
    import importlib
    return importlib.import_module(STUDIES[name])


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_study_smoke_runs_reports_and_resumes(tmp_path, name):
    module = _load(name)
    out = tmp_path / name
    report = run_study(name, module.SMOKE, out, workers=1, progress=False)
    text = report.read_text()
    summary = json.loads((out / "summary.json").read_text())
    rows = read_jsonl(out / "rows.jsonl")
    assert rows and all(r["status"] == "ok" for r in rows)
    assert "digital" in text and list(out.glob("*.png")) and summary["chance_db"] < 25
    run_study(name, module.SMOKE, out, workers=1, progress=False)         # resumes: nothing re-run
    assert len(read_jsonl(out / "rows.jsonl")) == len(rows)


def test_csi_study_numbers_mean_something(tmp_path):
    run_study("csi", _load("csi").SMOKE, tmp_path, workers=1, progress=False)
    s = json.loads((tmp_path / "summary.json").read_text())
    est = s["psnr_db"]["CALA, estimated CSI"]
    assert est["20"] > est["0"] > s["chance_db"]                           # SNR matters; better than nothing
    assert s["psnr_db"]["digital, MCS from estimated CSI"]["20"] > s["chance_db"] + 5
    assert abs(s["snr_estimate_error_db"]["bias"]) < 2.0


def test_study_command_refuses_a_changed_config_in_the_same_folder(tmp_path, capsys):
    out = tmp_path / "csi"
    assert main(["study", "csi", "--smoke", "--out", str(out), "--workers", "1"]) == 0
    other = tmp_path / "other.toml"
    _load("csi").SMOKE.replace(frames=3).save(other)
    assert main(["study", "csi", "--config", str(other), "--out", str(out), "--workers", "1"]) == 2
    assert "another config" in capsys.readouterr().err
