"""Read bars straight from a repository, as of a time or a backup, without restoring the cache.

A plain synchronous API for notebooks and scripts::

    from tvcat.reader import open_repository

    with open_repository("~/.local/share/tvcat/repo") as repository:
        table = repository.read("FX:EURUSD", "60", at="2024-05-01T08:00:00+08:00",
                                start="2024-04-01", end="2024-05-01")
        frame = repository.read_pandas("FX:EURUSD", "60")

The catalog is opened read-only. Bars come from the chunk objects of the
chosen backup, each verified against its id as a restore verifies it. While
objects are read, the repository lock is held shared, so a concurrent prune
waits instead of deleting them. Errors are those of `tvcat.errors`.
"""

import importlib
import numbers
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Generator, Iterator, Union

import numpy as np
import pyarrow as pa

from .catalog import events as ev
from .catalog.bars import VALUE_COLUMNS, BarColumns
from .catalog.manifests import WindowEntry, read_window
from .catalog.objects import LocalObjectStore
from .catalog.repository import CATALOG_FILE, BackupRow, Repository
from .catalog.series import Series, normalize_timeframe, validate_symbol, window_span
from .engine.backup import Scope
from .engine.importers.timeparse import format_utc
from .engine.restore import PointInTime, choose_backup_at, parse_point_in_time
from .engine.retention.locks import repository_lock
from .errors import (
    InvalidOption,
    InvalidTimestamp,
    NoBackupAtTime,
    NotFound,
    RepositoryNotFound,
    TvcatError,
)
from .i18n import N_, _

if TYPE_CHECKING:
    import pandas
    import polars

# A time: ISO 8601 text or Unix seconds as text, a number of Unix seconds, or
# a datetime. A time without an offset is read as UTC.
TimeValue = Union[str, int, float, datetime, date, np.datetime64]

# The columns of every table the reader returns. Like the bar cache, every
# value column may be NULL: close-only series have no open, high and low.
BAR_SCHEMA = pa.schema([
    pa.field("ts", pa.timestamp("s", tz="UTC"), nullable=False),
    *(pa.field(name, pa.float64()) for name in VALUE_COLUMNS),
])

# Restore and verify wait as long for a prune to finish.
LOCK_WAIT_SECONDS = 3600.0
# Series named in the error for a series that a backup does not contain.
MAX_SERIES_SHOWN = 5

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class DataFrameLibraryMissing(TvcatError, ImportError):
    """pandas or polars is needed for a DataFrame and is not installed."""

    template = N_("{library} is not installed: install it with pip install 'tvcat[dataframe]'")


class RepositoryClosed(TvcatError):
    template = N_("the repository {path} was closed; open it again with open_repository")


class RepositoryLockUnavailable(TvcatError):
    """The lock file of a repository cannot be opened, as in a read-only directory."""

    template = N_(
        "taking the read lock of the repository {path} failed: {reason}. Reading needs write access "
        "to its locks directory, so that a prune cannot delete objects while they are read"
    )


@dataclass(frozen=True)
class BackupInfo:
    """A committed (or, when listed with all=True, forgotten) backup."""

    backup_id: str
    type: str
    committed_at: datetime
    parent_id: str | None
    series_count: int
    bar_count: int
    bytes_written: int
    status: str


class BarStream:
    """The bars of one series in one backup, as Arrow record batches of at most one window each.

    `BarRepository.stream` returns it inside a with block, which holds the
    repository lock. Iterating after that block has ended raises ValueError.
    """

    def __init__(self, backup: BackupInfo, series: Series, batches: Generator[pa.RecordBatch, None, None]) -> None:
        self.backup = backup
        self.symbol = series.symbol
        self.timeframe = series.timeframe
        self._batches = batches
        self._closed = False

    def __iter__(self) -> "BarStream":
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._closed:
            raise ValueError(_("the bar stream is closed: iterate over it inside its with block"))
        return next(self._batches)

    def close(self) -> None:
        self._closed = True
        self._batches.close()


