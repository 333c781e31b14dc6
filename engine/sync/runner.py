"""Running sync tasks: one attempt per direction, retries with backoff, and the queue of the event log.

Only transient failures are retried: SourceUnavailable (a connection lost)
and a timeout. Bad data, an unknown series or a bad option fail the task at
once. Every attempt appends `sync.started`, every retry `sync.retried`, and
the end `sync.completed` or `sync.failed`, so the log records every step of a task.
"""

import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import anyio

from ...catalog import events as ev
from ...catalog.repository import Repository
from ...catalog.series import Series
from ...errors import InvalidOption, TvcatError
from ...i18n import N_, _
from ..backup import BackupType, Scope, create_backup
from ..cache import BarCache
from ..config import Config
from ..importers.timeparse import format_utc
from ..restore import PointInTime, choose_backup_at, restore_backup
from ..retention.auto_cleanup import cleanup_before_backup
from ..sources.base import SourceUnavailable, SymbolNotFound
from ..sources.registry import create_source
from .resources import ResourcesExhausted, wait_for_resources
from .tasks import SyncTask, load_task, mark_stale_tasks, queued_task_ids
from .to_cache import sync_series

logger = logging.getLogger(__name__)

# The maximum wait between two attempts, whatever retry_delay_base and the attempt number give.
MAX_RETRY_DELAY_SECONDS = 60.0


class TaskNotQueued(TvcatError):
    template = N_("task {task_id} did not run: it is {status}")


class NoSeriesSelected(InvalidOption):
    template = N_(
        "source {source} lists no series by itself: name them with --symbols and --timeframes"
    )


@dataclass
class TaskOutcome:
    """The result of a finished task: its completion event, or the error that failed it."""

    task: SyncTask
    completed: ev.SyncCompleted | None = None
    error: BaseException | None = None


Report = Callable[[str], None]


async def run_task(
    repository: Repository, cache_path: Path, config: Config, task: SyncTask,
    report: Report | None = None, progress=None, runner: str = "cli",
) -> ev.SyncCompleted:
    """Run one queued task to its end, retrying transient failures, and return its completion event.

    `runner` is recorded in `sync.started`: 'daemon' marks a task that the
    daemon queues again when it was interrupted. Raises the error that failed
    the task after recording `sync.failed`.
    """
    settings = config.sync_config
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        # A task cancelled while it waits must not run; TaskNotQueued ends it with no event.
        check = (lambda: _check_still_queued(repository, task.task_id)) if attempt == 1 else None
        try:
            await wait_for_resources(settings.resource_limits, cache_path.parent, report, check)
        except ResourcesExhausted as error:
            _record_failure(repository, task, str(error), error, started)
            raise
        repository.record(ev.SyncStarted(task_id=task.task_id, attempt=attempt, pid=os.getpid(), runner=runner))
        try:
            with anyio.fail_after(settings.task_timeout_seconds):
                completed = await _run_once(repository, cache_path, config, task, started, progress)
        except (SourceUnavailable, TimeoutError) as error:
            message = str(error) or _("timed out after {seconds:g} s").format(seconds=settings.task_timeout_seconds)
            if attempt > settings.retries:
                _record_failure(repository, task, message, error, started)
                raise
            delay = _retry_delay(settings.retry_delay_base, attempt)
            repository.record(ev.SyncRetried(task_id=task.task_id, attempt=attempt, error=message,
                                             delay_seconds=delay))
            logger.warning("sync retry task_id=%s attempt=%d delay=%.1f error=%s", task.task_id, attempt, delay,
                           message)
            if report is not None:
                report(_("attempt {attempt} failed: {error}; retrying in {delay:.1f} s").format(
                    attempt=attempt, error=message, delay=delay))
            await anyio.sleep(delay)
            continue
        except anyio.get_cancelled_exc_class() as error:
            with anyio.CancelScope(shield=True):
                _record_failure(repository, task, _("stopped before it finished"), error, started,
                                interrupted=True)
            raise
        except BaseException as error:
            _record_failure(repository, task, str(error) or repr(error), error, started,
                            interrupted=isinstance(error, KeyboardInterrupt))
            raise
        repository.record(completed)
        logger.info("sync completed task_id=%s duration=%.2f", task.task_id, completed.duration_seconds)
        return completed


