"""DataBackupManager: take, restore and describe backups of the bar cache.

Backups and restores run on worker threads, so their SQLite, zstd and
object file work stays off the caller's event loop. They open the repository
and the cache for the call and close them before returning.
"""

import logging
import os
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from ..catalog.repository import BackupRow
from ..engine.backup import BackupResult, BackupType, Scope, create_backup
from ..engine.config import Config
from ..engine.restore import RestoreChoice, RestoreResult, restore_backup
from ..engine.retention.auto_cleanup import cleanup_before_backup
from ..engine.verify import verify_new_backup
from ..errors import ConfirmationRequired, InvalidOption
from ..i18n import _
from .arguments import SymbolsArgument, TimeframesArgument, parse_backup_type, parse_scope
from .settings import ConfigInput, Settings, resolve_settings
from .storage import open_cache, open_repository, repository_exists

logger = logging.getLogger(__name__)


class DataBackupManager:
    """The user guide's backup manager over one repository and one bar cache.

    `config` is anything `resolve_settings` takes; a dict of backup_config
    keys, such as `{'backup_dir': 'data/backups', 'max_backup_files': 50}`,
    changes those keys of the effective configuration. The manager keeps no
    file open, so it needs no closing and may be shared between tasks.
    """

    def __init__(self, config: ConfigInput = None) -> None:
        self.settings = resolve_settings(config, section="backup_config")

    async def create_backup(
        self, backup_type: BackupType | str, symbols: SymbolsArgument = None, timeframes: TimeframesArgument = None
    ) -> str:
        """Take a backup of the cache and return its id, once it is committed and, if configured, verified.

        `backup_type` is a BackupType or its name (`full`, `incremental`,
        `differential`, `snapshot`). None for `symbols` or `timeframes`
        selects every symbol or timeframe of the cache. An incremental or
        differential backup with nothing of the same scope to build on is
        taken as a full backup. Before the backup, backup_config.auto_cleanup
        prunes as `tvcat backup` does.

        Raises InvalidOption for an invalid type or when debug_config.dry_run
        is set, InvalidSymbol or InvalidTimeframe, CacheNotFound,
        NothingToBackUp when the scope selects no bars, and VerifyFailed when
        the committed backup fails verification.
        """
        chosen_type = parse_backup_type(backup_type)
        scope = parse_scope(symbols, timeframes)
        _reject_dry_run(self.settings.config, "create_backup")
        result = await anyio.to_thread.run_sync(_take_backup, self.settings, chosen_type, scope)
        return result.backup_id

    async def restore_backup(
        self,
        backup_id: str,
        target_db: str | os.PathLike[str] | None = None,
        force: bool = True,
        *,
        symbols: SymbolsArgument = None,
        timeframes: TimeframesArgument = None,
    ) -> bool:
        """Restore a backup into the cache, or into `target_db`, and return True once it is in place.

        `backup_id` is an id, a unique prefix of one, or the guide's form
        `backup_<type>_<unix seconds>`. Without `symbols` and `timeframes`,
        the series that the backup selected are replaced and the other
        series of an existing target are kept, so restoring a backup of
        one symbol leaves the other symbols of the cache alone. The database
        is built beside the target and renamed into place, so a failed
        restore leaves the target as it was.

        Failures raise and never return False: BackupNotFound or
        AmbiguousBackupId for the id, RepositoryNotFound, ConfirmationRequired
        when the target exists and `force` is false, InvalidOption when
        debug_config.dry_run is set, and IntegrityError when a stored object
        is missing or damaged.
        """
        _reject_dry_run(self.settings.config, "restore_backup")
        scope = None
        if symbols is not None or timeframes is not None:
            scope = parse_scope(symbols, timeframes)
        target = Path(target_db) if target_db is not None else self.settings.cache_path
        await anyio.to_thread.run_sync(_restore, self.settings, backup_id, target, force, scope)
        return True

    def get_backup_info(self, backup_id: str | None = None) -> dict[str, Any]:
        """Return one committed backup as a dict, or with None every committed backup and their totals.

        One backup has `backup_id`, `guide_id`, `backup_type`, `status`,
        `created_at` (start time) and `committed_at` (ISO 8601, UTC),
        `size_bytes`, `symbols` and `timeframes` (None meaning all), `parent_id`,
        `base_full_id`, `series_count`, `bar_count`, `window_count`,
        `chunks_written`, `duration_seconds` and `manifest_id`. `size_bytes` is
        what the backup added to the repository after deduplication, so a
        backup whose chunks were already stored is small. The listing is
        `{'backup_records': [...], 'total_backups': N, 'total_size_bytes': N}`,
        oldest first, and empty when the repository does not exist yet.

        NOTE: this reads catalog.db on the calling thread, as the guide calls
        it without await. The read takes milliseconds, but from async code
        `await anyio.to_thread.run_sync(manager.get_backup_info)` keeps the
        event loop free even so.

        Raises BackupNotFound, AmbiguousBackupId or RepositoryNotFound for one backup.
        """
        if backup_id is not None:
            with open_repository(self.settings, create=False) as repository:
                return backup_record(repository.find_backup(backup_id))

        records = []
        if repository_exists(self.settings):
            with open_repository(self.settings, create=False) as repository:
                records = [backup_record(row) for row in repository.backups()]
        return {
            "backup_records": records,
            "total_backups": len(records),
            "total_size_bytes": sum(record["size_bytes"] for record in records),
        }


