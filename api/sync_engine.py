"""DataSyncEngine: queue sync tasks in the event log and run them in the background.

Threads and ordering: the engine lives on the caller's event loop, in a task
group entered by `start_sync_engine` and left by `stop_sync_engine`. Each
task waits there for one of `sync_config.max_concurrent_tasks` slots. It
then runs in a worker thread with its own event loop and its own connections
to catalog.db and the cache, so its SQLite writes and file reads stay off
the caller's loop. The worker thread writes the task's outcome into its
TaskRecord, and the caller's loop only reads it, so `get_sync_status` needs
no lock.
"""

import functools
import logging
import sqlite3
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from ..catalog import events as ev
from ..catalog.repository import Repository
from ..engine.sync import tasks as engine_tasks
from ..engine.sync.runner import run_task
from ..errors import InvalidOption, TvcatError
from ..i18n import N_, _
from .settings import ConfigInput, Settings, resolve_settings
from .storage import open_repository, prepare_storage
from .sync_task import SyncTask

logger = logging.getLogger(__name__)

# Recorded in sync.started, so the log distinguishes tasks of the Python API from those of the CLI and the daemon.
RUNNER_NAME = "api"


class EngineNotRunning(TvcatError):
    """A task was added to a sync engine that is not started, or is stopping."""

    template = N_("the sync engine is not running: await start_sync_engine(), or the controller's start(), first")


@dataclass
class TaskRecord:
    """One task that this engine queued: its state and, once it ends, its completion event or error.

    `status` is queued, running, completed, failed or cancelled. `started`
    turns true when the worker thread takes the task.
    """

    task: engine_tasks.SyncTask
    status: str = "queued"
    started: bool = False
    completed: ev.SyncCompleted | None = None
    error: BaseException | None = None

    def as_dict(self) -> dict[str, Any]:
        series = self.completed.series if self.completed is not None else []
        return {
            "task_id": self.task.task_id,
            "status": self.status,
            "source": self.task.source,
            "target": self.task.target,
            "symbols": self.task.symbols,
            "timeframes": self.task.timeframes,
            "priority": self.task.priority,
            "bars_inserted": sum(result.bars_inserted for result in series),
            "bars_updated": sum(result.bars_updated for result in series),
            "backup_id": self.completed.backup_id if self.completed is not None else None,
            "notes": list(self.completed.notes) if self.completed is not None else [],
            "error": None if self.error is None else str(self.error),
        }


