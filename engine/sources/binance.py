"""The `binance` source: kline CSV files from data.binance.vision in a local directory.

`binance:DIR` reads the files in DIR and its subdirectories whose names have
the site's form: `PAIR-INTERVAL-YYYY-MM-DD.csv` for a daily file and
`PAIR-INTERVAL-YYYY-MM.csv` for a monthly file. It also reads the `.zip`
archives of the same names that the site serves, each with one such CSV
inside. Other files are ignored. The symbol is `BINANCE:PAIR`. Interval names as Binance's API
writes them, such as `1s`, `1m`, `4h`, `1d`, `1w`, `1M` and `1mo`, map to
TradingView timeframes, and both `1M` and `1mo` are months.

Each row has 12 cells: open_time, open, high, low, close, volume, close_time,
quote volume, trade count, taker buy base volume, taker buy quote volume and
an unused cell. Only the first six are read. A first row whose first cell is
`open_time` is a header and is skipped, as in the site's futures files. Spot
files from 2025 on give times in microseconds and older files in
milliseconds, so the unit is chosen per file from the magnitude of its first
open_time, and a later row in the other unit is an error.

The files of one series are read one at a time, in the order of the day or
month in their names, so a directory of many monthly files never sits in
memory at once. A bar must open inside the day or month of its file name, or
at most one bar length before it. That rule lets the bars older than the
next file's period be yielded before the next file is read. Daily and
monthly files may overlap, and a bar may appear in several files when every
copy has the same open, high, low, close and volume. Two different copies of
one bar are an InvalidSourceData error naming both files. A file whose
content hash is in the request's skip set was read into this cache before
and is left out.

NOTE: spot and USD-M futures files of one pair have the same names, so a
directory that contains both mixes them into one series. Keep them in separate
directories.

The freqtrade source shares this module's interval names, its merge of the
bars of several files and its cutting into pages.
"""

import csv
import io
import math
import os
import re
import zipfile
import zlib
from array import array
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, TextIO

import anyio.to_thread
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from ...catalog.bars import VALUE_COLUMNS, BarColumns, concat
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
from .files import PAGE_BARS, hash_file

SOURCE_NAME = "binance"
EXCHANGE = "BINANCE"

# Crypto exchanges trade around the clock and align their bars in UTC.
CRYPTO_TIME_ZONE = "Etc/UTC"

# The `time` of an InvalidSourceData error about a whole file, or about a row whose time did not parse.
UNKNOWN_TIME = "?"

# The columns of a kline file, named as in the header row of the site's futures files.
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
_VALUE_COLUMN_INDEXES = range(1, 1 + len(VALUE_COLUMNS))
_READ_COLUMNS = KLINE_COLUMNS[: 1 + len(VALUE_COLUMNS)]

# An open_time of at least 10**14 is in microseconds: in milliseconds it would
# be after the year 5000, and any time in microseconds below it is before 1974.
_MICROSECONDS_FROM = 10**14
_MILLISECONDS_PER_SECOND = 1_000
_MICROSECONDS_PER_SECOND = 1_000_000

_FILE_NAME_PATTERN = re.compile(
    r"(?P<pair>[^-\s]+)-(?P<interval>[0-9]+(?:mo|[smhdwM]))"
    r"-(?P<year>[0-9]{4})-(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2}))?\.(?P<extension>(?i:csv|zip))"
)
_INTERVAL_PATTERN = re.compile(r"(?P<count>[0-9]{1,9})(?P<unit>mo|Mo|[smhdwM])")
# Interval units of Binance and ccxt other than minutes and hours, as TradingView letters.
# Case matters: `m` is a minute, while `M`, `mo` and `Mo` are a month. Binance's
# file names write a month `1mo`, and freqtrade's write it `1Mo`.
_INTERVAL_UNITS = {"s": "S", "d": "D", "w": "W", "M": "M", "mo": "M", "Mo": "M"}
_OPEN_TIME_PATTERN = re.compile(r"[0-9]{1,19}")
_NUMBER_PATTERN = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

