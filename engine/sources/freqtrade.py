"""The `freqtrade` source: the candle files of one exchange's freqtrade data directory.

`freqtrade:DIR` reads DIR and DIR/futures, where `freqtrade download-data`
writes the candles of one exchange (such as user_data/data/binance). File
names have the form `<PAIR>-<TIMEFRAME>[-<CANDLE_TYPE>].<FORMAT>`:

- PAIR is freqtrade's pair with `/` and `:` written as `_`: `XRP_ETH` for the
  spot pair XRP/ETH, `XRP_USDT_USDT` for the futures pair XRP/USDT:USDT.
- TIMEFRAME is a ccxt timeframe such as `5m`, `1h` or `1d`. freqtrade writes
  the month `1M` as `1Mo`, and `1M`, `1Mo` and `1mo` are all read as a month,
  never as a minute.
- CANDLE_TYPE is absent for spot candles and `futures` for futures trade
  candles. The other types freqtrade writes (`mark`, `index`,
  `premiumIndex`, `funding_rate`) are no trade bars, so their files are
  skipped, and a fetch of the same series adds a note about each.
- FORMAT is `feather` (Arrow IPC with the columns date, open, high, low,
  close and volume, date as a UTC timestamp), `parquet` (the same columns),
  `json` (an array of `[ms, open, high, low, close, volume]` rows) or
  `json.gz` (the same, gzip-compressed). `h5` files are skipped with a note,
  because reading HDF5 would need PyTables.

The symbol is `<EXCHANGE>:<BASE><QUOTE>` for spot candles and
`<EXCHANGE>:<BASE><QUOTE>.P` for futures candles, TradingView's suffix for a
perpetual contract. The settle currency of a futures pair is dropped. The
exchange is the name of DIR in upper case, with every character other than
A-Z, 0-9 and `_` replaced by `_`, so `freqtrade:user_data/data/binance`
gives BINANCE:XRPETH.

Bars are kept as given, zero-volume bars that freqtrade filled into gaps
included. A series may have files in several formats, and they are merged.
Two files that give one bar different values are an InvalidSourceData error
naming both. Each file contains a whole series, so the files of the
requested series are read whole, one at a time.
"""

import gzip
import json
import logging
import math
import re
import sys
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import numpy as np
import pyarrow as pa
import pyarrow.compute as pa_compute
import pyarrow.feather as pa_feather
import pyarrow.parquet as pa_parquet

from ...catalog.bars import VALUE_COLUMNS
from ...catalog.series import Series, validate_symbol
from ...errors import InvalidFile, InvalidInput, InvalidSymbol
from ...i18n import N_, _
from ..importers.timeparse import MAX_UNIX_SECONDS, MIN_UNIX_SECONDS
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
from .binance import (
    CRYPTO_TIME_ZONE,
    UNKNOWN_TIME,
    BarMerger,
    FileBars,
    PageBuffer,
    check_directory,
    describe_position,
    format_time,
    interval_to_timeframe,
    require_directory_argument,
)
from .files import PAGE_BARS, hash_file

logger = logging.getLogger(__name__)

SOURCE_NAME = "freqtrade"

# The subdirectory where freqtrade keeps the candles of futures markets.
FUTURES_DIRECTORY = "futures"

# freqtrade's candle columns, in the order of its JSON rows.
CANDLE_COLUMNS = ("date", *VALUE_COLUMNS)

# The candle type of futures trade candles. Spot candles have none.
FUTURES_CANDLE_TYPE = "futures"
# TradingView's ticker suffix for a perpetual contract.
PERPETUAL_SUFFIX = ".P"

_FILE_NAME_PATTERN = re.compile(
    r"(?P<pair>.+)-(?P<timeframe>[0-9]+[A-Za-z]+)(?:-(?P<candle_type>[A-Za-z_]+))?"
    r"\.(?P<format>feather|parquet|json|json\.gz|h5)"
)
_EXCHANGE_EXCLUDED = re.compile(r"[^A-Z0-9_]")

_MILLISECONDS_PER_SECOND = 1_000
_UNITS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
# Characters of a JSON row shown in an error message.
_MAX_ROW_TEXT = 120


class ExchangeNameMissing(InvalidInput):
    """A freqtrade directory whose name gives no exchange for the symbols."""

    template = N_(
        "cannot take an exchange name from the directory {path}: the freqtrade source names symbols after "
        "the directory, so pass the directory of one exchange, such as freqtrade:user_data/data/binance"
    )


def create(argument: str | None, config: object) -> "FreqtradeSource":
    """Build the source of the spec `freqtrade:DIR`. `argument` is DIR, and `config` is not used."""
    directory = require_directory_argument(SOURCE_NAME, argument, "freqtrade:user_data/data/binance")
    return FreqtradeSource(directory)


