"""The repository and cache paths that a configuration selects, with their XDG defaults."""

import os
from collections.abc import Mapping
from pathlib import Path

from .schema import Config


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return $XDG_DATA_HOME/tvcat, or ~/.local/share/tvcat."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tvcat"


def repository_path(config: Config, environ: Mapping[str, str] | None = None) -> Path:
    """Return the repository directory: the local backend's path, else backup_dir, else the XDG default."""
    backup = config.backup_config
    configured = backup.storage_backends.local.path or backup.backup_dir
    if configured:
        return Path(configured).expanduser()
    return default_data_dir(environ) / "repo"


def cache_path(config: Config, environ: Mapping[str, str] | None = None) -> Path:
    """Return the bar cache database: sync_config.cache_path, else the XDG default."""
    if config.sync_config.cache_path:
        return Path(config.sync_config.cache_path).expanduser()
    return default_data_dir(environ) / "cache.db"


def log_file_path(config: Config, environ: Mapping[str, str] | None = None) -> Path:
    """Return the daemon's log file: monitoring_config.log_file, else logs/tvcat.log under the data directory."""
    if config.monitoring_config.log_file:
        return Path(config.monitoring_config.log_file).expanduser()
    return default_data_dir(environ) / "logs" / "tvcat.log"