class BarRepository:
    """A repository opened for reading bars by `open_repository`.

    Use one instance per thread, because its catalog connection belongs to
    the thread that opened it.
    """

    def __init__(self, path: Path, lock_wait_seconds: float = LOCK_WAIT_SECONDS) -> None:
        self.path = path
        self.lock_wait_seconds = lock_wait_seconds
        self._catalog: Repository | None = Repository.open_readonly(path)

    @property
    def _repository(self) -> Repository:
        if self._catalog is None:
            raise RepositoryClosed(path=str(self.path))
        return self._catalog

    def close(self) -> None:
        """Close the catalog connection. A second call does nothing."""
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    def __enter__(self) -> "BarRepository":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def backups(self, all: bool = False) -> list[BackupInfo]:
        """Return the committed backups in id order, which is start-time order.

        With `all`, forgotten backups are listed too. Garbage collection may
        already have deleted their objects, so reading them can fail with
        ObjectMissing.
        """
        rows = self._repository.backups(status=None if all else "committed")
        return [_backup_info(row) for row in rows if row.status in ("committed", "forgotten")]

    def series(self, at: TimeValue | None = None, backup_id: str | None = None) -> list[tuple[str, str]]:
        """Return the (symbol, timeframe) pairs that `read` finds as of `at`, of `backup_id`, or now.

        A series counts at time `at` when the latest backup committed at or
        before `at` whose scope includes it contains it. Backups limited to
        some symbols or timeframes therefore add and remove only series in
        their scope. Raises the errors that `read` raises for the same
        arguments, except NotFound for a missing series.
        """
        point = _requested_point(at, backup_id)
        with self._shared_lock():
            if backup_id is not None:
                found = set(self._repository.resolve_state(self._repository.find_backup(backup_id)))
            else:
                found = self._series_at(point)
        return [(series.symbol, series.timeframe) for series in sorted(found)]

    @contextmanager
    def stream(self, symbol: str, timeframe: str, *, at: TimeValue | None = None, backup_id: str | None = None,
               start: TimeValue | None = None, end: TimeValue | None = None) -> Iterator[BarStream]:
        """Hold the repository lock shared and yield the bars of a series as a BarStream.

        The arguments are those of `read`. Each window is read, verified and
        cut to [start, end) only when the stream reaches it, so memory does
        not grow with the series. The errors of `read` are raised on entry,
        except ObjectMissing and ObjectCorrupted, which are raised while
        iterating.
        """
        series = Series(validate_symbol(str(symbol)), normalize_timeframe(str(timeframe)))
        point = _requested_point(at, backup_id)
        first, stop = _bar_time_range(start, end)

        with self._shared_lock():
            backup = self._choose_backup(series, point, backup_id)
            windows = self._series_windows(backup, series)
            selected = _overlapping(windows, window_span(series.timeframe), first, stop)
            bars = BarStream(_backup_info(backup), series, _read_batches(self._repository.store, selected, first, stop))
            try:
                yield bars
            finally:
                bars.close()

    def read(self, symbol: str, timeframe: str, *, at: TimeValue | None = None, backup_id: str | None = None,
             start: TimeValue | None = None, end: TimeValue | None = None) -> pa.Table:
        """Return the bars of one series as an Arrow table with the columns of BAR_SCHEMA.

        The bars are those of the latest backup committed at or before `at`
        that includes the series, or of the backup `backup_id` (an id or a
        unique prefix), or of the latest such backup when neither is given.
        `start` is inclusive and `end` exclusive, both compared with the bar
        open time. Times are ISO 8601 text, Unix seconds or datetimes, and a
        time without an offset is UTC.

        Raises InvalidSymbol, InvalidTimeframe, InvalidTimestamp or
        InvalidOption for invalid arguments. Raises NoBackupAtTime for a time
        before the first backup or in the future, and BackupNotFound or
        AmbiguousBackupId for `backup_id`. Raises NotFound when the backup
        does not contain the series, and ObjectMissing or ObjectCorrupted
        for damaged objects.
        """
        with self.stream(symbol, timeframe, at=at, backup_id=backup_id, start=start, end=end) as bars:
            return pa.Table.from_batches(list(bars), schema=BAR_SCHEMA)

    def read_pandas(self, symbol: str, timeframe: str, *, at: TimeValue | None = None,
                    backup_id: str | None = None, start: TimeValue | None = None,
                    end: TimeValue | None = None) -> "pandas.DataFrame":
        """Return `read` as a pandas DataFrame indexed by `ts`, with NaN for NULL values.

        Raises DataFrameLibraryMissing when pandas is not installed.
        """
        _import_library("pandas")
        table = self.read(symbol, timeframe, at=at, backup_id=backup_id, start=start, end=end)
        return table.to_pandas().set_index("ts")

    def read_polars(self, symbol: str, timeframe: str, *, at: TimeValue | None = None,
                    backup_id: str | None = None, start: TimeValue | None = None,
                    end: TimeValue | None = None) -> "polars.DataFrame":
        """Return `read` as a polars DataFrame, which stores `ts` in milliseconds.

        Raises DataFrameLibraryMissing when polars is not installed.
        """
        polars_module = _import_library("polars")
        table = self.read(symbol, timeframe, at=at, backup_id=backup_id, start=start, end=end)
        return polars_module.from_arrow(table)

    @contextmanager
    def _shared_lock(self) -> Iterator[None]:
        with ExitStack() as stack:
            try:
                stack.enter_context(repository_lock(self._repository, "read", exclusive=False,
                                                    wait_seconds=self.lock_wait_seconds))
            except OSError as error:
                raise RepositoryLockUnavailable(path=str(self.path), reason=error.strerror or str(error)) from error
            yield

    def _choose_backup(self, series: Series, point: PointInTime | None, backup_id: str | None) -> BackupRow:
        if backup_id is not None:
            return self._repository.find_backup(backup_id)

        scope = Scope([series.symbol], [series.timeframe])
        if not any(_scope_of(backup).contains(series) for backup in self._repository.backups()):
            raise NotFound(detail=_(
                "no committed backup includes {series}: back it up with `tvcat backup`"
            ).format(series=series))
        if point is None:
            point = PointInTime(datetime.now(timezone.utc), False)
        return choose_backup_at(self._repository, point, scope).backup

    def _series_windows(self, backup: BackupRow, series: Series) -> dict[int, WindowEntry]:
        """Return the windows of `series` in `backup`, or raise NotFound listing a few series it has."""
        state = self._repository.resolve_state(backup)
        if series in state:
            return state[series]

        contained = sorted(state)
        examples = ", ".join(str(item) for item in contained[:MAX_SERIES_SHOWN])
        if len(contained) > MAX_SERIES_SHOWN:
            examples += ", ..."
        raise NotFound(detail=_(
            "series {series} is not in backup {backup_id} (committed {committed_at}), which contains "
            "{count} series: {examples}"
        ).format(series=series, backup_id=backup.backup_id, committed_at=backup.committed_at,
                 count=len(contained), examples=examples))

    def _series_at(self, point: PointInTime | None) -> set[Series]:
        """Return the series that `read` finds at `point`, or now when None, as `series` describes."""
        backups = self._repository.backups()
        if not backups:
            raise NotFound(detail=_("the repository has no committed backup: take one with `tvcat backup`"))
        if point is not None:
            _check_backup_existed(backups, point)

        found: set[Series] = set()
        decided: list[Scope] = []
        existing = [backup for backup in backups if point is None or backup.committed_at <= point.text]
        for backup in sorted(existing, key=lambda row: row.committed_at, reverse=True):
            scope = _scope_of(backup)
            if scope in decided:
                continue
            # A newer backup whose scope includes a series decides whether that series exists.
            found.update(series for series in self._repository.resolve_state(backup)
                         if not any(earlier.contains(series) for earlier in decided))
            decided.append(scope)
            if scope.symbols is None and scope.timeframes is None:
                break
        return found