class DataSyncEngine:
    """The user guide's sync engine: tasks queued in the event log and run in the background.

    `config` is anything `resolve_settings` takes; a dict of sync_config keys,
    such as `{'sync_interval': 60, 'max_concurrent_tasks': 10}`, changes
    those keys of the effective configuration. Call `start_sync_engine` and
    `stop_sync_engine` from the same task, or use `async with`, because the
    engine's task group belongs to the task that started it.
    """

    def __init__(self, config: ConfigInput = None) -> None:
        self.settings = resolve_settings(config, section="sync_config")
        self._records: dict[str, TaskRecord] = {}
        self._waiting: dict[str, anyio.CancelScope] = {}
        self._exit_stack: AsyncExitStack | None = None
        self._group: TaskGroup | None = None
        self._slots: anyio.CapacityLimiter | None = None
        self._threads: anyio.CapacityLimiter | None = None
        self._last_failure: tuple[str, str] | None = None

    @property
    def is_running(self) -> bool:
        return self._group is not None

    async def __aenter__(self) -> "DataSyncEngine":
        await self.start_sync_engine()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop_sync_engine()

    async def start_sync_engine(self) -> None:
        """Create the repository and the cache if needed, check that both open, and start taking tasks.

        A call while the engine runs does nothing. Raises DatabaseUnavailable
        or InvalidOption when the repository or the cache cannot be used.
        """
        if self._group is not None:
            return
        await anyio.to_thread.run_sync(prepare_storage, self.settings)

        limit = self.settings.config.sync_config.max_concurrent_tasks
        self._slots = anyio.CapacityLimiter(limit)
        # Only tasks holding a slot ask for a thread, so this limiter never makes one wait.
        self._threads = anyio.CapacityLimiter(limit)
        exit_stack = AsyncExitStack()
        self._group = await exit_stack.enter_async_context(anyio.create_task_group())
        self._exit_stack = exit_stack
        logger.info("sync engine started repository=%s cache=%s max_concurrent_tasks=%d",
                    self.settings.repository_path, self.settings.cache_path, limit)

    async def stop_sync_engine(self) -> None:
        """Stop taking tasks, cancel those still queued, and wait for the running ones to end.

        A queued task that has not started is recorded as `sync.cancelled`.
        A running task runs to its end, which `sync_config.task_timeout_seconds`
        bounds, because a sync stopped half-way would only have to be run
        again. A call while the engine is stopped does nothing.
        """
        if self._exit_stack is None:
            return
        exit_stack = self._exit_stack
        self._exit_stack = None
        self._group = None
        for scope in list(self._waiting.values()):
            scope.cancel()
        await exit_stack.aclose()
        logger.info("sync engine stopped")

    async def add_sync_task(self, task: SyncTask) -> str:
        """Queue `task` as `sync.queued`, start it in the background and return its id.

        An empty `task.task_id` gets a new id, which is also written into
        `task`. Raises EngineNotRunning before `start_sync_engine`,
        InvalidSymbol, InvalidTimeframe or InvalidOption for an invalid task
        (with nothing queued), and NoRemoteConfigured for a sync to the remote.
        """
        if self._group is None:
            raise EngineNotRunning()
        engine_task = task.to_engine_task(self.settings.config)
        if engine_task.task_id in self._records:
            raise InvalidOption(detail=_(
                "task id {task_id!r} is already in use: leave task_id empty to get a new id"
            ).format(task_id=engine_task.task_id))
        # Checked before anything is written, as `tvcat sync` does.
        engine_tasks.check_direction(engine_task, self.settings.config.backup_config.storage_backends.remote)
        await anyio.to_thread.run_sync(_queue_task, self.settings, engine_task)

        record = TaskRecord(engine_task)
        self._records[engine_task.task_id] = record
        task.task_id = engine_task.task_id
        if self._group is None:
            # The engine was stopped while the task was being queued.
            await self._cancel(record)
            raise EngineNotRunning()
        self._group.start_soon(self._run, record, name=f"tvcat sync {engine_task.task_id}")
        logger.info("sync task queued task_id=%s source=%s target=%s", engine_task.task_id, engine_task.source,
                    engine_task.target)
        return engine_task.task_id

    def get_sync_status(self) -> dict[str, Any]:
        """Return the counts of this engine's tasks by state, totals, the last error and every task.

        `active_tasks` counts the queued and the running tasks. Only tasks
        added to this engine object are counted; `tvcat list tasks` shows
        every task of the repository.
        """
        counts = Counter(record.status for record in self._records.values())
        tasks = [record.as_dict() for record in self._records.values()]
        last_task_id, last_error = self._last_failure or (None, None)
        return {
            "is_running": self.is_running,
            "active_tasks": counts["queued"] + counts["running"],
            "queued_tasks": counts["queued"],
            "running_tasks": counts["running"],
            "completed_tasks": counts["completed"],
            "failed_tasks": counts["failed"],
            "cancelled_tasks": counts["cancelled"],
            "max_concurrent_tasks": self.settings.config.sync_config.max_concurrent_tasks,
            "statistics": {
                "total_tasks": len(tasks),
                "bars_inserted": sum(task["bars_inserted"] for task in tasks),
                "bars_updated": sum(task["bars_updated"] for task in tasks),
                "last_error": last_error,
                "last_error_task_id": last_task_id,
            },
            "tasks": tasks,
        }

    def get_task_status(self, task_id: str) -> dict[str, Any]:
        """Return the state of one task of this engine; raise TaskNotFound for an id it did not queue."""
        record = self._records.get(task_id)
        if record is None:
            raise engine_tasks.TaskNotFound(task_id=task_id)
        return record.as_dict()

    async def _run(self, record: TaskRecord) -> None:
        """Wait for a slot, then run the task in a worker thread; record it as cancelled if it never starts."""
        task_id = record.task.task_id
        waiting = anyio.CancelScope()
        self._waiting[task_id] = waiting
        try:
            with waiting:
                async with self._slots:
                    # From here on stop_sync_engine lets the task finish.
                    del self._waiting[task_id]
                    record.status = "running"
                    await anyio.to_thread.run_sync(self._execute, record, limiter=self._threads)
        finally:
            self._waiting.pop(task_id, None)
            if not record.started:
                with anyio.CancelScope(shield=True):
                    await self._cancel(record)

    def _execute(self, record: TaskRecord) -> None:
        """Run one task to its end on this worker thread and store its outcome in `record`."""
        record.started = True
        task = record.task
        try:
            repository = Repository(self.settings.repository_path)
        except Exception as error:
            logger.error("sync task failed task_id=%s error=%s", task.task_id, error)
            self._fail(record, error)
            return

        def report(message: str) -> None:
            logger.info("sync task task_id=%s: %s", task.task_id, message)

        try:
            record.completed = anyio.run(functools.partial(
                run_task, repository, self.settings.cache_path, self.settings.config, task, report,
                runner=RUNNER_NAME,
            ))
        except Exception as error:
            # run_task has recorded sync.failed and logged the error.
            self._fail(record, error)
        else:
            record.status = "completed"
        finally:
            repository.close()

    def _fail(self, record: TaskRecord, error: Exception) -> None:
        record.error = error
        record.status = "failed"
        self._last_failure = (record.task.task_id, str(error))

    async def _cancel(self, record: TaskRecord) -> None:
        """Record a task that never started as `sync.cancelled`."""
        reason = _("the sync engine stopped before the task started")
        try:
            await anyio.to_thread.run_sync(_cancel_queued_task, self.settings, record.task.task_id, reason)
        except (TvcatError, sqlite3.Error, OSError) as error:
            # Another process, such as the daemon, took the task meanwhile, or the catalog cannot be written.
            logger.warning("sync task not cancelled task_id=%s error=%s", record.task.task_id, error)
        record.status = "cancelled"
        logger.info("sync task cancelled task_id=%s", record.task.task_id)


def _queue_task(settings: Settings, task: engine_tasks.SyncTask) -> None:
    """Append `sync.queued` for `task`; raise InvalidOption when its id was queued before."""
    with open_repository(settings) as repository:
        try:
            engine_tasks.load_task(repository, task.task_id)
        except engine_tasks.TaskNotFound:
            engine_tasks.queue_task(repository, task, settings.config.backup_config.storage_backends.remote)
            return
    raise InvalidOption(detail=_(
        "task id {task_id!r} is already in use: leave task_id empty to get a new id"
    ).format(task_id=task.task_id))


def _cancel_queued_task(settings: Settings, task_id: str, reason: str) -> None:
    with open_repository(settings) as repository:
        engine_tasks.cancel_tasks(repository, task_id, reason)
