"""Sync tasks: their directions, ids, and the queue that the event log keeps.

A task is queued by appending `sync.queued`; the `sync_tasks` projection
gives its state. Every later state change is another event, so the queue
survives restarts and anyone can audit it with sqlite3.
"""

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import psutil

from ...catalog import events as ev
from ...catalog.repository import Repository
from ...errors import InvalidOption, NotFound, TvcatError
from ...i18n import N_, _
from ..config import Config
from ..config.schema import RemoteBackend
from ..sources.registry import DIRECTORY_SOURCE_NAMES, source_names

LOCATIONS = ("primary", "cache", "backup", "remote")
DIRECTIONS = (("primary", "cache"), ("cache", "backup"), ("backup", "cache"), ("cache", "remote"))
PRIORITIES = {"high": 1, "medium": 2, "low": 3}


class NoRemoteConfigured(TvcatError):
    template = N_(
        "no remote is configured: set backup_config.storage_backends.remote.enabled to true and name its bucket"
    )


class TaskNotFound(NotFound):
    template = N_("no sync task {task_id!r}: `tvcat list tasks` shows the ids")


@dataclass
class SyncTask:
    """One sync: a source (a location or a source spec such as `csv:/data/exports`), a target and options."""

    source: str
    target: str
    symbols: list[str] | None = None
    timeframes: list[str] | None = None
    since: int | None = None
    priority: int = 2
    backup_type: str = "incremental"
    closed_only: bool = False
    dry_run: bool = False
    accept_invalid_bars: bool = False
    task_id: str = field(default_factory=lambda: new_task_id())

    @property
    def direction(self) -> tuple[str, str]:
        return ("primary" if self.source not in LOCATIONS else self.source, self.target)

    def to_event(self) -> ev.SyncQueued:
        return ev.SyncQueued(
            task_id=self.task_id, source=self.source, target=self.target, symbols=self.symbols,
            timeframes=self.timeframes, since=self.since, priority=self.priority, backup_type=self.backup_type,
            closed_only=self.closed_only, dry_run=self.dry_run, accept_invalid_bars=self.accept_invalid_bars,
        )

    @classmethod
    def from_event(cls, event: ev.SyncQueued) -> "SyncTask":
        return cls(
            source=event.source, target=event.target, symbols=event.symbols, timeframes=event.timeframes,
            since=event.since, priority=event.priority, backup_type=event.backup_type,
            closed_only=event.closed_only, dry_run=event.dry_run, accept_invalid_bars=event.accept_invalid_bars,
            task_id=event.task_id,
        )


def new_task_id(moment: datetime | None = None) -> str:
    """Return a task id that sorts by creation time, such as `20261204T233000.123456Z-3fa9`."""
    moment = moment or datetime.now(timezone.utc)
    return f"{moment.strftime('%Y%m%dT%H%M%S.%fZ')}-{secrets.token_hex(2)}"


def resolve_source(source: str, config: Config) -> str:
    """Return the source spec a task records: `primary` becomes the configured one, directories absolute."""
    if source == "primary":
        source = config.sync_config.primary
    name, separator, argument = source.partition(":")
    if separator and name in DIRECTORY_SOURCE_NAMES and argument:
        return f"{name}:{Path(argument).expanduser().resolve()}"
    return source


def check_direction(task: SyncTask, remote: RemoteBackend | None = None) -> None:
    """Raise InvalidOption unless the task moves bars in one of the four directions from a known source.

    A task to the remote also needs `remote`, the enabled remote backend of the configuration.
    """
    name = task.source.partition(":")[0]
    if task.source not in LOCATIONS and name not in source_names():
        raise InvalidOption(detail=_(
            "unknown source {source!r}: use primary, cache, backup, or a source spec: {names}, "
            "with :DIR after csv, binance and freqtrade"
        ).format(source=task.source, names=", ".join(source_names())))
    if argument := task.source.partition(":")[2]:
        if name in DIRECTORY_SOURCE_NAMES and not Path(argument).is_dir():
            raise InvalidOption(detail=_(
                "the directory {path} of the source {source} does not exist: check the path after {name}:"
            ).format(path=argument, source=task.source, name=name))
    if task.direction not in DIRECTIONS:
        listed = ", ".join(f"{source} → {target}" for source, target in DIRECTIONS)
        raise InvalidOption(detail=_(
            "cannot sync from {source} to {target}: the directions are {directions}, and a source spec "
            "such as csv:DIR or tradingview syncs into the cache"
        ).format(source=task.source, target=task.target, directions=listed))
    if task.target == "remote" and (remote is None or not remote.enabled or not remote.bucket):
        raise NoRemoteConfigured()


