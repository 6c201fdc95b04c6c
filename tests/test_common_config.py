from dataclasses import dataclass, field

import pytest

from common import ConfigError, TomlConfig, provenance
from radio import FrameConfig


@dataclass
class _Inner(TomlConfig):
    a: int = 1
    b: tuple[float, float] = (0.0, 1.0)


@dataclass
class _Outer(TomlConfig):
    name: str = "x"
    inner: _Inner = field(default_factory=_Inner)
    maybe: float | None = None


def test_nested_round_trip(tmp_path):
    cfg = _Outer(name="y", inner=_Inner(a=3, b=(2.0, 5.0)), maybe=1.5)
    path = cfg.save(tmp_path / "c.toml")
    assert _Outer.load(path) == cfg


@pytest.mark.parametrize("text, match", [
    ("nme = 'typo'", "unknown key"),
    ("name = 3", "expected str"),
    ("[inner]\na = 'one'", "inner.a"),
    ("[inner]\nb = [1.0]", "expected 2 items"),
    ("name = ", "not valid TOML"),
])
def test_bad_config_is_named(text, match):
    with pytest.raises(ConfigError, match=match):
        _Outer.from_toml_str(text)


def test_frame_config_defaults_round_trip_and_validate(tmp_path):
    cfg = FrameConfig()
    assert FrameConfig.load(cfg.save(tmp_path / "f.toml")) == cfg
    assert cfg.subcarrier_spacing_hz == pytest.approx(30e3)
    with pytest.raises(ConfigError, match="cp_length"):
        FrameConfig(cp_length=0)
    with pytest.raises(ConfigError, match="fft_size"):
        FrameConfig.from_toml_str("fft_size = 100")


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        FrameConfig.load(tmp_path / "nope.toml")


def test_provenance_has_versions():
    p = provenance()
    assert "numpy" in p["versions"] and p["git_revision"]
