"""The tvcat configuration file: its settings, defaults and loader."""

from .loader import (
    ConfigProblem,
    ConfigUnreadable,
    InvalidConfig,
    default_config,
    format_key_path,
    load_config,
    load_config_text,
)
from .schema import Config

__all__ = [
    "Config",
    "ConfigProblem",
    "ConfigUnreadable",
    "InvalidConfig",
    "default_config",
    "format_key_path",
    "load_config",
    "load_config_text",
]
