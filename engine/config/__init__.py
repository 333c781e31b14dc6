"""The tvcat configuration: its settings, defaults, sources and loader."""

from .loader import (
    ConfigProblem,
    ConfigUnreadable,
    InvalidConfig,
    LoadedConfig,
    default_config,
    format_key_path,
    load_config,
    load_config_text,
    load_effective_config,
)
from .schema import Config
from .sources import ValueSource

__all__ = [
    "Config",
    "ConfigProblem",
    "ConfigUnreadable",
    "InvalidConfig",
    "LoadedConfig",
    "ValueSource",
    "default_config",
    "format_key_path",
    "load_config",
    "load_config_text",
    "load_effective_config",
]
