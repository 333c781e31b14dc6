"""Import bar files into the cache, one event per file."""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import blake3
import numpy as np

from ..catalog import events as ev
from ..catalog.repository import Repository
from ..catalog.chunks import diff_bars
from ..catalog.series import Series
from ..i18n import _
from ..errors import InvalidInput, TvcatError
from .cache import BarCache
from .importers import ImportedSeries, read_bar_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportReport:
    """The outcome of importing one file."""

    path: str
    symbol: str
    timeframe: str
    rows_read: int
    duplicates_merged: int
    bars_inserted: int
    bars_updated: int
    bars_unchanged: int


def import_files(
    repository: Repository,
    cache: BarCache,
    paths: list[Path],
    symbol: str | None = None,
    timeframe: str | None = None,
    tz: str | None = None,
) -> list[ImportReport]:
    """Read every file first, then write each into the cache and record `import.completed`.

    If any file is invalid, nothing is written: the error is recorded as
    `import.failed` and raised.
    """
    parsed: list[tuple[ImportedSeries, str]] = []
    for path in paths:
        try:
            parsed.append((read_bar_file(path, symbol=symbol, timeframe=timeframe, tz=tz), _hash_file(path)))
        except (TvcatError, OSError) as error:
            repository.record(ev.ImportFailed(path=_printable_path(path), error=str(error)))
            raise
    try:
        _check_files_agree([imported for imported, _ in parsed])
    except InvalidInput as error:
        repository.record(ev.ImportFailed(path=parsed[-1][0].path, error=str(error)))
        raise

    reports = []
    for imported, file_hash in parsed:
        result = cache.upsert(Series(imported.symbol, imported.timeframe), imported.bars)
        bars = imported.bars
        repository.record(ev.ImportCompleted(
            path=imported.path, file_hash=file_hash, cache_path=str(cache.path),
            symbol=imported.symbol, timeframe=imported.timeframe, rows_read=imported.rows_read,
            duplicates_merged=imported.duplicates_merged, bars_inserted=result.inserted,
            bars_updated=result.updated, bars_unchanged=result.unchanged,
            first_ts=int(bars.ts[0]) if len(bars) else None, last_ts=int(bars.ts[-1]) if len(bars) else None,
        ))
        logger.info("imported path=%s series=%s %s inserted=%d updated=%d", imported.path,
                    imported.symbol, imported.timeframe, result.inserted, result.updated)
        reports.append(ImportReport(
            imported.path, imported.symbol, imported.timeframe, imported.rows_read, imported.duplicates_merged,
            result.inserted, result.updated, result.unchanged,
        ))
    return reports


def _check_files_agree(files: list[ImportedSeries]) -> None:
    """Raise InvalidInput when two files of one import give one bar of a series different values.

    Within a file, conflicting rows are rejected by the reader; across files
    the later file would silently overwrite the earlier one.
    """
    seen: dict[tuple[str, str], list[ImportedSeries]] = {}
    for imported in files:
        earlier_files = seen.setdefault((imported.symbol, imported.timeframe), [])
        for earlier in earlier_files:
            shared = np.intersect1d(earlier.bars.ts, imported.bars.ts)
            mine = imported.bars.take(np.isin(imported.bars.ts, shared))
            theirs = earlier.bars.take(np.isin(earlier.bars.ts, shared))
            changed, _removed = diff_bars(theirs, mine)
            if len(changed):
                raise InvalidInput(detail=_(
                    "{first} and {second} give different values for {symbol} {timeframe} at Unix time {ts}; "
                    "import them in separate commands, the newer file last, to let it win"
                ).format(first=earlier.path, second=imported.path, symbol=imported.symbol,
                         timeframe=imported.timeframe, ts=int(changed.ts[0])))
        earlier_files.append(imported)


def _printable_path(path: Path) -> str:
    """Return `path` as text that JSON can hold, with undecodable bytes as U+FFFD."""
    return os.fsdecode(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _hash_file(path: Path) -> str:
    hasher = blake3.blake3()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()