# Months have no fixed length, so a monthly bar may lead its file by the longest month.
_MAX_MONTH_SECONDS = 31 * 86_400

# Bytes read to find the header row. A kline row is about 130 bytes.
_HEADER_PEEK_BYTES = 4096


class SourceArgumentMissing(InvalidInput):
    """A file source named without the directory it reads."""

    template = N_("the {source} source needs a directory: write it as {source}:DIR, such as {example}")


class SourceDirectoryNotFound(NotFound):
    """The directory of a file source does not exist or is not a directory."""

    template = N_("source {source}: directory not found: {path}")


def create(argument: str | None, config: object) -> "BinanceSource":
    """Build the source of the spec `binance:DIR`. `argument` is DIR, and `config` is not used."""
    return BinanceSource(require_directory_argument(SOURCE_NAME, argument, "binance:./binance-vision"))


def require_directory_argument(source: str, argument: str | None, example: str) -> Path:
    """Return the directory of the spec `source:DIR`, or raise SourceArgumentMissing when DIR is empty."""
    if argument is None or not argument.strip():
        raise SourceArgumentMissing(source=source, example=example)
    return Path(argument).expanduser()


def check_directory(spec: str, directory: Path) -> None:
    """Raise SourceDirectoryNotFound unless `directory` is an existing directory."""
    if not directory.is_dir():
        raise SourceDirectoryNotFound(source=spec, path=str(directory))


