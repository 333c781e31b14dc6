"""The `binance` source: kline CSV files from data.binance.vision in a local directory.

`binance:DIR` reads the files in DIR and its subdirectories whose names have
the site's form `PAIR-INTERVAL-YYYY-MM-DD.csv` (a daily file) or
`PAIR-INTERVAL-YYYY-MM.csv` (a monthly file), and the `.zip` archives of the
same names that the site serves, each holding one such CSV. Other files are
ignored. The symbol is `BINANCE:PAIR`. The interval names Binance's API
uses, such as `1s`, `1m`, `4h`, `1d`, `1w`, `1M` and `1mo`, map to TradingView
timeframes, and `1M` and `1mo` are months.

Each row has 12 cells: open_time, open, high, low, close, volume, close_time,
quote volume, trade count, taker buy base volume, taker buy quote volume and
an unused cell. Only the first six are read. A header row whose first cell is
`open_time` is skipped, as in the site's futures files. Spot files from 2025
on give times in microseconds and older files in milliseconds, so the unit is
chosen per file from the magnitude of its first open_time, and a later row
with the other unit is an error.

The files of one series are read one at a time, in the order of the day or
month in their names, so a directory of many monthly files never sits in
memory at once. A bar must open inside the day or month its file name gives,
or at most one bar length before it. That rule lets bars older than the next
file's period be yielded before the next file is read. Daily and monthly
files may overlap, and a bar may appear in several files when every copy has
the same open, high, low, close and volume. Two different copies of one bar
are an InvalidSourceData error naming both files.

NOTE: spot and USD-M futures files of one pair have the same names, so a
directory that holds both mixes them into one series. Keep them in separate
directories.

Part of this module is shared with the freqtrade source: the interval names,
the merge of the bars of several files and the cutting into pages.
"""

import csv
import io
import math
import os
import re
import zipfile
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TextIO

import anyio.to_thread
import numpy as np

from ...catalog.bars import VALUE_COLUMNS, BarColumns
from ...catalog.series import Series, normalize_timeframe, timeframe_seconds, validate_symbol
from ...errors import InvalidFile, InvalidInput, InvalidRow, InvalidSymbol, InvalidTimeframe, NotFound
from ...i18n import N_, _
from ..importers.timeparse import MAX_UNIX_SECONDS, MIN_UNIX_SECONDS, format_utc
from .base import (
    FetchOutcome,
    FetchRequest,
    InvalidSourceData,
    Page,
    SeriesInfo,
    Source,
    SourceUnavailable,
    SymbolNotFound,
)

SOURCE_NAME = "binance"
EXCHANGE = "BINANCE"

# Maximum bars per yielded page.
PAGE_BARS = 50_000

# Crypto exchanges trade around the clock and their bars are aligned in UTC.
CRYPTO_TIME_ZONE = "Etc/UTC"

# The `time` of an InvalidSourceData error about a file, or a row whose time did not parse.
UNKNOWN_TIME = "?"

# The columns of a data.binance.vision kline file, with the names of its header row.
KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
_TIME_COLUMN = 0
_VALUE_COLUMNS = range(1, 6)

# An open_time of at least 10**14 is in microseconds: in milliseconds it would
# be after the year 5000, and in microseconds anything below it is before 1974.
_MICROSECONDS_FROM = 10**14
_MILLISECONDS_PER_SECOND = 1_000
_MICROSECONDS_PER_SECOND = 1_000_000

_FILE_NAME_PATTERN = re.compile(
    r"(?P<pair>[^-\s]+)-(?P<interval>[0-9]+(?:mo|[smhdwM]))"
    r"-(?P<year>[0-9]{4})-(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2}))?\.(?P<extension>(?i:csv|zip))"
)
_INTERVAL_PATTERN = re.compile(r"(?P<count>[0-9]{1,9})(?P<unit>mo|[smhdwM])")
# Interval units of Binance and ccxt other than minutes and hours, in TradingView's letters.
# Case matters: `m` is a minute, and `M` and `mo` are a month.
_INTERVAL_UNITS = {"s": "S", "d": "D", "w": "W", "M": "M", "mo": "M"}
_OPEN_TIME_PATTERN = re.compile(r"[0-9]{1,19}")
_NUMBER_PATTERN = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

