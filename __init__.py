"""tvcat: keep OHLCV bar data safe with an event-sourced backup catalog on SQLite."""

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Names importable from `tvcat` and the module that defines each. They are
# imported on first use, so `import tvcat`, and with it the CLI, stays fast.
_LAZY_NAMES = {
    "DataSyncBackupController": ".api",
    "DataSyncEngine": ".api",
    "DataBackupManager": ".api",
    "SyncTask": ".api",
    "BackupType": ".engine.backup",
    "TvcatError": ".errors",
}

__all__ = ["__version__", *_LAZY_NAMES]

if TYPE_CHECKING:
    from .api import DataBackupManager, DataSyncBackupController, DataSyncEngine, SyncTask
    from .engine.backup import BackupType
    from .errors import TvcatError


def __getattr__(name: str) -> Any:
    """Import a name of _LAZY_NAMES from its module on first access and keep it in this module."""
    module_name = _LAZY_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_NAMES})
