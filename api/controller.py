"""DataSyncBackupController: the user guide's entry point, one sync engine and one backup manager on one configuration."""

import inspect
from typing import Any

from ..engine.backup import BackupType
from ..engine.status import collect_status
from ..errors import InvalidOption
from ..i18n import _
from .arguments import SymbolsArgument, TimeframesArgument
from .backup_manager import DataBackupManager
from .settings import ConfigInput, resolve_settings
from .storage import open_repository, repository_exists
from .sync_engine import DataSyncEngine
from .sync_task import SyncTask

# The keyword options that sync_data passes on to SyncTask.
SYNC_OPTIONS = tuple(
    name for name in inspect.signature(SyncTask).parameters
    if name not in ("task_id", "source_type", "target_type", "symbols", "timeframes")
)
BYTES_PER_MB = 1024 * 1024


class DataSyncBackupController:
    """The sync engine and the backup manager of one configuration, started and stopped together.

    With `config` None, the effective configuration is read as the CLI reads
    it. A dict is a whole configuration in the YAML file's structure, and a
    path names a file; `resolve_settings` lists every form. Call `start` and
    `stop` in the same task, or use `async with`, because the sync engine's
    task group belongs to the task that started it.
    """

    def __init__(self, config: ConfigInput = None) -> None:
        self.settings = resolve_settings(config)
        self.sync_engine = DataSyncEngine(self.settings)
        self.backup_manager = DataBackupManager(self.settings)

    async def __aenter__(self) -> "DataSyncBackupController":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Create the repository and the cache if needed, check that both open, and start the sync engine.

        Raises DatabaseUnavailable or InvalidOption when either cannot be used.
        """
        await self.sync_engine.start_sync_engine()

    async def stop(self) -> None:
        """Stop the sync engine: queued tasks are cancelled and running ones finish, as stop_sync_engine documents."""
        await self.sync_engine.stop_sync_engine()

    async def create_manual_backup(
        self, backup_type: BackupType | str, symbols: SymbolsArgument = None, timeframes: TimeframesArgument = None
    ) -> str:
        """Take a backup and return its id; see DataBackupManager.create_backup for the arguments and errors."""
        return await self.backup_manager.create_backup(backup_type, symbols, timeframes)

    async def sync_data(
        self,
        source_type: str,
        target_type: str,
        symbols: SymbolsArgument = None,
        timeframes: TimeframesArgument = None,
        **options: Any,
    ) -> str:
        """Queue a sync, start it in the background and return its task id at once.

        `options` are SyncTask's other fields: priority, since, backup_type,
        closed_only, dry_run and accept_invalid_bars. `get_system_status`
        shows how the task goes. Raises EngineNotRunning before `start`,
        InvalidOption for an unknown option or an invalid direction, and
        InvalidSymbol or InvalidTimeframe.
        """
        unknown = sorted(set(options) - set(SYNC_OPTIONS))
        if unknown:
            raise InvalidOption(detail=_("unknown sync option {names}: use {valid}").format(
                names=", ".join(unknown), valid=", ".join(SYNC_OPTIONS)))
        task = SyncTask(source_type=source_type, target_type=target_type, symbols=symbols, timeframes=timeframes,
                        **options)
        return await self.sync_engine.add_sync_task(task)

    def get_system_status(self) -> dict[str, Any]:
        """Return the sync engine's tasks, the backups by type and size, the repository and the cache.

        `sync_engine` is what DataSyncEngine.get_sync_status returns.
        `backup_manager` has `total_backups`, `total_size_bytes` and
        `total_size_mb` (bytes the committed backups added, in MiB) and
        `backups_by_type`. `repository` has its path, its event count and
        the last failure of any process (`last_failure`), and `cache` the
        cache's path, size, series and bars.

        NOTE: this reads catalog.db and the cache on the calling thread, as
        the guide calls it without await; each read takes milliseconds.
        """
        repository_status = None
        if repository_exists(self.settings):
            with open_repository(self.settings, create=False) as repository:
                status = collect_status(repository, self.settings.cache_path)
            repository_status = status["repository"]
        else:
            status = collect_status(None, self.settings.cache_path)

        by_type = repository_status["backups_by_type"] if repository_status else {}
        total_bytes = repository_status["bytes_stored"] if repository_status else 0
        return {
            "is_running": self.sync_engine.is_running,
            "sync_engine": self.sync_engine.get_sync_status(),
            "backup_manager": {
                "total_backups": sum(info["count"] for info in by_type.values()),
                "total_size_bytes": total_bytes,
                "total_size_mb": total_bytes / BYTES_PER_MB,
                "backups_by_type": by_type,
            },
            "repository": repository_status or {"path": str(self.settings.repository_path), "exists": False},
            "cache": status["cache"],
        }