def queue_task(repository: Repository, task: SyncTask, remote: RemoteBackend | None = None) -> SyncTask:
    """Append `sync.queued` for the task and return it; a task to the remote needs the `remote` backend."""
    check_direction(task, remote)
    repository.record(task.to_event())
    return task


def load_task(repository: Repository, task_id: str) -> SyncTask:
    """Return the task queued as `task_id`, from its sync.queued event."""
    row = repository.connection.execute(
        "SELECT payload FROM events WHERE kind = 'sync.queued' AND subject = ?", (task_id,)
    ).fetchone()
    if row is None:
        raise TaskNotFound(task_id=task_id)
    return SyncTask.from_event(msgspec.json.decode(row[0], type=ev.SyncQueued))


def queued_task_ids(repository: Repository) -> list[str]:
    """Return the ids of queued tasks, highest priority first, then oldest first."""
    rows = repository.connection.execute(
        "SELECT task_id FROM sync_tasks WHERE status = 'queued' ORDER BY priority, queued_seq"
    ).fetchall()
    return [row[0] for row in rows]


def mark_stale_tasks(repository: Repository) -> list[str]:
    """Record as interrupted every running task whose process is gone, such as one killed by SIGKILL.

    Returns their ids. The daemon queues again the interrupted tasks it ran
    (requeue_interrupted); a foreground `tvcat sync` that was stopped is not
    run again by itself, and a new sync of the same series fetches what it
    missed, because writes are upserts.
    """
    rows = repository.connection.execute(
        "SELECT task_id, pid FROM sync_tasks WHERE status = 'running'"
    ).fetchall()
    stale = [task_id for task_id, pid in rows if pid is None or not _process_alive(pid)]
    for task_id in stale:
        repository.record(ev.SyncFailed(
            task_id=task_id, error=_("the process running the task stopped before it finished"),
            error_kind="Interrupted", duration_seconds=0.0, interrupted=True,
        ))
    return stale


def requeue_interrupted(repository: Repository, reason: str) -> list[str]:
    """Queue again every interrupted task whose last attempt the daemon ran; return their ids."""
    rows = repository.connection.execute(
        "SELECT t.task_id FROM sync_tasks t WHERE t.status = 'interrupted' AND ("
        "  SELECT json_extract(e.payload, '$.runner') FROM events e"
        "  WHERE e.kind = 'sync.started' AND e.subject = t.task_id ORDER BY e.seq DESC LIMIT 1"
        ") = 'daemon' ORDER BY t.priority, t.queued_seq"
    ).fetchall()
    for (task_id,) in rows:
        repository.record(ev.SyncRequeued(task_id=task_id, reason=reason))
    return [task_id for (task_id,) in rows]


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def cancel_tasks(repository: Repository, task_id: str | None, reason: str) -> list[str]:
    """Cancel one queued or interrupted task, or all of them when `task_id` is None; return the ids cancelled.

    An interrupted task would otherwise be queued again by the next daemon.
    Raises TaskNotFound for an unknown id and InvalidOption for a task that
    is running or finished.
    """
    if task_id is None:
        ids = [row[0] for row in repository.connection.execute(
            "SELECT task_id FROM sync_tasks WHERE status IN ('queued', 'interrupted') ORDER BY priority, queued_seq"
        )]
    else:
        row = repository.connection.execute(
            "SELECT status FROM sync_tasks WHERE task_id = ?", (task_id,)
        ).fetchone()
        if row is None:
            raise TaskNotFound(task_id=task_id)
        if row[0] not in ("queued", "interrupted"):
            raise InvalidOption(detail=_(
                "task {task_id} is {status}, and only a queued or interrupted task can be cancelled"
            ).format(task_id=task_id, status=row[0]))
        ids = [task_id]
    for cancelled in ids:
        repository.record(ev.SyncCancelled(task_id=cancelled, reason=reason))
    return ids


def task_rows(repository: Repository) -> list[dict]:
    """Return every task of the sync_tasks projection as a dict, newest first."""
    cursor = repository.connection.execute("SELECT * FROM sync_tasks ORDER BY queued_seq DESC")
    names = [column[0] for column in cursor.description]
    rows = []
    for values in cursor.fetchall():
        row = dict(zip(names, values))
        for key in ("symbols", "timeframes"):
            row[key] = json.loads(row[key]) if row[key] is not None else None
        rows.append(row)
    return rows