def _check_still_queued(repository: Repository, task_id: str) -> None:
    """Raise TaskNotQueued when the task was cancelled (or taken by another process) while it waited."""
    row = repository.connection.execute("SELECT status FROM sync_tasks WHERE task_id = ?", (task_id,)).fetchone()
    if row is not None and row[0] != "queued":
        raise TaskNotQueued(task_id=task_id, status=row[0])


def _retry_delay(base: float, attempt: int) -> float:
    """Return an exponential backoff with jitter: between half and all of base ** attempt, capped."""
    return random.uniform(0.5, 1.0) * min(base ** attempt, MAX_RETRY_DELAY_SECONDS)


def _record_failure(repository, task, message, error, started, interrupted: bool = False) -> None:
    repository.record(ev.SyncFailed(
        task_id=task.task_id, error=message, error_kind="Interrupted" if interrupted else type(error).__name__,
        duration_seconds=time.monotonic() - started, interrupted=interrupted,
        series=getattr(error, "partial_series", []),
    ))
    logger.error("sync failed task_id=%s error=%s", task.task_id, message)


async def _run_once(repository, cache_path, config, task, started, progress) -> ev.SyncCompleted:
    source, target = task.direction
    if target == "remote":
        return _cache_to_remote(repository, config, task, started)
    if (source, target) == ("cache", "backup"):
        return _cache_to_backup(repository, cache_path, config, task, started)
    if (source, target) == ("backup", "cache"):
        return _backup_to_cache(repository, cache_path, task, started)
    return await _source_to_cache(repository, cache_path, config, task, started, progress)


async def _source_to_cache(repository, cache_path, config, task, started, progress) -> ev.SyncCompleted:
    source = create_source(task.source, config)
    cache = None
    try:
        series_list = await _select_series(source, task)
        cache = BarCache(cache_path)
        skip = frozenset() if task.since is not None else _known_file_hashes(repository, cache.cache_id, task.source)
        results, notes, files, missing = [], [], [], []
        for series in series_list:
            try:
                result, outcome = await sync_series(repository, cache, source, task.source, series, task,
                                                    config.sync_config, skip, progress)
            except SymbolNotFound as error:
                # As freqtrade's download does, a pair the source lacks is reported and the others go on.
                missing.append(error)
                notes.append(str(error))
                continue
            except BaseException as error:
                error.partial_series = results + getattr(error, "partial_series", [])
                raise
            results.append(result)
            notes.extend(outcome.notes)
            files.extend(ev.SourceFileRead(path=path, file_hash=file_hash) for path, file_hash in outcome.files_read)
            if outcome.history_exhausted and not outcome.notes and task.since is not None \
                    and (result.first_ts or 0) > task.since:
                notes.append(_(
                    "{symbol} {timeframe}: the source has no bars before {first}, later than the requested start"
                ).format(symbol=series.symbol, timeframe=series.timeframe, first=_utc(result.first_ts)))
        if missing and not results:
            raise missing[0]
        return ev.SyncCompleted(
            task_id=task.task_id, series=results, duration_seconds=time.monotonic() - started, notes=notes,
            files=[] if task.dry_run else files, cache_id=cache.cache_id,
        )
    finally:
        if cache is not None:
            cache.close()
        await source.aclose()


async def _select_series(source, task: SyncTask) -> list[Series]:
    if task.symbols and task.timeframes:
        return [Series(symbol, timeframe) for symbol in task.symbols for timeframe in task.timeframes]
    listed = await source.list_series()
    selected = [
        series for series in listed
        if (not task.symbols or series.symbol in task.symbols)
        and (not task.timeframes or series.timeframe in task.timeframes)
    ]
    if not selected and listed:
        shown = ", ".join(f"{series.symbol} {series.timeframe}" for series in listed[:10])
        raise InvalidOption(detail=_(
            "source {source} has no series matching --symbols and --timeframes; it has: {series}{more}"
        ).format(source=task.source, series=shown, more=", …" if len(listed) > 10 else ""))
    if not selected:
        raise NoSeriesSelected(source=task.source)
    return selected