# Months have no fixed length, so the lead allowed for a monthly bar is the longest month.
_LONGEST_MONTH_SECONDS = 31 * 86_400


class SourceArgumentMissing(InvalidInput):
    """A file source named without the directory it reads."""

    template = N_("the {source} source needs a directory: write it as {source}:DIR, such as {example}")


class SourceDirectoryNotFound(NotFound):
    """The directory of a file source does not exist or is not a directory."""

    template = N_("source {source}: directory not found: {path}: check DIR in {source}:DIR")


def create(argument: str | None, config: object) -> "BinanceSource":
    """Return the source that `binance:DIR` names; `argument` is DIR and `config` is unused."""
    return BinanceSource(require_directory_argument(SOURCE_NAME, argument, "binance:/data/binance-vision"))


def require_directory_argument(source: str, argument: str | None, example: str) -> Path:
    """Return the directory of `source:DIR`, or raise SourceArgumentMissing when DIR is empty."""
    if argument is None or not argument.strip():
        raise SourceArgumentMissing(source=source, example=example)
    return Path(argument).expanduser()


def check_directory(source: str, directory: Path) -> None:
    """Raise SourceDirectoryNotFound unless `directory` is an existing directory."""
    if not directory.is_dir():
        raise SourceDirectoryNotFound(source=source, path=str(directory))


def interval_to_timeframe(interval: str) -> str | None:
    """Return the TradingView timeframe of a Binance or ccxt interval such as `15m`, `4h` or `1M`.

    Returns None for a name that is not an interval, a zero count, or a bar
    longer than the longest timeframe tvcat stores.
    """
    match = _INTERVAL_PATTERN.fullmatch(interval)
    if match is None:
        return None
    count = int(match["count"])
    unit = match["unit"]
    if unit == "m":
        text = str(count)
    elif unit == "h":
        text = str(count * 60)
    else:
        text = f"{count}{_INTERVAL_UNITS[unit]}"
    try:
        return normalize_timeframe(text)
    except InvalidTimeframe:
        return None


@dataclass(frozen=True)
class FileBars:
    """Bars parsed from one file, in file order, with where each came from.

    `values` has one row per bar and the columns of VALUE_COLUMNS.
    `positions` holds the 1-based line of each bar when `position_kind` is
    "line" and its 0-based row index when it is "row".
    """

    file: str
    position_kind: str
    ts: np.ndarray
    values: np.ndarray
    positions: np.ndarray


def describe_position(file: str, position_kind: str, position: int) -> str:
    """Return the place of one bar in its file for messages, such as `X.csv, line 3`."""
    if position_kind == "line":
        return _("{file}, line {line}").format(file=file, line=position)
    return _("{file}, row index {index}").format(file=file, index=position)


