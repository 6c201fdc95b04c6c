import json
import math
from dataclasses import dataclass

from common import TomlConfig
from experiments.run_folder import RunFolder, read_jsonl


@dataclass
class _Cfg(TomlConfig):
    n: int = 3


def test_rows_are_on_disk_before_close_and_carry_provenance(tmp_path):
    run = RunFolder(tmp_path / "r", _Cfg(), role="user", seed=5)
    run.result(frame_id=1, psnr_db=float("nan"), snr_db=math.inf)
    rows = read_jsonl(tmp_path / "r" / "user.results.jsonl")  # read while still open
    assert rows[0]["frame_id"] == 1 and rows[0]["seed"] == 5
    assert rows[0]["psnr_db"] is None and rows[0]["snr_db"] == "inf"
    assert "git_revision" in rows[0]["provenance"]
    assert _Cfg.load(tmp_path / "r" / "config.toml") == _Cfg()
    run.close()


def test_torn_last_line_is_ignored(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text(json.dumps({"a": 1}) + "\n" + '{"a": 2, "b"')
    assert read_jsonl(p) == [{"a": 1}]