def _known_file_hashes(repository: Repository, cache_id: str, source: str) -> frozenset[str]:
    rows = repository.connection.execute(
        "SELECT file_hash FROM source_files WHERE cache_id = ? AND source = ?", (cache_id, source)
    ).fetchall()
    return frozenset(row[0] for row in rows)


def _cache_to_backup(repository, cache_path, config, task, started) -> ev.SyncCompleted:
    if task.dry_run:
        raise InvalidOption(detail=_("a sync to the backup has no dry-run mode; leave out --dry-run"))
    cleanup_before_backup(repository, config)
    cache = BarCache(cache_path, create=False)
    try:
        result = create_backup(repository, cache, BackupType(task.backup_type),
                               Scope.of(task.symbols or [], task.timeframes or []),
                               compression_level=config.backup_config.compression_level)
    finally:
        cache.close()
    return ev.SyncCompleted(
        task_id=task.task_id, series=[], duration_seconds=time.monotonic() - started,
        notes=list(result.notes), backup_id=result.backup_id,
    )


def _cache_to_remote(repository, config, task, started) -> ev.SyncCompleted:
    from ..remote.replicate import replicate_repository
    from ..remote.store import S3ObjectStore

    if task.dry_run:
        raise InvalidOption(detail=_("a sync to the remote has no dry-run mode; leave out --dry-run"))
    result = replicate_repository(repository, S3ObjectStore(config.backup_config.storage_backends.remote))
    return ev.SyncCompleted(
        task_id=task.task_id, series=[], duration_seconds=time.monotonic() - started,
        notes=[_("uploaded {objects} objects and {events} events to the remote").format(
            objects=result.objects_uploaded, events=result.events_uploaded)],
    )


def _backup_to_cache(repository, cache_path, task, started) -> ev.SyncCompleted:
    if task.dry_run:
        raise InvalidOption(detail=_("a sync from the backup has no dry-run mode; leave out --dry-run"))
    scope = Scope.of(task.symbols or [], task.timeframes or [])
    choice = choose_backup_at(repository, PointInTime(datetime.now(timezone.utc), False), scope)
    result = restore_backup(repository, choice, cache_path, scope)
    return ev.SyncCompleted(
        task_id=task.task_id, series=[], duration_seconds=time.monotonic() - started,
        notes=[choice.reason, _("restored {bars} bars of {series} series").format(
            bars=result.bar_count, series=result.series_count)],
        backup_id=result.backup_id,
    )


def _utc(ts: int | None) -> str:
    return format_utc(ts) if ts is not None else "-"


async def run_queued(
    repository: Repository, cache_path: Path, config: Config, task_ids: list[str] | None = None,
    report: Report | None = None, progress=None, runner: str = "cli",
) -> list[TaskOutcome]:
    """Run queued tasks, at most max_concurrent_tasks at once, highest priority first.

    `task_ids` limits the run to those tasks; None runs every queued task.
    A failed task does not stop the others. Returns one outcome per task, in
    the order they were taken.
    """
    mark_stale_tasks(repository)
    ids = [task_id for task_id in queued_task_ids(repository) if task_ids is None or task_id in task_ids]
    outcomes = [TaskOutcome(load_task(repository, task_id)) for task_id in ids]
    limiter = anyio.CapacityLimiter(config.sync_config.max_concurrent_tasks)

    async def run_one(outcome: TaskOutcome) -> None:
        async with limiter:
            try:
                outcome.completed = await run_task(repository, cache_path, config, outcome.task, report, progress,
                                                   runner)
            except Exception as error:
                # run_task recorded sync.failed; the caller reports the error, and the other tasks go on.
                outcome.error = error

    async with anyio.create_task_group() as group:
        for outcome in outcomes:
            group.start_soon(run_one, outcome)
    return outcomes
