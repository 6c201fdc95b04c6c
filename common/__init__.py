"""Small utilities shared by every layer: TOML-backed dataclass configs and result provenance.

``radio`` and ``dekag`` never import each other; both may import ``common``, which imports neither.
"""
from common.provenance import provenance
from common.tomlconfig import ConfigError, TomlConfig

__all__ = ["ConfigError", "TomlConfig", "provenance"]