def interval_to_timeframe(interval: str) -> str | None:
    """Return the TradingView timeframe of a Binance or ccxt interval such as `15m`, `4h`, `1M` or `1mo`.

    Returns None for a name that is not an interval, for a zero count and
    for bars longer than the longest timeframe tvcat stores.
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


def format_time(seconds: int) -> str:
    """Return Unix seconds as ISO 8601 UTC, or as the plain number when the year is outside 1 to 9999."""
    if MIN_UNIX_SECONDS <= seconds <= MAX_UNIX_SECONDS:
        return format_utc(seconds)
    return str(seconds)


# Shared with the freqtrade source: bars of several files merged, then cut into pages.


@dataclass(frozen=True)
class FileBars:
    """Bars parsed from one file, in file order, with the place of each in the file.

    `values` has one row per bar and the columns of VALUE_COLUMNS.
    `positions` contains the 1-based line of each bar when `position_kind` is
    "line", and its 0-based row index when it is "row".
    """

    file: str
    position_kind: str
    ts: np.ndarray
    values: np.ndarray
    positions: np.ndarray


def describe_position(file: str, position_kind: str, position: int) -> str:
    """Return the place of one bar for messages, such as `X.csv, line 3` or `X.json, row index 2`."""
    if position_kind == "line":
        return _("{file}, line {line}").format(file=file, line=position)
    return _("{file}, row index {index}").format(file=file, index=position)


class BarMerger:
    """Bars read from files and not yet yielded, sorted by time with one bar per time.

    Rows with the same time merge into one bar when their open, high, low,
    close and volume are equal bit for bit, with NaN equal to NaN. Otherwise
    `add` raises InvalidSourceData naming the places of both rows.
    """

    def __init__(self, spec: str, series: Series) -> None:
        self._spec = spec
        self._series = series
        # (file, position kind) of each added file, indexed by _file_indexes.
        self._files: list[tuple[str, str]] = []
        self._ts = np.empty(0, np.int64)
        self._values = np.empty((0, len(VALUE_COLUMNS)), np.float64)
        self._file_indexes = np.empty(0, np.int32)
        self._positions = np.empty(0, np.int64)

    def add(self, bars: FileBars) -> None:
        """Merge the bars of one file into the pending bars."""
        self._files.append((bars.file, bars.position_kind))
        new_indexes = np.full(len(bars.ts), len(self._files) - 1, np.int32)
        ts = np.concatenate([self._ts, bars.ts])
        values = np.concatenate([self._values, bars.values])
        file_indexes = np.concatenate([self._file_indexes, new_indexes])
        positions = np.concatenate([self._positions, bars.positions])

        # A stable sort keeps the rows of earlier files, and the earlier rows of
        # one file, first among rows of the same time.
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
                raise self._conflict(ts, values, file_indexes, positions, first)
            keep = np.ones(len(ts), dtype=bool)
            keep[repeated + 1] = False
            ts, values, file_indexes, positions = ts[keep], values[keep], file_indexes[keep], positions[keep]

        self._ts, self._values, self._file_indexes, self._positions = ts, values, file_indexes, positions

    def take_before(self, limit: int | None) -> BarColumns:
        """Remove and return the pending bars that open before `limit`, or all of them when it is None."""
        count = len(self._ts) if limit is None else int(np.searchsorted(self._ts, limit, side="left"))
        columns = [self._values[:count, index] for index in range(len(VALUE_COLUMNS))]
        ready = BarColumns.from_arrays(self._ts[:count], *columns)
        self._ts = self._ts[count:]
        self._values = self._values[count:]
        self._file_indexes = self._file_indexes[count:]
        self._positions = self._positions[count:]
        return ready

    def _conflict(
        self, ts: np.ndarray, values: np.ndarray, file_indexes: np.ndarray, positions: np.ndarray, first: int
    ) -> InvalidSourceData:
        places = []
        for row in (first, first + 1):
            file, kind = self._files[int(file_indexes[row])]
            places.append(describe_position(file, kind, int(positions[row])))
        return InvalidSourceData(
            source=self._spec,
            symbol=self._series.symbol,
            timeframe=self._series.timeframe,
            time=format_time(int(ts[first])),
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
    """Bars ready to yield, cut into pages of at most `page_bars` bars.

    Bars before `since` and from `until` on are dropped, and `dropped_older`
    becomes True when a bar was dropped for `since`.
    """

    def __init__(self, since: int | None, until: int | None, page_bars: int = PAGE_BARS) -> None:
        self._since = since
        self._until = until
        self._page_bars = page_bars
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
        """Return the last page, which is not full, or no page when no bars remain."""
        return [self._take_page(self._count)] if self._count else []

    def _take_page(self, size: int) -> Page:
        joined = self._parts[0] if len(self._parts) == 1 else concat(self._parts)
        rest = joined.slice(size, len(joined))
        self._parts = [rest] if len(rest) else []
        self._count = len(rest)
        # Files are closed history, so no bar of them is still forming.
        return Page(bars=joined.slice(0, size), last_bar_forming=False)


# Kline file names and contents.


@dataclass(frozen=True)
class KlineFile:
    """One kline CSV or zip archive, with the series and the period its name gives.

    `start` and `end` are the Unix seconds of the first moment (UTC) of the
    day or month and of the one after it.
    """

    path: Path
    series: Series
    start: int
    end: int

    @property
    def earliest_open(self) -> int:
        """Return the earliest bar open time this file may contain: one bar length before its period."""
        return self.start - _bar_lead(self.series.timeframe)


def _bar_lead(timeframe: str) -> int:
    if timeframe.endswith("M"):
        return int(timeframe[:-1]) * _MAX_MONTH_SECONDS
    return timeframe_seconds(timeframe)


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
        # A date that does not exist, such as 2021-02-30, or the end of the year 9999.
        return None
    return KlineFile(
        path=path, series=Series(symbol, timeframe), start=int(start.timestamp()), end=int(end.timestamp())
    )


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


def read_kline_file(spec: str, kline_file: KlineFile) -> FileBars:
    """Read the bars of one kline CSV, or of the one CSV inside a zip archive.

    Raises InvalidSourceData for data that does not parse, naming the file,
    line, column and value, and SourceUnavailable when the file cannot be
    opened or read.
    """
    path = kline_file.path
    try:
        if path.suffix.lower() == ".zip":
            return _read_zip(spec, kline_file)
        with open(path, "rb") as raw:
            return _read_csv(spec, kline_file, str(path), raw)
    except OSError as error:
        reason = _(InvalidFile.template).format(
            path=str(path), reason=_("cannot open the file: {error}").format(error=error.strerror or error)
        )
        raise SourceUnavailable(source=spec, reason=reason) from error
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError, EOFError) as error:
        # zipfile raises NotImplementedError for an unknown compression method,
        # zlib.error for corrupt compressed data and EOFError for a truncated member.
        problem = _("the file is not a valid zip archive: {error}").format(error=error)
        raise _file_error(spec, kline_file, str(path), problem) from error


def _read_zip(spec: str, kline_file: KlineFile) -> FileBars:
    with zipfile.ZipFile(kline_file.path) as archive:
        members = [
            member for member in archive.infolist()
            if not member.is_dir() and member.filename.lower().endswith(".csv")
        ]
        if len(members) != 1:
            problem = _("the archive contains {count} CSV files, but a kline archive contains exactly one").format(
                count=len(members)
            )
            raise _file_error(spec, kline_file, str(kline_file.path), problem)

        label = f"{kline_file.path}/{members[0].filename}"
        with archive.open(members[0]) as raw:
            return _read_csv(spec, kline_file, label, raw)


def _read_csv(spec: str, kline_file: KlineFile, label: str, raw: BinaryIO) -> FileBars:
    """Parse a kline CSV with pyarrow, and again row by row to name the problem when that fails.

    pyarrow parses floats with correct rounding, like float(), so both paths
    give the same bits. Any row that pyarrow or the checks reject sends the
    file down the slow path, which raises the error with its line and cell.
    """
    header_lines = 1 if _is_header(raw.readline(_HEADER_PEEK_BYTES)) else 0
    raw.seek(0)
    bars = _read_csv_fast(kline_file, label, raw, header_lines)
    if bars is not None:
        return bars

    raw.seek(0)
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    try:
        return _KlineRowParser(spec, kline_file, label).read(text)
    finally:
        # The caller closes `raw`; detaching keeps the wrapper from closing it a second time.
        text.detach()


def _is_header(first_line: bytes) -> bool:
    return _is_header_cell(first_line.split(b",", 1)[0].decode("utf-8-sig", errors="replace"))


def _is_header_cell(cell: str) -> bool:
    return cell.strip().lower().replace(" ", "_") == KLINE_COLUMNS[_TIME_COLUMN]


def _read_csv_fast(kline_file: KlineFile, label: str, raw: BinaryIO, header_lines: int) -> FileBars | None:
    """Return the bars of a well-formed kline CSV, or None when any row needs a closer look."""
    try:
        table = pa_csv.read_csv(
            raw,
            read_options=pa_csv.ReadOptions(column_names=KLINE_COLUMNS, skip_rows=header_lines),
            # A blank line, or quotes, would make row numbers differ from line numbers.
            parse_options=pa_csv.ParseOptions(quote_char=False, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                include_columns=list(_READ_COLUMNS),
                column_types={
                    name: pa.int64() if name == KLINE_COLUMNS[_TIME_COLUMN] else pa.float64()
                    for name in _READ_COLUMNS
                },
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None

    raw_times = table.column(KLINE_COLUMNS[_TIME_COLUMN]).to_numpy()
    if len(raw_times) == 0:
        return _empty_file_bars(label)
    if (raw_times < 0).any():
        return None
    in_microseconds = raw_times >= _MICROSECONDS_FROM
    if (in_microseconds != in_microseconds[0]).any():
        return None
    units = _MICROSECONDS_PER_SECOND if in_microseconds[0] else _MILLISECONDS_PER_SECOND
    seconds, remainders = np.divmod(raw_times, units)
    if remainders.any() or (seconds < kline_file.earliest_open).any() or (seconds >= kline_file.end).any():
        return None

    values = np.column_stack([table.column(name).to_numpy() for name in _READ_COLUMNS[1:]])
    if not np.isfinite(values).all():
        return None
    return FileBars(
        file=label,
        position_kind="line",
        ts=seconds.astype(np.int64),
        values=values,
        positions=np.arange(1 + header_lines, 1 + header_lines + len(seconds), dtype=np.int64),
    )


def _empty_file_bars(label: str) -> FileBars:
    return FileBars(
        file=label,
        position_kind="line",
        ts=np.empty(0, np.int64),
        values=np.empty((0, len(VALUE_COLUMNS)), np.float64),
        positions=np.empty(0, np.int64),
    )


class _KlineRowParser:
    """Parser of a kline CSV row by row, which names the line, column and value of the first bad cell."""

    def __init__(self, spec: str, kline_file: KlineFile, label: str) -> None:
        self.spec = spec
        self.kline_file = kline_file
        self.label = label
        # Units per second of the file's open times, set by its first data row.
        self.units_per_second: int | None = None

    def read(self, text: TextIO) -> FileBars:
        ts = array("q")
        values = array("d")
        lines = array("q")
        reader = csv.reader(text)
        try:
            for row in reader:
                line = reader.line_num
                if not row or (not ts and _is_header_cell(row[0])):
                    continue
                self._check_width(line, row)
                time = self._parse_open_time(line, row[_TIME_COLUMN])
                values.extend(self._parse_value(line, row, index, time) for index in _VALUE_COLUMN_INDEXES)
                ts.append(time)
                lines.append(line)
        except UnicodeDecodeError as error:
            raise _file_error(self.spec, self.kline_file, self.label, _("the file is not UTF-8 text")) from error
        except csv.Error as error:
            problem = _("line {line}: the CSV is malformed: {error}").format(line=reader.line_num, error=error)
            raise _file_error(self.spec, self.kline_file, self.label, problem) from error

        return FileBars(
            file=self.label,
            position_kind="line",
            ts=np.frombuffer(ts, dtype=np.int64).copy(),
            values=np.frombuffer(values, dtype=np.float64).reshape(len(ts), len(VALUE_COLUMNS)).copy(),
            positions=np.frombuffer(lines, dtype=np.int64).copy(),
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

        raw_time = int(cell)
        units = _MICROSECONDS_PER_SECOND if raw_time >= _MICROSECONDS_FROM else _MILLISECONDS_PER_SECOND
        if self.units_per_second is None:
            self.units_per_second = units
        elif units != self.units_per_second:
            problem = _(
                "the first row of the file gives open times in {unit}, but this row uses the other unit"
            ).format(unit=_unit_name(self.units_per_second))
            raise self._row_error(line, column, text, problem, UNKNOWN_TIME)

        seconds, remainder = divmod(raw_time, units)
        if remainder:
            problem = _("the bar open time is not a whole second")
            raise self._row_error(line, column, text, problem, UNKNOWN_TIME)
        if not self.kline_file.earliest_open <= seconds < self.kline_file.end:
            problem = _(
                "the bar opens at {time}, outside the period from {start} to {end} that the file name gives"
            ).format(
                time=format_time(seconds),
                start=format_utc(self.kline_file.start),
                end=format_utc(self.kline_file.end),
            )
            raise self._row_error(line, column, text, problem, format_time(seconds))
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
        return _data_error(self.spec, self.kline_file, reason, time)


def _unit_name(units_per_second: int) -> str:
    return _("microseconds") if units_per_second == _MICROSECONDS_PER_SECOND else _("milliseconds")


def _data_error(spec: str, kline_file: KlineFile, reason: str, time: str) -> InvalidSourceData:
    series = kline_file.series
    return InvalidSourceData(source=spec, symbol=series.symbol, timeframe=series.timeframe, time=time, reason=reason)


def _file_error(spec: str, kline_file: KlineFile, label: str, problem: str) -> InvalidSourceData:
    reason = _(InvalidFile.template).format(path=label, reason=problem)
    return _data_error(spec, kline_file, reason, UNKNOWN_TIME)


class BinanceSource(Source):
    """Bars from the data.binance.vision kline files in one directory tree."""

    name = SOURCE_NAME

    def __init__(self, directory: Path, page_bars: int = PAGE_BARS) -> None:
        self.directory = directory
        self.page_bars = page_bars

    def spec(self) -> str:
        return f"{SOURCE_NAME}:{self.directory}"

    async def list_series(self) -> list[Series]:
        """Return the series of the kline files under the directory, sorted.

        Raises SourceDirectoryNotFound when the directory does not exist.
        """
        check_directory(self.spec(), self.directory)
        kline_files = await anyio.to_thread.run_sync(find_kline_files, self.directory)
        return sorted({kline_file.series for kline_file in kline_files})

    async def fetch(self, request: FetchRequest, outcome: FetchOutcome) -> AsyncIterator[Page]:
        """Yield the bars of `request.series` from `request.since` on, reading its files one at a time.

        Files whose period ends before `since` or that start after `until`
        are not read, and bars outside [since, until) are dropped. Raises
        SymbolNotFound when the directory is missing or contains no file of
        the series, InvalidSourceData for bad data, and SourceUnavailable
        when a file cannot be read.
        """
        series = request.series
        series_files = await self._series_files(series)
        outcome.info = SeriesInfo(series=series, timezone=CRYPTO_TIME_ZONE)

        selected = list(_select_files(series_files, request.since, request.until))
        merger = BarMerger(self.spec(), series)
        pages = PageBuffer(request.since, request.until, self.page_bars)
        for index, kline_file in enumerate(selected):
            file_hash = await anyio.to_thread.run_sync(self._hash, kline_file)
            if file_hash not in request.skip_file_hashes:
                merger.add(await anyio.to_thread.run_sync(read_kline_file, self.spec(), kline_file))
                outcome.files_read.append((str(kline_file.path), file_hash))
            # Later files contain no bar that opens before this limit, so the bars before it are final.
            limit = selected[index + 1].earliest_open if index + 1 < len(selected) else None
            for page in pages.add(merger.take_before(limit)):
                yield page
        for page in pages.finish():
            yield page

        # A file whose period ends before `since` contains only older bars.
        skipped_older = request.since is not None and series_files[0].end <= request.since
        outcome.history_exhausted = not (skipped_older or pages.dropped_older)

    async def _series_files(self, series: Series) -> list[KlineFile]:
        """Return the files of `series` in the order of their periods, or raise SymbolNotFound."""
        if not self.directory.is_dir():
            raise SymbolNotFound(
                source=self.spec(),
                symbol=series.symbol,
                timeframe=series.timeframe,
                reason=_("directory not found: {path}").format(path=self.directory),
            )
        kline_files = await anyio.to_thread.run_sync(find_kline_files, self.directory)
        series_files = [kline_file for kline_file in kline_files if kline_file.series == series]
        if not series_files:
            raise SymbolNotFound(
                source=self.spec(),
                symbol=series.symbol,
                timeframe=series.timeframe,
                reason=_("no kline file of this series under {path}").format(path=self.directory),
            )
        return sorted(series_files, key=lambda kline_file: (kline_file.start, kline_file.end, str(kline_file.path)))

    def _hash(self, kline_file: KlineFile) -> str:
        try:
            return hash_file(kline_file.path)
        except OSError as error:
            reason = _(InvalidFile.template).format(
                path=str(kline_file.path),
                reason=_("cannot open the file: {error}").format(error=error.strerror or error),
            )
            raise SourceUnavailable(source=self.spec(), reason=reason) from error


def _select_files(files: list[KlineFile], since: int | None, until: int | None) -> Iterator[KlineFile]:
    """Yield the files that may contain bars in [since, until), keeping their order."""
    for kline_file in files:
        if since is not None and kline_file.end <= since:
            continue
        if until is not None and kline_file.earliest_open >= until:
            continue
        yield kline_file