def open_repository(path: str | Path, *, lock_wait_seconds: float = LOCK_WAIT_SECONDS) -> BarRepository:
    """Open the repository directory `path` for reading, as a BarRepository that is also a context manager.

    Nothing is created or written except the lock record in the locks
    directory, which every reader and backup writes while it runs. Raises
    RepositoryNotFound when `path` has no catalog.db, and DatabaseUnavailable
    when that file is not a tvcat catalog. `lock_wait_seconds` is how long a
    read waits for a running prune before it raises RepositoryLocked.
    """
    directory = Path(path).expanduser()
    if not (directory / CATALOG_FILE).is_file():
        raise RepositoryNotFound(path=str(directory))
    return BarRepository(directory, lock_wait_seconds)


def _backup_info(row: BackupRow) -> BackupInfo:
    return BackupInfo(
        backup_id=row.backup_id, type=row.type, committed_at=ev.parse_time(row.committed_at),
        parent_id=row.parent_id, series_count=row.series_count, bar_count=row.bar_count,
        bytes_written=row.bytes_written, status=row.status,
    )


def _scope_of(backup: BackupRow) -> Scope:
    return Scope(backup.symbols, backup.timeframes)


def _check_backup_existed(backups: list[BackupRow], point: PointInTime) -> None:
    """Raise NoBackupAtTime when `point` is in the future or before the first committed backup."""
    latest = max(backups, key=lambda backup: backup.committed_at)
    if point.text > ev.format_time(datetime.now(timezone.utc)):
        raise NoBackupAtTime(detail=_(
            "{at} is in the future; the latest backup is {backup_id}, committed at {committed_at}"
        ).format(at=point.text, backup_id=latest.backup_id, committed_at=latest.committed_at))

    first = min(backups, key=lambda backup: backup.committed_at)
    if point.text < first.committed_at:
        raise NoBackupAtTime(detail=_(
            "no backup existed at {at}; the first backup is {backup_id}, committed at {committed_at}"
        ).format(at=point.text, backup_id=first.backup_id, committed_at=first.committed_at))


