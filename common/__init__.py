"""Small utilities shared by every layer: TOML-backed dataclass configs and result provenance.

``radio`` and ``dekag`` never import each other; both may import ``common``, which imports neither.
"""
from common.tomlconfig import ConfigError, TomlConfig
from common.provenance import provenance

__all__ = ["ConfigError", "TomlConfig", "provenance"]
