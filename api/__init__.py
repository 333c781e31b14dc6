"""The Python API of the user guide: the controller, the sync engine and the backup manager, async on anyio.

The guide's examples run with `from tvcat import ...` in place of
`from tradingview.data_sync_backup import ...`. Every error raised is a
TvcatError, whose `exit_code` is the one the CLI exits with.
"""

from ..engine.backup import BackupType
from ..errors import TvcatError
from .backup_manager import DataBackupManager
from .controller import DataSyncBackupController
from .settings import ConfigInput, Settings, resolve_settings
from .sync_engine import DataSyncEngine, EngineNotRunning
from .sync_task import SyncTask

__all__ = [
    "BackupType",
    "ConfigInput",
    "DataBackupManager",
    "DataSyncBackupController",
    "DataSyncEngine",
    "EngineNotRunning",
    "Settings",
    "SyncTask",
    "TvcatError",
    "resolve_settings",
]