def _requested_point(at: TimeValue | None, backup_id: str | None) -> PointInTime | None:
    if at is not None and backup_id is not None:
        raise InvalidOption(detail=_("give either a time or a backup id, not both"))
    return None if at is None else _point_in_time(at)


def _point_in_time(value: TimeValue) -> PointInTime:
    """Convert a time argument to UTC, reading a datetime without tzinfo as UTC."""
    if isinstance(value, str):
        return parse_point_in_time(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return PointInTime(value.replace(tzinfo=timezone.utc), True)
        return PointInTime(value.astimezone(timezone.utc), False)
    if isinstance(value, date):
        # A calendar date means its midnight in UTC.
        return PointInTime(datetime(value.year, value.month, value.day, tzinfo=timezone.utc), True)
    if isinstance(value, np.datetime64) and not np.isnat(value):
        seconds = int(value.astype("datetime64[s]").astype(np.int64))
        return PointInTime(datetime.fromtimestamp(seconds, timezone.utc), True)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            return PointInTime(datetime.fromtimestamp(float(value), timezone.utc), False)
        except (ValueError, OverflowError, OSError) as error:
            raise InvalidTimestamp(value=str(value)) from error
    raise InvalidTimestamp(value=repr(value))


def _bar_time_range(start: TimeValue | None, end: TimeValue | None) -> tuple[int | None, int | None]:
    """Return [start, end) as whole Unix seconds, rounded up, which select the same integer bar times."""
    first = None if start is None else _ceil_seconds(_point_in_time(start).moment)
    stop = None if end is None else _ceil_seconds(_point_in_time(end).moment)
    if first is not None and stop is not None and first > stop:
        raise InvalidOption(detail=_(
            "the range start {start} is after its end {end}: the start is inclusive and the end exclusive"
        ).format(start=format_utc(first), end=format_utc(stop)))
    return first, stop


def _ceil_seconds(moment: datetime) -> int:
    delta = moment - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds
    return seconds + 1 if delta.microseconds else seconds


def _overlapping(windows: dict[int, WindowEntry], span: int, first: int | None, stop: int | None) -> list[WindowEntry]:
    """Return the windows, in time order, whose span of bar time meets [first, stop)."""
    return [
        windows[window_start] for window_start in sorted(windows)
        if (stop is None or window_start < stop) and (first is None or window_start + span > first)
    ]


def _read_batches(store: LocalObjectStore, windows: list[WindowEntry], first: int | None,
                  stop: int | None) -> Generator[pa.RecordBatch, None, None]:
    """Yield each window's verified bars within [first, stop), skipping windows left empty."""
    for window in windows:
        bars = read_window(store, window)
        low = 0 if first is None else int(np.searchsorted(bars.ts, first, side="left"))
        high = len(bars) if stop is None else int(np.searchsorted(bars.ts, stop, side="left"))
        if low < high:
            yield _to_batch(bars.slice(low, high))


def _to_batch(bars: BarColumns) -> pa.RecordBatch:
    # from_pandas turns NaN into NULL, as a restore writes it into the cache.
    values = [pa.array(column, pa.float64(), from_pandas=True) for column in bars.columns()[1:]]
    return pa.RecordBatch.from_arrays([pa.array(bars.ts, BAR_SCHEMA.field("ts").type), *values], schema=BAR_SCHEMA)


def _import_library(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise DataFrameLibraryMissing(library=name) from error


__all__ = [
    "BAR_SCHEMA", "BackupInfo", "BarRepository", "BarStream", "DataFrameLibraryMissing",
    "RepositoryLockUnavailable", "TimeValue", "open_repository",
]
