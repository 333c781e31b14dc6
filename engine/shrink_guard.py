"""Refuse a backup of a cache that lost data since the backups before it.

A cache that was deleted, truncated or overwritten looks to a backup like a
cache whose series were removed. Backing it up is harmless by itself, but
every such backup counts against `max_backup_files` and the bucket rules, so
a few scheduled runs let retention forget the backups that still hold the
lost bars. The guard compares each series with the newest backup whose
scope covers it, and stops the backup when a series is gone or has lost bars
at either end.
"""

from dataclasses import dataclass
from pathlib import Path

from ..catalog.repository import BackupRow, Repository
from ..catalog.series import Series
from ..errors import IntegrityError
from ..i18n import N_, _
from .cache import BarCache
from .importers.timeparse import format_utc

# A message lists at most this many lost series.
_LISTED = 5


class CacheShrank(IntegrityError):
    template = N_(
        "the cache {cache} has lost data since backup {backup_id}: {losses}. Backing it up would let retention "
        "forget the backups that still hold those bars. Restore the lost series, for example with "
        "tvcat restore {backup_id} --symbols SYMBOL --force, or, if the data was removed on purpose, run "
        "tvcat backup --allow-shrink once"
    )


@dataclass(frozen=True)
class _Expected:
    backup: BackupRow
    first_ts: int | None
    last_ts: int | None


def check_no_shrink(repository: Repository, cache: BarCache, scope) -> None:
    """Raise CacheShrank when a series of `scope` lost bars since the newest backup that covers it.

    A restore into this cache after that backup is taken as intended, so
    the check passes then: the restored state is what the user chose.
    """
    expected = _expected_series(repository, scope)
    if not expected:
        return
    newest = max(entry.backup.committed_at for entry in expected.values())
    if _restored_since(repository, cache.path, newest):
        return

    losses = []
    for series, entry in sorted(expected.items(), key=lambda item: (item[0].symbol, item[0].timeframe)):
        loss = _loss(cache, series, entry)
        if loss is not None:
            losses.append((entry.backup, loss))
    if losses:
        listed = "; ".join(loss for _, loss in losses[:_LISTED]) + ("; …" if len(losses) > _LISTED else "")
        raise CacheShrank(cache=str(cache.path), backup_id=losses[0][0].backup_id, losses=listed)


def _expected_series(repository: Repository, scope) -> dict[Series, _Expected]:
    """Map each series that any backup contains within `scope` to its bounds in the newest backup covering it.

    A series that this newest covering backup does not contain is left out,
    so a removal that an earlier backup accepted is not reported again.
    """
    backups = repository.backups()
    contents = {backup.backup_id: {} for backup in backups}
    for backup_id, symbol, timeframe, first_ts, last_ts in repository.connection.execute(
        "SELECT s.backup_id, s.symbol, s.timeframe, s.first_ts, s.last_ts FROM backup_series s "
        "JOIN backups b USING (backup_id) WHERE b.status = 'committed'"
    ):
        contents[backup_id][Series(symbol, timeframe)] = (first_ts, last_ts)
    candidates = {series for kept in contents.values() for series in kept if scope.contains(series)}

    expected: dict[Series, _Expected] = {}
    for backup in sorted(backups, key=lambda row: row.committed_at, reverse=True):
        if not candidates:
            break
        covered = {series for series in candidates if _covers(backup, series)}
        for series in covered:
            bounds = contents[backup.backup_id].get(series)
            if bounds is not None:
                expected[series] = _Expected(backup, *bounds)
        candidates -= covered
    return expected


def _covers(backup: BackupRow, series: Series) -> bool:
    return (backup.symbols is None or series.symbol in backup.symbols) and (
        backup.timeframes is None or series.timeframe in backup.timeframes)


def _restored_since(repository: Repository, cache_path: Path, since: str) -> bool:
    target = cache_path.resolve()
    rows = repository.connection.execute(
        "SELECT target FROM restores WHERE status = 'completed' AND time > ?", (since,)
    ).fetchall()
    return any(Path(row[0]).resolve() == target for row in rows)


def _loss(cache: BarCache, series: Series, entry: _Expected) -> str | None:
    """Describe what the cache lost of `series` against the backup, or None when it lost nothing."""
    first, last = cache.connection.execute(
        "SELECT min(ts), max(ts) FROM bars WHERE symbol = ? AND timeframe = ?", (series.symbol, series.timeframe)
    ).fetchone()
    name = f"{series.symbol} {series.timeframe}"
    if first is None:
        return _("{series} is missing").format(series=name)
    if entry.first_ts is not None and first > entry.first_ts:
        return _("{series} now starts at {now}, not {before}").format(
            series=name, now=format_utc(first), before=format_utc(entry.first_ts))
    if entry.last_ts is not None and last < entry.last_ts:
        return _("{series} now ends at {now}, not {before}").format(
            series=name, now=format_utc(last), before=format_utc(entry.last_ts))
    return None
