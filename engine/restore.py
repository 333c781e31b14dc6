"""Restores: rebuild a bar cache from a backup, beside the destination, then rename it into place."""

import logging
import os
import re
import secrets
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pyarrow as pa

from ..catalog import events as ev
from ..catalog import schema
from ..catalog.bars import BarColumns
from ..catalog.manifests import State, WindowEntry, read_window
from ..catalog.objects import fsync_path
from ..catalog.repository import BackupRow, Repository
from ..catalog.series import Series, window_span
from ..errors import InvalidOption, InvalidTimestamp, NoBackupAtTime, NotFound
from ..i18n import _
from .backup import Scope
from .retention.locks import repository_lock

logger = logging.getLogger(__name__)

DECODE_THREADS = 2
# Chunks decoded ahead of the writer; bounds memory to a few MB.
MAX_CHUNKS_AHEAD = 32

_UNIX_SECONDS = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class PointInTime:
    """A time given by the user, in UTC, and whether it carried no offset."""

    moment: datetime
    assumed_utc: bool

    @property
    def text(self) -> str:
        return ev.format_time(self.moment)


@dataclass(frozen=True)
class RestoreChoice:
    """The backup a restore uses and why it was chosen."""

    backup: BackupRow
    reason: str


@dataclass(frozen=True)
class RestoreResult:
    backup_id: str
    target: Path
    series_count: int
    bar_count: int


def parse_point_in_time(text: str) -> PointInTime:
    """Parse ISO 8601 (any offset, `Z`, fractional seconds) or Unix seconds into UTC.

    A time without an offset is read as UTC, and `assumed_utc` is then True.
    Raises InvalidTimestamp with an example of the accepted forms.
    """
    value = text.strip()
    try:
        if _UNIX_SECONDS.match(value):
            return PointInTime(datetime.fromtimestamp(float(value), timezone.utc), False)
        moment = datetime.fromisoformat(value.replace("z", "Z"))
        if moment.tzinfo is None:
            return PointInTime(moment.replace(tzinfo=timezone.utc), True)
        return PointInTime(moment.astimezone(timezone.utc), False)
    except (ValueError, OverflowError, OSError) as error:
        # Also times that parse but fall outside the years 1 to 9999 in UTC.
        raise InvalidTimestamp(value=text) from error


def choose_backup_at(repository: Repository, point: PointInTime, scope: Scope) -> RestoreChoice:
    """Pick the latest committed backup at or before `point` that covers `scope`.

    Raises NoBackupAtTime for a time before the first backup or in the
    future, naming the nearest backup.
    """
    candidates = [backup for backup in repository.backups() if _covers(backup, scope)]
    if not candidates:
        raise NotFound(detail=_("the repository has no committed backup to restore"))

    now = ev.format_time(datetime.now(timezone.utc))
    if point.text > now:
        latest = candidates[-1]
        raise NoBackupAtTime(detail=_(
            "{at} is in the future; the latest backup is {backup_id}, committed at {committed_at}"
        ).format(at=point.text, backup_id=latest.backup_id, committed_at=latest.committed_at))

    existing = [backup for backup in candidates if backup.committed_at <= point.text]
    chosen = max(existing, key=lambda backup: backup.committed_at) if existing else None
    if chosen is None:
        first = min(candidates, key=lambda backup: backup.committed_at)
        raise NoBackupAtTime(detail=_(
            "no backup existed at {at}; the first backup is {backup_id}, committed at {committed_at}"
        ).format(at=point.text, backup_id=first.backup_id, committed_at=first.committed_at))

    reason = _("latest backup committed at or before {at}: committed at {committed_at}").format(
        at=point.text, committed_at=chosen.committed_at
    )
    skipped = [
        backup.backup_id for backup in repository.backups()
        if chosen.committed_at < backup.committed_at <= point.text and not _covers(backup, scope)
    ]
    if skipped:
        reason += _("; skipped newer backups that cover fewer series than requested: {backups} "
                    "(restore them with --symbols/--timeframes)").format(backups=", ".join(skipped))
    return RestoreChoice(chosen, reason)


def _covers(backup: BackupRow, scope: Scope) -> bool:
    """Tell whether `backup` contains every series that `scope` requests.

    A backup limited to some symbols or timeframes covers only requests
    limited to a subset of them, never a request for everything.
    """
    for limited, requested in ((backup.symbols, scope.symbols), (backup.timeframes, scope.timeframes)):
        if limited is None:
            continue
        if requested is None or not set(requested) <= set(limited):
            return False
    return True