class BarMerger:
    """Bars read from files and not yet yielded, sorted by time with one bar per time.

    Rows with the same time merge into one bar when their open, high, low,
    close and volume are equal bit for bit (NaN equals NaN). Otherwise `add`
    raises InvalidSourceData naming the place of both rows.
    """

    def __init__(self, source: str, series: Series) -> None:
        self._source = source
        self._series = series
        # (file, position kind) of each added file, indexed by _file_indexes.
        self._files: list[tuple[str, str]] = []
        self._ts = np.empty(0, np.int64)
        self._values = np.empty((0, len(VALUE_COLUMNS)), np.float64)
        self._file_indexes = np.empty(0, np.int32)
        self._positions = np.empty(0, np.int64)

    def __len__(self) -> int:
        return len(self._ts)

    def add(self, bars: FileBars) -> None:
        """Merge the bars of one file into the pending bars."""
        self._files.append((bars.file, bars.position_kind))
        ts = np.concatenate([self._ts, bars.ts])
        values = np.concatenate([self._values, bars.values])
        file_indexes = np.concatenate([self._file_indexes, np.full(len(bars.ts), len(self._files) - 1, np.int32)])
        positions = np.concatenate([self._positions, bars.positions])

        # A stable sort keeps the rows of earlier files, and earlier rows of one
        # file, first among rows with the same time.
        order = np.argsort(ts, kind="stable")
        ts, values, file_indexes, positions = ts[order], values[order], file_indexes[order], positions[order]

        repeated = np.flatnonzero(ts[1:] == ts[:-1])
        if len(repeated):
            earlier = values[repeated]
            later = values[repeated + 1]
            same_bits = earlier.view(np.int64) == later.view(np.int64)
            equal = np.all(same_bits | (np.isnan(earlier) & np.isnan(later)), axis=1)
            if not equal.all():
                first = int(repeated[np.argmin(equal)])
                self._raise_conflict(ts, values, file_indexes, positions, first)
            keep = np.ones(len(ts), dtype=bool)
            keep[repeated + 1] = False
            ts, values, file_indexes, positions = ts[keep], values[keep], file_indexes[keep], positions[keep]

        self._ts, self._values, self._file_indexes, self._positions = ts, values, file_indexes, positions

    def take_before(self, limit: int | None) -> BarColumns:
        """Remove and return the pending bars that open before `limit`, or all of them when it is None."""
        count = len(self._ts) if limit is None else int(np.searchsorted(self._ts, limit, side="left"))
        columns = [self._values[:count, index] for index in range(len(VALUE_COLUMNS))]
        taken = BarColumns.from_arrays(self._ts[:count], *columns)
        self._ts = self._ts[count:]
        self._values = self._values[count:]
        self._file_indexes = self._file_indexes[count:]
        self._positions = self._positions[count:]
        return taken

    def _raise_conflict(
        self, ts: np.ndarray, values: np.ndarray, file_indexes: np.ndarray, positions: np.ndarray, first: int
    ) -> None:
        places = []
        for row in (first, first + 1):
            file, kind = self._files[int(file_indexes[row])]
            places.append(describe_position(file, kind, int(positions[row])))
        raise InvalidSourceData(
            source=self._source,
            symbol=self._series.symbol,
            timeframe=self._series.timeframe,
            time=format_utc(int(ts[first])),
            reason=_(
                "{first} and {second} give different values for this bar (open, high, low, close, volume): "
                "{first_values} and {second_values}"
            ).format(
                first=places[0],
                second=places[1],
                first_values=_format_values(values[first]),
                second_values=_format_values(values[first + 1]),
            ),
        )


def _format_values(row: np.ndarray) -> str:
    return ", ".join(repr(float(value)) for value in row)


class PageBuffer:
    """Bars ready to yield, cut into pages of at most PAGE_BARS bars.

    Bars before `since` and from `until` on are dropped. `dropped_older`
    becomes True when a bar was dropped for `since`.
    """

    def __init__(self, since: int | None, until: int | None) -> None:
        self._since = since
        self._until = until
        self._page_bars = PAGE_BARS
        self._parts: list[BarColumns] = []
        self._count = 0
        self.dropped_older = False

    def add(self, bars: BarColumns) -> list[Page]:
        """Add bars newer than every bar added before, and return the pages that are full."""
        if self._since is not None and len(bars) and bars.ts[0] < self._since:
            self.dropped_older = True
            bars = bars.slice(int(np.searchsorted(bars.ts, self._since, side="left")), len(bars))
        if self._until is not None:
            bars = bars.slice(0, int(np.searchsorted(bars.ts, self._until, side="left")))
        if len(bars):
            self._parts.append(bars)
            self._count += len(bars)

        pages = []
        while self._count >= self._page_bars:
            pages.append(self._take_page(self._page_bars))
        return pages

    def finish(self) -> list[Page]:
        """Return the last, partly filled page, if any bars remain."""
        return [self._take_page(self._count)] if self._count else []

    def _take_page(self, size: int) -> Page:
        joined = _concat(self._parts)
        page = Page(bars=joined.slice(0, size), last_bar_forming=False)
        rest = joined.slice(size, len(joined))
        self._parts = [rest] if len(rest) else []
        self._count = len(rest)
        return page