def exchange_name(directory: Path) -> str:
    """Return the exchange that `directory` names: its name in upper case with other characters as `_`."""
    name = _EXCHANGE_EXCLUDED.sub("_", directory.resolve().name.upper())
    if not name:
        raise ExchangeNameMissing(path=str(directory))
    return name


@dataclass(frozen=True)
class CandleFile:
    """One freqtrade candle file, with the series its name gives."""

    path: Path
    series: Series
    # None for spot candles, else freqtrade's candle type, such as `futures` or `mark`.
    candle_type: str | None
    format: str

    @property
    def readable(self) -> bool:
        """Return True for trade candles (spot or futures) in a format this source reads."""
        return self.candle_type in (None, FUTURES_CANDLE_TYPE) and self.format != "h5"

    def skip_note(self) -> str:
        """Return the note that explains why this file is skipped."""
        if self.format == "h5":
            return _(
                "{file} was skipped: tvcat does not read HDF5 candle files; convert them with "
                "`freqtrade convert-data --format-from hdf5 --format-to feather`"
            ).format(file=self.path)
        return _("{file} was skipped: its candle type {candle_type!r} is not trade bars").format(
            file=self.path, candle_type=self.candle_type
        )


def parse_candle_file_name(path: Path, exchange: str) -> CandleFile | None:
    """Return the series of a freqtrade candle file name, or None for other names."""
    match = _FILE_NAME_PATTERN.fullmatch(path.name)
    if match is None:
        return None
    timeframe = interval_to_timeframe(match["timeframe"])
    if timeframe is None:
        return None

    parts = match["pair"].split("_")
    candle_type = match["candle_type"]
    if candle_type is None:
        ticker = "".join(parts)
    else:
        # freqtrade writes the futures pair BASE/QUOTE:SETTLE as BASE_QUOTE_SETTLE. The settle currency is dropped.
        ticker = "".join(parts[:-1] if len(parts) >= 3 else parts) + PERPETUAL_SUFFIX
    try:
        symbol = validate_symbol(f"{exchange}:{ticker}")
    except InvalidSymbol:
        return None
    return CandleFile(path=path, series=Series(symbol, timeframe), candle_type=candle_type, format=match["format"])


def find_candle_files(directory: Path, exchange: str) -> list[CandleFile]:
    """Return the candle files in `directory` and its `futures` subdirectory, sorted by path."""
    found = []
    for folder in (directory, directory / FUTURES_DIRECTORY):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            candle_file = parse_candle_file_name(path, exchange)
            if candle_file is not None and path.is_file():
                found.append(candle_file)
    return found


def read_candle_file(spec: str, candle_file: CandleFile) -> FileBars:
    """Read the bars of one feather, parquet, JSON or gzip JSON candle file.

    Raises InvalidSourceData for data that does not parse, naming the file,
    row index, column and value, and SourceUnavailable when the file cannot
    be opened or read.
    """
    reader = _CandleReader(spec, candle_file)
    path = candle_file.path
    try:
        if candle_file.format == "feather":
            return reader.table_bars(pa_feather.read_table(path, memory_map=True))
        if candle_file.format == "parquet":
            return reader.table_bars(pa_parquet.read_table(path, memory_map=True))
        if candle_file.format == "json.gz":
            with gzip.open(path, "rb") as file:
                return reader.json_bars(json.load(file))
        with open(path, "rb") as file:
            return reader.json_bars(json.load(file))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        problem = _("the file is not a valid {format} file: {error}").format(format=candle_file.format, error=error)
        raise reader.file_error(problem) from error
    except (gzip.BadGzipFile, zlib.error, EOFError) as error:
        # BadGzipFile is an OSError, so it is caught before the OSError clause.
        problem = _("the file is not valid gzip data: {error}").format(error=error)
        raise reader.file_error(problem) from error
    except UnicodeDecodeError as error:
        raise reader.file_error(_("the file is not UTF-8 text")) from error
    except json.JSONDecodeError as error:
        raise reader.file_error(_("the file is not valid JSON: {error}").format(error=error)) from error
    except OSError as error:
        reason = _(InvalidFile.template).format(
            path=str(path), reason=_("cannot open the file: {error}").format(error=error.strerror or error)
        )
        raise SourceUnavailable(source=spec, reason=reason) from error