def restore_backup(
    repository: Repository,
    choice: RestoreChoice,
    target: Path,
    scope: Scope = Scope(),
    requested_at: str | None = None,
) -> RestoreResult:
    """Write the state of the chosen backup to `target` and record the restore.

    Every chunk is fetched and verified against its id before it is written.
    The new database is built beside `target` and renamed over it only when
    complete, so a failed restore leaves `target` as it was.
    """
    backup = choice.backup
    target = Path(target).resolve()
    if target.is_relative_to(repository.path.resolve()):
        raise InvalidOption(detail=_(
            "{target} is inside the repository {repository}; restore to a path outside it"
        ).format(target=target, repository=repository.path))
    if target.is_dir():
        raise InvalidOption(detail=_("{target} is a directory; give a database file path").format(target=target))
    try:
        # Shared like a backup's, so a prune cannot delete objects while this restore reads them.
        with repository_lock(repository, "restore", exclusive=False, wait_seconds=3600.0):
            _check_not_forgotten(repository, backup.backup_id)
            state = _select(repository.resolve_state(backup), scope)
            bar_count = _build_state(repository, state, target, scope, backup.backup_id)
    except BaseException as error:
        repository.record(ev.RestoreFailed(
            target=str(target), backup_id=backup.backup_id, requested_at=requested_at, error=str(error) or repr(error)
        ))
        raise

    repository.record(ev.RestoreCompleted(
        backup_id=backup.backup_id, target=str(target), requested_at=requested_at,
        reason=choice.reason, series_count=len(state), bar_count=bar_count,
    ))
    return RestoreResult(backup.backup_id, target, len(state), bar_count)


def _build_state(repository: Repository, state: State, target: Path, scope: Scope, backup_id: str) -> int:
    if not state:
        raise NotFound(detail=_("backup {backup_id} contains no series for {scope}").format(
            backup_id=backup_id, scope=scope.describe()))
    return _build_and_replace(repository, state, target, scope)


def _check_not_forgotten(repository: Repository, backup_id: str) -> None:
    """Raise NotFound when a prune forgot the backup after it was chosen."""
    if repository.backup(backup_id).status != "committed":
        raise NotFound(detail=_(
            "backup {backup_id} was forgotten by a prune while this restore waited; choose another backup"
        ).format(backup_id=backup_id))


def read_state_bars(repository: Repository, state: State, series: Series) -> Iterator[BarColumns]:
    """Yield the verified bars of one series of a state, window by window."""
    windows = state.get(series, {})
    for start in sorted(windows):
        yield read_window(repository.store, windows[start])


def _select(state: State, scope: Scope) -> State:
    return {series: windows for series, windows in state.items() if scope.contains(series)}


def _build_and_replace(repository: Repository, state: State, target: Path, scope: Scope) -> int:
    """Build the restored database beside `target`, then rename it over `target`.

    A restore limited by symbols or timeframes into an existing database
    replaces only the series in that scope and keeps the others.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.restore-{secrets.token_hex(4)}.tmp"
    limited = scope.symbols is not None or scope.timeframes is not None
    try:
        if limited and target.exists():
            _copy_outside_scope(target, temporary, scope)
        else:
            _create_empty(temporary)
        bar_count = _load(repository, state, temporary)
        _replace(temporary, target)
    finally:
        for leftover in (temporary, Path(f"{temporary}-wal"), Path(f"{temporary}-shm"), Path(f"{temporary}-journal")):
            leftover.unlink(missing_ok=True)
    return bar_count


def _create_empty(path: Path) -> None:
    connection = schema.connect(path, "cache")
    connection.execute("INSERT INTO cache_meta (id, cache_id, change_seq) VALUES (1, ?, 1)", (secrets.token_hex(8),))
    connection.close()


def _check_is_cache(path: Path) -> None:
    """Raise sqlite3.DatabaseError unless the database at `path` has the cache's bars and cache_meta tables."""
    connection = sqlite3.connect(path)
    try:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        connection.close()
    if not {"bars", "cache_meta"} <= tables:
        raise sqlite3.DatabaseError(_("it has no bars and cache_meta tables"))