def _concat(parts: list[BarColumns]) -> BarColumns:
    if len(parts) == 1:
        return parts[0]
    return BarColumns(*(np.concatenate(columns) for columns in zip(*(part.columns() for part in parts))))


@dataclass(frozen=True)
class KlineFile:
    """One kline file or zip archive, with the series and the period its name gives.

    `start` and `end` are the Unix seconds of the first moment of the day or
    month (UTC) and of the one after it.
    """

    path: Path
    series: Series
    start: int
    end: int


def parse_kline_file_name(path: Path) -> KlineFile | None:
    """Return the series and period of a data.binance.vision file name, or None for other names."""
    match = _FILE_NAME_PATTERN.fullmatch(path.name)
    if match is None:
        return None
    timeframe = interval_to_timeframe(match["interval"])
    if timeframe is None:
        return None
    try:
        symbol = validate_symbol(f"{EXCHANGE}:{match['pair']}")
    except InvalidSymbol:
        return None

    year, month = int(match["year"]), int(match["month"])
    try:
        if match["day"] is None:
            start = datetime(year, month, 1, tzinfo=timezone.utc)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
        else:
            start = datetime(year, month, int(match["day"]), tzinfo=timezone.utc)
            end = datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=timezone.utc)
    except ValueError:
        # A date that does not exist, such as 2021-02-30, or a year out of range.
        return None
    return KlineFile(path=path, series=Series(symbol, timeframe), start=int(start.timestamp()), end=int(end.timestamp()))


def find_kline_files(directory: Path) -> list[KlineFile]:
    """Return every kline file under `directory`, sorted by path. Symbolic links to directories are not followed."""
    found = []
    for root, directories, names in os.walk(directory):
        directories.sort()
        for name in sorted(names):
            kline_file = parse_kline_file_name(Path(root) / name)
            if kline_file is not None:
                found.append(kline_file)
    return found


def _max_lead(timeframe: str) -> int:
    """Return how long before its file's period a bar may open: one bar length."""
    if timeframe.endswith("M"):
        return int(timeframe[:-1]) * _LONGEST_MONTH_SECONDS
    return timeframe_seconds(timeframe)