class _CandleReader:
    """Converter of the table or JSON rows of one candle file into FileBars."""

    def __init__(self, spec: str, candle_file: CandleFile) -> None:
        self.spec = spec
        self.candle_file = candle_file
        self.label = str(candle_file.path)

    def table_bars(self, table: pa.Table) -> FileBars:
        """Convert an Arrow table with freqtrade's columns, where date is a timestamp column."""
        for name in CANDLE_COLUMNS:
            if name not in table.column_names:
                problem = _(
                    "missing column {column!r}: freqtrade candle files have the columns date, open, high, low, "
                    "close and volume, and this one has {columns}"
                ).format(column=name, columns=", ".join(table.column_names))
                raise self.file_error(problem)

        ts = self._table_times(table.column(CANDLE_COLUMNS[0]))
        columns = [self._table_values(name, table.column(name)) for name in VALUE_COLUMNS]
        return FileBars(
            file=self.label,
            position_kind="row",
            ts=ts,
            values=np.column_stack(columns) if len(ts) else np.empty((0, len(VALUE_COLUMNS)), np.float64),
            positions=np.arange(len(ts), dtype=np.int64),
        )

    def _table_times(self, column: pa.ChunkedArray) -> np.ndarray:
        name = CANDLE_COLUMNS[0]
        if not pa.types.is_timestamp(column.type):
            problem = _("expected a timestamp column, as freqtrade writes the bar open time")
            raise self.row_error(0, name, str(column.type), problem, UNKNOWN_TIME)
        if column.null_count:
            index = pa_compute.index(pa_compute.is_null(column), True).as_py()
            raise self.row_error(index, name, None, _("the bar open time is missing"), UNKNOWN_TIME)

        # Arrow stores a timestamp with a time zone as UTC, and freqtrade writes UTC,
        # so the values of a timestamp column without a zone are taken as UTC too.
        units = _UNITS_PER_SECOND[column.type.unit]
        raw_times = column.cast(pa.int64()).to_numpy()
        seconds, remainders = np.divmod(raw_times, units)
        if remainders.any():
            index = int(np.argmax(remainders != 0))
            value = f"{raw_times[index]} {column.type.unit}"
            raise self.row_error(index, name, value, _("the bar open time is not a whole second"), UNKNOWN_TIME)
        return seconds.astype(np.int64)

    def _table_values(self, name: str, column: pa.ChunkedArray) -> np.ndarray:
        kind = column.type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
            problem = _("expected a number column, not {type}").format(type=kind)
            raise self.row_error(0, name, str(column[0]) if len(column) else "", problem, UNKNOWN_TIME)
        # Nulls become NaN, which the cache stores as NULL.
        values = column.cast(pa.float64()).to_numpy()
        infinite = np.isinf(values)
        if infinite.any():
            index = int(np.argmax(infinite))
            raise self.row_error(index, name, float(values[index]), _("expected a finite number"), UNKNOWN_TIME)
        return values

    def json_bars(self, rows: Any) -> FileBars:
        """Convert freqtrade's JSON candles: an array of [ms, open, high, low, close, volume] rows."""
        if not isinstance(rows, list):
            problem = _("expected a JSON array of [time, open, high, low, close, volume] rows, not {type}").format(
                type=type(rows).__name__
            )
            raise self.file_error(problem)

        for index, row in enumerate(rows):
            self._check_json_row(index, row)
        ts = np.array([row[0] // _MILLISECONDS_PER_SECOND for row in rows], dtype=np.int64)
        # None becomes NaN, which the cache stores as NULL.
        values = np.array([row[1:] for row in rows], dtype=np.float64).reshape(len(rows), len(VALUE_COLUMNS))
        return FileBars(
            file=self.label, position_kind="row", ts=ts, values=values, positions=np.arange(len(rows), dtype=np.int64)
        )

    def _check_json_row(self, index: int, row: Any) -> None:
        if type(row) is not list or len(row) != len(CANDLE_COLUMNS):
            problem = _("expected a row [time, open, high, low, close, volume] of 6 values")
            raise self.row_error(index, _("row"), _row_text(row), problem, UNKNOWN_TIME)

        time = row[0]
        # bool is a subclass of int, so the exact type is checked.
        if type(time) is not int:
            problem = _("expected the bar open time as an integer of Unix milliseconds")
            raise self.row_error(index, CANDLE_COLUMNS[0], time, problem, UNKNOWN_TIME)
        seconds, remainder = divmod(time, _MILLISECONDS_PER_SECOND)
        if remainder:
            problem = _("the bar open time is not a whole second")
            raise self.row_error(index, CANDLE_COLUMNS[0], time, problem, UNKNOWN_TIME)
        if not MIN_UNIX_SECONDS <= seconds <= MAX_UNIX_SECONDS:
            problem = _("the bar open time is outside the years 1 to 9999")
            raise self.row_error(index, CANDLE_COLUMNS[0], time, problem, UNKNOWN_TIME)

        for name, value in zip(VALUE_COLUMNS, row[1:]):
            kind = type(value)
            if kind is float:
                if math.isinf(value):
                    raise self.row_error(index, name, value, _("expected a finite number"), format_time(seconds))
            elif kind is int:
                if not -sys.float_info.max <= value <= sys.float_info.max:
                    problem = _("the number is too large for a 64-bit float")
                    raise self.row_error(index, name, value, problem, format_time(seconds))
            elif value is not None:
                problem = _("expected a number, or null for no value")
                raise self.row_error(index, name, value, problem, format_time(seconds))

    def row_error(self, index: int, column: str, value: Any, problem: str, time: str) -> InvalidSourceData:
        place = describe_position(self.label, "row", index)
        reason = _("{place}, column {column}: invalid value {value!r}: {reason}").format(
            place=place, column=column, value=value, reason=problem
        )
        return self._error(reason, time)

    def file_error(self, problem: str) -> InvalidSourceData:
        return self._error(_(InvalidFile.template).format(path=self.label, reason=problem), UNKNOWN_TIME)

    def _error(self, reason: str, time: str) -> InvalidSourceData:
        series = self.candle_file.series
        return InvalidSourceData(
            source=self.spec, symbol=series.symbol, timeframe=series.timeframe, time=time, reason=reason
        )


def _row_text(row: Any) -> str:
    text = json.dumps(row)
    return text if len(text) <= _MAX_ROW_TEXT else text[: _MAX_ROW_TEXT - 3] + "..."


class FreqtradeSource(Source):
    """Bars from the candle files of one exchange's freqtrade data directory."""

    name = SOURCE_NAME

    def __init__(self, directory: Path, page_bars: int = PAGE_BARS) -> None:
        self.directory = directory
        self.exchange = exchange_name(directory)
        self.page_bars = page_bars

    def spec(self) -> str:
        return f"{SOURCE_NAME}:{self.directory}"

    async def list_series(self) -> list[Series]:
        """Return the series of the readable candle files, sorted, and log the files skipped.

        Raises SourceDirectoryNotFound when the directory does not exist.
        """
        check_directory(self.spec(), self.directory)
        candle_files = await anyio.to_thread.run_sync(find_candle_files, self.directory, self.exchange)
        for candle_file in candle_files:
            if not candle_file.readable:
                logger.info("skipped file=%s candle_type=%s format=%s", candle_file.path, candle_file.candle_type,
                            candle_file.format)
        return sorted({candle_file.series for candle_file in candle_files if candle_file.readable})

    async def fetch(self, request: FetchRequest, outcome: FetchOutcome) -> AsyncIterator[Page]:
        """Yield the bars of `request.series` from `request.since` on.

        Bars outside [since, until) are dropped. Raises SymbolNotFound when
        the directory is missing or contains no readable file of the series,
        InvalidSourceData for bad data, and SourceUnavailable when a file
        cannot be read.
        """
        series = request.series
        if not self.directory.is_dir():
            raise SymbolNotFound(
                source=self.spec(),
                symbol=series.symbol,
                timeframe=series.timeframe,
                reason=_("directory not found: {path}").format(path=self.directory),
            )
        candle_files = await anyio.to_thread.run_sync(find_candle_files, self.directory, self.exchange)
        series_files = [candle_file for candle_file in candle_files if candle_file.series == series]
        readable = [candle_file for candle_file in series_files if candle_file.readable]
        outcome.notes.extend(candle_file.skip_note() for candle_file in series_files if not candle_file.readable)
        if not readable:
            raise SymbolNotFound(
                source=self.spec(),
                symbol=series.symbol,
                timeframe=series.timeframe,
                reason=_("no readable candle file of this series in {path} or its {futures} subdirectory").format(
                    path=self.directory, futures=FUTURES_DIRECTORY
                ),
            )

        outcome.info = SeriesInfo(series=series, timezone=CRYPTO_TIME_ZONE)
        merger = BarMerger(self.spec(), series)
        for candle_file in readable:
            file_hash = await anyio.to_thread.run_sync(self._hash, candle_file)
            if file_hash in request.skip_file_hashes:
                continue
            merger.add(await anyio.to_thread.run_sync(read_candle_file, self.spec(), candle_file))
            outcome.files_read.append((str(candle_file.path), file_hash))

        pages = PageBuffer(request.since, request.until, self.page_bars)
        for page in [*pages.add(merger.take_before(None)), *pages.finish()]:
            yield page
        outcome.history_exhausted = not pages.dropped_older

    def _hash(self, candle_file: CandleFile) -> str:
        try:
            return hash_file(candle_file.path)
        except OSError as error:
            reason = _(InvalidFile.template).format(
                path=str(candle_file.path),
                reason=_("cannot open the file: {error}").format(error=error.strerror or error),
            )
            raise SourceUnavailable(source=self.spec(), reason=reason) from error