def _copy_outside_scope(target: Path, path: Path, scope: Scope) -> None:
    """Copy the cache at `target` to `path` without the series in `scope`."""
    try:
        source = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        copy = sqlite3.connect(path)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        _check_is_cache(path)
        connection = schema.connect(path, "cache")
    except sqlite3.DatabaseError as error:
        raise InvalidOption(detail=_(
            "{target} is not a tvcat cache ({reason}); restore into another --target-db"
        ).format(target=target, reason=error)) from error

    conditions, parameters = [], []
    for column, values in (("symbol", scope.symbols), ("timeframe", scope.timeframes)):
        if values is not None:
            conditions.append(f"{column} IN ({', '.join('?' * len(values))})")
            parameters.extend(values)
    connection.execute("BEGIN IMMEDIATE")
    connection.execute(f"DELETE FROM bars WHERE {' AND '.join(conditions)}", parameters)
    connection.execute("UPDATE cache_meta SET cache_id = ? WHERE id = 1", (secrets.token_hex(8),))
    connection.execute("COMMIT")
    connection.close()


def _load(repository: Repository, state: State, path: Path) -> int:
    """Write the bars of `state` into the prepared cache at `path`; return the bars written."""
    connection = schema.connect(path, "cache")
    for timeframe in sorted({series.timeframe for series in state}):
        connection.execute(
            "INSERT OR REPLACE INTO window_spans (timeframe, span) VALUES (?, ?)", (timeframe, window_span(timeframe))
        )
    # A restored cache has a new cache_id, so the next incremental compares
    # every window; tracking the bulk load itself would only slow it down.
    connection.execute("DROP TRIGGER bars_track_insert")
    connection.execute("PRAGMA journal_mode = DELETE")
    connection.close()

    # Imported here, because the driver imports pandas when it is installed,
    # which would slow every command that only reads restore's helpers.
    import adbc_driver_sqlite.dbapi as adbc

    bar_count = 0
    writer = adbc.connect(str(path), autocommit=True)
    try:
        cursor = writer.cursor()
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.execute("BEGIN")
        for series, bars in _decoded_windows(repository, state):
            cursor.adbc_ingest("bars", _to_arrow(series, bars), mode="append")
            bar_count += len(bars)
        cursor.execute("COMMIT")
    finally:
        writer.close()

    # Recreate the dropped trigger and return to WAL mode for normal use.
    connection = schema.connect(path, "cache")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    fsync_path(path)
    return bar_count


def _decoded_windows(repository: Repository, state: State) -> Iterator[tuple[Series, BarColumns]]:
    """Yield (series, bars) for every window in key order, decoding ahead on threads."""
    jobs: list[tuple[Series, WindowEntry]] = [
        (series, state[series][start]) for series in sorted(state) for start in sorted(state[series])
    ]

    def load(job: tuple[Series, WindowEntry]) -> BarColumns:
        return read_window(repository.store, job[1])

    with ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="tvcat-restore") as executor:
        pending = []
        for job in jobs:
            pending.append((job[0], executor.submit(load, job)))
            if len(pending) >= MAX_CHUNKS_AHEAD:
                series, future = pending.pop(0)
                yield series, future.result()
        for series, future in pending:
            yield series, future.result()


def _to_arrow(series: Series, bars: BarColumns) -> pa.Table:
    count = len(bars)
    columns = {
        "symbol": pa.repeat(pa.scalar(series.symbol, pa.string()), count),
        "timeframe": pa.repeat(pa.scalar(series.timeframe, pa.string()), count),
        "ts": pa.array(bars.ts, pa.int64()),
    }
    for name, values in zip(("open", "high", "low", "close", "volume"), bars.columns()[1:]):
        columns[name] = pa.array(values, pa.float64(), from_pandas=True)
    return pa.table(columns)


def _replace(temporary: Path, target: Path) -> None:
    """Rename the finished database over `target`, first folding target's WAL back in."""
    if target.exists():
        # A stale -wal beside the new file would be replayed into it, so the
        # old database is checkpointed and its WAL removed before the rename.
        old = sqlite3.connect(target)
        try:
            old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError:
            pass  # Not an SQLite database, so there is no WAL to fold in.
        finally:
            old.close()
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(temporary, target)
    fsync_path(target.parent)