class _KlineReader:
    """Parser of the rows of one kline CSV; `label` names the file in messages."""

    def __init__(self, kline_file: KlineFile, label: str) -> None:
        self.kline_file = kline_file
        self.label = label
        self.earliest = kline_file.start - _max_lead(kline_file.series.timeframe)
        # Units per second of the file's open times, set by its first data row.
        self.units_per_second: int | None = None

    def read(self, text: TextIO) -> FileBars:
        ts: list[int] = []
        values: list[list[float]] = []
        lines: list[int] = []
        reader = csv.reader(text)
        try:
            for row in reader:
                line = reader.line_num
                if not row or (not ts and _is_header(row)):
                    continue
                self._check_width(line, row)
                time = self._parse_open_time(line, row[_TIME_COLUMN])
                ts.append(time)
                values.append([self._parse_value(line, row, index, time) for index in _VALUE_COLUMNS])
                lines.append(line)
        except UnicodeDecodeError as error:
            raise self._file_error(_("the file is not UTF-8 text")) from error
        except csv.Error as error:
            reason = _("line {line}: the CSV is malformed: {error}").format(line=reader.line_num, error=error)
            raise self._file_error(reason) from error

        return FileBars(
            file=self.label,
            position_kind="line",
            ts=np.array(ts, dtype=np.int64),
            values=np.array(values, dtype=np.float64).reshape(len(ts), len(VALUE_COLUMNS)),
            positions=np.array(lines, dtype=np.int64),
        )

    def _check_width(self, line: int, row: list[str]) -> None:
        if len(row) == len(KLINE_COLUMNS):
            return
        if len(row) < len(KLINE_COLUMNS):
            column, value = KLINE_COLUMNS[len(row)], ""
        else:
            column, value = str(len(KLINE_COLUMNS) + 1), row[len(KLINE_COLUMNS)]
        problem = _("the row has {count} cells, but kline files have {expected}").format(
            count=len(row), expected=len(KLINE_COLUMNS)
        )
        raise self._row_error(line, column, value, problem, UNKNOWN_TIME)

    def _parse_open_time(self, line: int, text: str) -> int:
        column = KLINE_COLUMNS[_TIME_COLUMN]
        cell = text.strip()
        if _OPEN_TIME_PATTERN.fullmatch(cell) is None:
            problem = _("expected the bar open time as a whole number of Unix milliseconds or microseconds")
            raise self._row_error(line, column, text, problem, UNKNOWN_TIME)

        raw = int(cell)
        units = _MICROSECONDS_PER_SECOND if raw >= _MICROSECONDS_FROM else _MILLISECONDS_PER_SECOND
        if self.units_per_second is None:
            self.units_per_second = units
        elif units != self.units_per_second:
            problem = _(
                "the first row of the file gives open times in {unit}, but this one is in the other unit"
            ).format(unit=_unit_name(self.units_per_second))
            raise self._row_error(line, column, text, problem, UNKNOWN_TIME)

        seconds, remainder = divmod(raw, units)
        if remainder:
            problem = _("the bar open time is not a whole second")
            raise self._row_error(line, column, text, problem, UNKNOWN_TIME)
        if not self.earliest <= seconds < self.kline_file.end:
            problem = _(
                "the bar opens at {time}, outside the period from {start} to {end} that the file name gives"
            ).format(
                time=_format_time(seconds),
                start=format_utc(self.kline_file.start),
                end=format_utc(self.kline_file.end),
            )
            raise self._row_error(line, column, text, problem, UNKNOWN_TIME)
        return seconds

    def _parse_value(self, line: int, row: list[str], index: int, time: int) -> float:
        text = row[index]
        cell = text.strip()
        if _NUMBER_PATTERN.fullmatch(cell) is None:
            problem = _("expected a decimal number such as 0.00002853")
            raise self._row_error(line, KLINE_COLUMNS[index], text, problem, format_utc(time))
        value = float(cell)
        if not math.isfinite(value):
            problem = _("the number is too large for a 64-bit float")
            raise self._row_error(line, KLINE_COLUMNS[index], text, problem, format_utc(time))
        return value

    def _row_error(self, line: int, column: str, value: str, problem: str, time: str) -> InvalidSourceData:
        reason = _(InvalidRow.template).format(path=self.label, line=line, column=column, value=value, reason=problem)
        return _data_error(self.kline_file, reason, time)

    def _file_error(self, problem: str) -> InvalidSourceData:
        return _file_error(self.kline_file, self.label, problem)


def _data_error(kline_file: KlineFile, reason: str, time: str) -> InvalidSourceData:
    series = kline_file.series
    return InvalidSourceData(source=SOURCE_NAME, symbol=series.symbol, timeframe=series.timeframe, time=time, reason=reason)


def _file_error(kline_file: KlineFile, label: str, problem: str) -> InvalidSourceData:
    return _data_error(kline_file, _(InvalidFile.template).format(path=label, reason=problem), UNKNOWN_TIME)


def _format_time(seconds: int) -> str:
    """Return Unix seconds as ISO 8601 UTC, or as the number when datetime cannot represent the year."""
    if MIN_UNIX_SECONDS <= seconds <= MAX_UNIX_SECONDS:
        return format_utc(seconds)
    return str(seconds)


def _is_header(row: list[str]) -> bool:
    return row[0].strip().lower().replace(" ", "_") == KLINE_COLUMNS[_TIME_COLUMN]


def _unit_name(units_per_second: int) -> str:
    return _("microseconds") if units_per_second == _MICROSECONDS_PER_SECOND else _("milliseconds")


def read_kline_file(kline_file: KlineFile) -> FileBars:
    """Read the bars of one kline CSV, or of the one CSV inside a zip archive.

    Raises InvalidSourceData for data that does not parse and SourceUnavailable
    when the file cannot be opened or read.
    """
    path = kline_file.path
    try:
        if path.suffix.lower() != ".zip":
            with open(path, encoding="utf-8-sig", newline="") as text:
                return _KlineReader(kline_file, str(path)).read(text)
        return _read_zip(kline_file)
    except OSError as error:
        series = kline_file.series
        reason = _(InvalidFile.template).format(
            path=str(path), reason=_("cannot open the file: {error}").format(error=error.strerror or error)
        )
        raise SourceUnavailable(source=SOURCE_NAME, reason=reason) from error
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError, EOFError) as error:
        # zipfile raises NotImplementedError for an unknown compression method,
        # zlib.error for corrupt compressed data and EOFError for a truncated member.
        problem = _("the file is not a valid zip archive: {error}").format(error=error)
        raise _file_error(kline_file, str(path), problem) from error