def backup_record(row: BackupRow) -> dict[str, Any]:
    """Return a backup of the catalog as the dict that get_backup_info documents."""
    return {
        "backup_id": row.backup_id,
        "guide_id": row.guide_id,
        "backup_type": row.type,
        "status": row.status,
        "created_at": row.started_at,
        "committed_at": row.committed_at,
        "size_bytes": row.bytes_written or 0,
        "symbols": row.symbols,
        "timeframes": row.timeframes,
        "parent_id": row.parent_id,
        "base_full_id": row.base_full_id,
        "series_count": row.series_count,
        "bar_count": row.bar_count,
        "window_count": row.window_count,
        "chunks_written": row.chunks_written,
        "duration_seconds": row.duration_seconds,
        "manifest_id": row.manifest_id,
    }


def _reject_dry_run(config: Config, operation: str) -> None:
    if config.debug_config.dry_run:
        raise InvalidOption(detail=_(
            "debug_config.dry_run is true, but {operation} has no dry-run mode and would change data: "
            "set dry_run to false to run it"
        ).format(operation=operation))


def _take_backup(settings: Settings, backup_type: BackupType, scope: Scope) -> BackupResult:
    """Clean up if configured, take the backup and verify it, as `tvcat backup` does."""
    config = settings.config
    with open_repository(settings) as repository, open_cache(settings, create=False) as cache:
        cleanup_before_backup(repository, config)
        result = create_backup(repository, cache, backup_type, scope,
                               compression_level=config.backup_config.compression_level)
        verify_new_backup(repository, result.backup_id, config.backup_config.verification)
    for note in result.notes:
        logger.info("backup note backup_id=%s: %s", result.backup_id, note)
    return result


def _restore(settings: Settings, backup_id: str, target: Path, force: bool, scope: Scope | None) -> RestoreResult:
    with open_repository(settings, create=False) as repository:
        backup = repository.find_backup(backup_id)
        if scope is None:
            scope = Scope(backup.symbols, backup.timeframes)
        if target.exists() and not force:
            raise ConfirmationRequired(detail=_(
                "{target} exists; pass force=True to replace it, or target_db to restore elsewhere"
            ).format(target=target))
        choice = RestoreChoice(backup, _("named by the caller"))
        result = restore_backup(repository, choice, target, scope)
    logger.info("restore completed backup_id=%s target=%s bars=%d", result.backup_id, result.target, result.bar_count)
    return result
