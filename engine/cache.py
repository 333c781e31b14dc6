"""The bar cache: cache.db with the `bars` table and its change tracking.

Writers and small reads go through Python's sqlite3. Bulk reads for backups
go through `snapshot`, served by a reader process (engine/snapshot_reader.py).
"""

import json
import secrets
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..catalog import schema
from ..catalog.bars import BarColumns
from ..catalog.series import Series, window_span
from ..errors import CacheNotFound, DatabaseUnavailable
from .snapshot_reader import INT64_MAX as _INT64_MAX
from .snapshot_reader import INT64_MIN as _INT64_MIN
from .snapshot_reader import CacheSnapshot, open_snapshot

_BAR_QUERY = (
    "SELECT ts, open, high, low, close, volume FROM bars "
    "WHERE symbol = ? AND timeframe = ? AND ts >= ? AND ts < ? ORDER BY ts"
)


@dataclass(frozen=True)
class UpsertResult:
    """How many bars of one upsert were new, changed or already equal, and the bars stored before it."""

    inserted: int
    updated: int
    unchanged: int
    # The stored bars in the upsert's time range, as read inside its transaction.
    previous: BarColumns | None = None


class BarCache:
    """One cache.db file. Not shared between threads."""

    def __init__(self, path: Path | str, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise CacheNotFound(path=str(self.path))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatabaseUnavailable(path=str(self.path), reason=error.strerror) from error
        self._connection: sqlite3.Connection | None = None
        self.connection.execute(
            "INSERT OR IGNORE INTO cache_meta (id, cache_id, change_seq) VALUES (1, ?, 1)",
            (secrets.token_hex(8),),
        )
        self._repair_window_spans()

    @property
    def connection(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = schema.connect(self.path, "cache")
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @property
    def cache_id(self) -> str:
        return self.connection.execute("SELECT cache_id FROM cache_meta WHERE id = 1").fetchone()[0]

    def _repair_window_spans(self) -> None:
        """Bring window_spans in line with this version's window function.

        A cache written with other spans tracked changes in other windows,
        so its change tracking is not trusted: the cache gets a new cache_id,
        and the next incremental compares every window with its parent.
        """
        stale = [
            (timeframe, window_span(timeframe))
            for timeframe, span in self.connection.execute("SELECT timeframe, span FROM window_spans")
            if span != window_span(timeframe)
        ]
        if not stale:
            return
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            self.connection.executemany("UPDATE window_spans SET span = ? WHERE timeframe = ?",
                                        [(span, timeframe) for timeframe, span in stale])
            self.connection.execute("UPDATE cache_meta SET cache_id = ? WHERE id = 1", (secrets.token_hex(8),))
            self.connection.execute("COMMIT")
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise

    def ensure_timeframe(self, timeframe: str) -> None:
        """Record the window span of `timeframe` so the triggers can track its bars."""
        self.connection.execute(
            "INSERT OR IGNORE INTO window_spans (timeframe, span) VALUES (?, ?)",
            (timeframe, window_span(timeframe)),
        )

    def list_series(self) -> list[Series]:
        rows = self.connection.execute(
            "SELECT DISTINCT symbol, timeframe FROM bars ORDER BY symbol, timeframe"
        ).fetchall()
        return [Series(symbol, timeframe) for symbol, timeframe in rows]

    def read_bars(self, series: Series, start: int = _INT64_MIN, stop: int = _INT64_MAX) -> BarColumns:
        """Read the bars of `series` with start <= ts < stop through sqlite3."""
        rows = self.connection.execute(_BAR_QUERY, (series.symbol, series.timeframe, start, stop)).fetchall()
        if not rows:
            return BarColumns.empty()
        ts, *values = zip(*rows)
        return BarColumns.from_arrays(
            ts, *([np.nan if value is None else value for value in column] for column in values)
        )

    def upsert(self, series: Series, bars: BarColumns) -> UpsertResult:
        """Insert new bars and overwrite changed ones in one transaction.

        A bar equal bit for bit to the stored one is not written, so it
        causes no change tracking and no new chunk at the next backup.
        """
        if len(bars) == 0:
            return UpsertResult(0, 0, 0)
        bars = _without_negative_zero(bars)
        self.ensure_timeframe(series.timeframe)

        self.connection.execute("BEGIN IMMEDIATE")
        try:
            stored = self.read_bars(series, int(bars.ts[0]), int(bars.ts[-1]) + 1)
            new_rows, changed_rows, unchanged = _split_by_stored(bars, stored)
            prefix = (series.symbol, series.timeframe)
            self.connection.executemany(
                "INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (prefix + row for row in _rows(new_rows)),
            )
            self.connection.executemany(
                "UPDATE bars SET open = ?, high = ?, low = ?, close = ?, volume = ? "
                "WHERE symbol = ? AND timeframe = ? AND ts = ?",
                (row[1:] + prefix + row[:1] for row in _rows(changed_rows)),
            )
            self.connection.execute("COMMIT")
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        return UpsertResult(len(new_rows), len(changed_rows), unchanged, stored)

    def provisional_ts(self, series: Series) -> int | None:
        """Return the open time of the series' still-forming bar, or None when every stored bar is closed."""
        row = self.connection.execute(
            "SELECT ts FROM provisional_bars WHERE symbol = ? AND timeframe = ?", _key(series)
        ).fetchone()
        return row[0] if row else None

    def set_provisional(self, series: Series, ts: int | None) -> None:
        """Mark the bar at `ts` as the series' still-forming bar, or clear the mark when `ts` is None."""
        if ts is None:
            self.connection.execute("DELETE FROM provisional_bars WHERE symbol = ? AND timeframe = ?", _key(series))
            return
        self.connection.execute(
            "INSERT OR REPLACE INTO provisional_bars (symbol, timeframe, ts) VALUES (?, ?, ?)", (*_key(series), ts)
        )

    def last_bars(self, series: Series, count: int) -> BarColumns:
        """Return the newest `count` bars of the series, oldest first."""
        rows = self.connection.execute(
            "SELECT ts, open, high, low, close, volume FROM bars WHERE symbol = ? AND timeframe = ? "
            "ORDER BY ts DESC LIMIT ?", (*_key(series), count),
        ).fetchall()
        rows.reverse()
        if not rows:
            return BarColumns.empty()
        return BarColumns.from_arrays(*zip(*rows))

    def save_series_info(self, source: str, info) -> None:
        """Store the facts a source gave about a series (a SeriesInfo), replacing earlier ones."""
        self.connection.execute(
            "INSERT OR REPLACE INTO series_info (symbol, timeframe, source, timezone, session, holidays, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            (*_key(info.series), source, info.timezone, info.session, json.dumps(list(info.holidays))),
        )

    def series_info(self, series: Series) -> dict | None:
        """Return the stored source facts of a series as a dict, or None."""
        row = self.connection.execute(
            "SELECT source, timezone, session, holidays FROM series_info WHERE symbol = ? AND timeframe = ?", _key(series)
        ).fetchone()
        if row is None:
            return None
        return {"source": row[0], "timezone": row[1], "session": row[2], "holidays": json.loads(row[3])}

    def advance_change_seq(self) -> int:
        """Start a new change sequence and return the one it closes.

        A backup calls this before it opens its read snapshot: every change
        committed later carries a greater number, so the next incremental
        finds it. Changes between this call and the snapshot are read twice
        at worst, never missed.
        """
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            covered = self.connection.execute("SELECT change_seq FROM cache_meta WHERE id = 1").fetchone()[0]
            self.connection.execute("UPDATE cache_meta SET change_seq = change_seq + 1 WHERE id = 1")
            self.connection.execute("COMMIT")
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        return covered

    @contextmanager
    def snapshot(self) -> Iterator[CacheSnapshot]:
        """Open one read transaction over the cache, in a reader process, for consistent bulk reads."""
        with open_snapshot(self.path) as snapshot:
            yield snapshot


def _key(series: Series) -> tuple[str, str]:
    return (series.symbol, series.timeframe)


def _without_negative_zero(bars: BarColumns) -> BarColumns:
    """Return `bars` with -0.0 replaced by +0.0.

    SQLite stores a REAL with no fractional part as an integer, so -0.0
    reads back as +0.0. Writing +0.0 in the first place keeps the cache,
    its backups and the comparison of a re-import in agreement.
    """
    values = [np.where(column == 0.0, 0.0, column) for column in bars.columns()[1:]]
    return BarColumns(bars.ts, *values)


def _split_by_stored(bars: BarColumns, stored: BarColumns) -> tuple[BarColumns, BarColumns, int]:
    """Split incoming bars into new ones, changed ones and a count of equal ones."""
    if len(stored) == 0:
        return bars, BarColumns.empty(), 0

    position = np.searchsorted(stored.ts, bars.ts)
    position_clipped = np.minimum(position, len(stored) - 1)
    present = stored.ts[position_clipped] == bars.ts

    equal = present.copy()
    for incoming, existing in zip(bars.columns()[1:], stored.columns()[1:]):
        matched = existing[position_clipped]
        same_null = np.isnan(incoming) == np.isnan(matched)
        same_bits = (incoming.view(np.int64) == matched.view(np.int64)) | (np.isnan(incoming) & np.isnan(matched))
        equal &= same_null & same_bits

    changed = present & ~equal
    return bars.take(~present), bars.take(changed), int(equal.sum())


def _rows(bars: BarColumns) -> Iterator[tuple]:
    columns = [bars.ts.tolist()]
    for column in bars.columns()[1:]:
        columns.append([None if value != value else value for value in column.tolist()])
    return zip(*columns)


def connect_readonly(path: Path | str) -> sqlite3.Connection:
    """Open cache.db read-only for queries that must not create it."""
    return sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)


def series_last_bars(connection: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """Return (symbol, timeframe, newest bar time) for every series of a cache.

    It walks the primary key from one series to the next, so it costs two
    index searches per series instead of a scan of every bar, which a
    GROUP BY would need. /metrics and the stale-data alert call it often.
    """
    series = []
    row = connection.execute("SELECT symbol, timeframe FROM bars ORDER BY symbol, timeframe LIMIT 1").fetchone()
    while row is not None:
        symbol, timeframe = row
        (last_ts,) = connection.execute(
            "SELECT max(ts) FROM bars WHERE symbol = ? AND timeframe = ?", (symbol, timeframe)
        ).fetchone()
        series.append((symbol, timeframe, last_ts))
        row = connection.execute(
            "SELECT symbol, timeframe FROM bars WHERE (symbol, timeframe) > (?, ?) "
            "ORDER BY symbol, timeframe LIMIT 1",
            (symbol, timeframe),
        ).fetchone()
    return series