def _read_zip(kline_file: KlineFile) -> FileBars:
    with zipfile.ZipFile(kline_file.path) as archive:
        members = [
            member for member in archive.infolist()
            if not member.is_dir() and member.filename.lower().endswith(".csv")
        ]
        label = str(kline_file.path)
        if len(members) != 1:
            problem = _("the archive holds {count} CSV files, but a kline archive holds exactly one").format(
                count=len(members)
            )
            raise _file_error(kline_file, label, problem)

        member = members[0]
        label = f"{kline_file.path}/{member.filename}"
        with archive.open(member) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            return _KlineReader(kline_file, label).read(text)


class BinanceSource(Source):
    """Bars from the data.binance.vision kline files in one directory tree."""

    name = SOURCE_NAME

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def list_series(self) -> list[Series]:
        """Return the series of the kline files under the directory, sorted.

        Raises SourceDirectoryNotFound when the directory does not exist.
        """
        check_directory(SOURCE_NAME, self.directory)
        files = await anyio.to_thread.run_sync(find_kline_files, self.directory)
        return sorted({kline_file.series for kline_file in files})

    async def fetch(self, request: FetchRequest, outcome: FetchOutcome) -> AsyncIterator[Page]:
        """Yield the bars of `request.series` from `request.since` on, reading its files one at a time.

        Files whose period ends before `since` or starts at or after `until`
        are not read, and bars outside [since, until) are dropped. Raises
        SymbolNotFound when the directory is missing or holds no file of the
        series, and InvalidSourceData for bad data.
        """
        series = request.series
        if not self.directory.is_dir():
            raise SymbolNotFound(
                source=SOURCE_NAME,
                symbol=series.symbol,
                timeframe=series.timeframe,
                reason=_("directory not found: {path}").format(path=self.directory),
            )
        every_file = await anyio.to_thread.run_sync(find_kline_files, self.directory)
        series_files = sorted(
            (kline_file for kline_file in every_file if kline_file.series == series),
            key=lambda kline_file: (kline_file.start, kline_file.end, str(kline_file.path)),
        )
        if not series_files:
            raise SymbolNotFound(
                source=SOURCE_NAME,
                symbol=series.symbol,
                timeframe=series.timeframe,
                reason=_("no kline file of this series under {path}").format(path=self.directory),
            )

        outcome.info = SeriesInfo(series=series, timezone=CRYPTO_TIME_ZONE)
        wanted = list(_select_files(series_files, request.since, request.until))
        # A file whose period ends before `since` holds only older bars.
        skipped_older = request.since is not None and series_files[0].end <= request.since
        merger = BarMerger(SOURCE_NAME, series)
        pages = PageBuffer(request.since, request.until)
        lead = _max_lead(series.timeframe)
        for index, kline_file in enumerate(wanted):
            merger.add(await anyio.to_thread.run_sync(partial(read_kline_file, kline_file)))
            # Later files hold no bar that opens before this limit, so the bars before it are final.
            limit = wanted[index + 1].start - lead if index + 1 < len(wanted) else None
            for page in pages.add(merger.take_before(limit)):
                yield page
        for page in pages.finish():
            yield page
        outcome.history_exhausted = not (skipped_older or pages.dropped_older)


def _select_files(files: list[KlineFile], since: int | None, until: int | None) -> Iterator[KlineFile]:
    """Yield the files that may hold bars in [since, until), keeping their order."""
    for kline_file in files:
        lead = _max_lead(kline_file.series.timeframe)
        if since is not None and kline_file.end <= since:
            continue
        if until is not None and kline_file.start - lead >= until:
            continue
        yield kline_file
