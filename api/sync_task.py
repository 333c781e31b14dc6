"""The sync task of the user guide, with its keyword names, and its conversion to the engine's task."""

from dataclasses import dataclass
from datetime import datetime

from ..engine.backup import BackupType
from ..engine.config import Config
from ..engine.sync import tasks as engine_tasks
from .arguments import parse_backup_type, parse_priority, parse_since, parse_symbols, parse_timeframes

DEFAULT_PRIORITY = engine_tasks.PRIORITIES["medium"]


@dataclass
class SyncTask:
    """A sync in the user guide's form: `SyncTask(task_id="", source_type="primary", target_type="cache", ...)`.

    `source_type` is `primary`, `cache`, `backup` or a source spec such as
    `csv:/data/exports`, and `target_type` is `cache`, `backup` or `remote`.
    None for `symbols` or `timeframes` selects every series the source lists.
    An empty `task_id` gets a new id when the task is added to an engine.
    `since` (a datetime, ISO 8601 text or Unix seconds) fetches from that
    time on, and `backup_type` is the type of a cache → backup sync. The
    flags have the meaning of the CLI's `tvcat sync` options.
    """

    task_id: str = ""
    source_type: str = "primary"
    target_type: str = "cache"
    symbols: list[str] | None = None
    timeframes: list[str] | None = None
    priority: int | str = DEFAULT_PRIORITY
    since: datetime | str | int | None = None
    backup_type: BackupType | str = BackupType.INCREMENTAL
    closed_only: bool = False
    dry_run: bool = False
    accept_invalid_bars: bool = False

    def to_engine_task(self, config: Config) -> engine_tasks.SyncTask:
        """Return the engine's task for this one, with every argument checked.

        `primary` becomes the configured source (sync_config.primary), and a
        directory in a source spec becomes absolute, as `tvcat sync` records
        them. The configuration's dry_run and accept_invalid_bars apply
        as well. Raises InvalidSymbol, InvalidTimeframe, InvalidTimestamp or
        InvalidOption for an invalid argument, and leaves this task unchanged.
        """
        source = self.source_type
        if source not in engine_tasks.LOCATIONS or source == "primary":
            source = engine_tasks.resolve_source(source, config)
        task = engine_tasks.SyncTask(
            source=source,
            target=self.target_type,
            symbols=parse_symbols(self.symbols),
            timeframes=parse_timeframes(self.timeframes),
            since=parse_since(self.since),
            priority=parse_priority(self.priority),
            backup_type=parse_backup_type(self.backup_type).value,
            closed_only=self.closed_only,
            dry_run=self.dry_run or config.debug_config.dry_run,
            accept_invalid_bars=self.accept_invalid_bars or config.sync_config.accept_invalid_bars,
        )
        if self.task_id:
            task.task_id = self.task_id
        return task
