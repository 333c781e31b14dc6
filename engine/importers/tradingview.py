"""Reader for TradingView "Export chart data" CSV files and MetaTrader CSV exports.

File names. TradingView names an export `EXCHANGE_TICKER, TIMEFRAME.csv`, with
the colon of the symbol replaced by `_`. Exchange prefixes may contain `_`
themselves (`CME_MINI_ES1!` is `CME_MINI:ES1!`), so the colon is restored at
the LAST `_` of the part before the comma. That is right for every exchange
prefix with `_` and wrong only for tickers that contain `_`, such as Pine
Seeds symbols (`SEED_CRYPTO_SANTIMENT:BTC_DEV_ACTIVITY`). For those, the
`symbol` argument (`--symbol`) overrides the name. A browser's copy suffix
such as ` (1)` is ignored, and the timeframe goes through normalize_timeframe,
so `1min` becomes `1`. A name with bytes that are not UTF-8 gives no
symbol, and such bytes show as U+FFFD in messages and in ImportedSeries.path.

Header. Column names are matched case-insensitively after stripping spaces:
time, open, high, low, close and volume. The first column with one of these
names is the bar column, and later columns with the same name are ignored,
because TradingView puts indicator plots after the price columns and an
indicator may be called `Volume` or `close`. All other columns are ignored.
`time` and `close` are required. A missing open, high, low or volume column
gives NULL values. A header that starts with `Date,Time` is a MetaTrader
export, whose bar time is the date cell plus the time-of-day cell. Cells are
separated by commas, and a one-cell header that contains `;` or a tab is
rejected as having the wrong delimiter.

Values. Prices and volumes are read with float(), so equal text gives the
same double bit for bit. An empty cell or `NaN` (any case) is NULL.
Anything else that is not a decimal number is an InvalidRow error, and so
are `inf` and numbers too large for a float. Every row needs a close, so a
NULL close is an InvalidRow error, while open, high, low and volume may be
NULL. A high below the low is an InvalidRow error. Other relations, such as a
close above the high, are not checked, and values are stored as read.

Rows. Rows are sorted by time. Rows with the same time and the same values bit
for bit are merged into one bar. Rows with the same time and different values
raise InvalidRow naming both lines. Every row must have as many cells as the
header. Blank lines are skipped.

Line numbers in errors are 1-based physical lines of the file, with the
header on line 1.
"""

import csv
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import TextIO

from zoneinfo import ZoneInfo

import numpy as np

from ...catalog.bars import VALUE_COLUMNS, BarColumns
from ...catalog.series import normalize_timeframe, validate_symbol
from ...errors import InvalidFile, InvalidRow, InvalidSymbol, InvalidTimeframe, NotFound
from ...i18n import _
from .timeparse import BarTimeParser, TimeValueError, format_utc, load_time_zone

_FILE_NAME_PATTERN = re.compile(
    r"(?P<stem>[^,]+),\s*(?P<timeframe>[^\s,()]+)(?:\s*\(\d+\))?\.csv",
    re.IGNORECASE,
)
_NUMBER_PATTERN = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NULL = math.nan
# Delimiters that some spreadsheet programs and locales use instead of commas.
_OTHER_DELIMITERS = (";", "\t")
# The text of the csv.Error that CPython's _csv module raises when a field is
# longer than csv.field_size_limit() characters.
_FIELD_LIMIT_ERROR = "field larger than field limit"


@dataclass(frozen=True)
class ImportedSeries:
    """Bars read from one file, with the series they belong to."""

    symbol: str
    timeframe: str
    bars: BarColumns
    path: str
    rows_read: int
    duplicates_merged: int


@dataclass(frozen=True)
class _Layout:
    """Positions of the bar columns in a header, and their names as written."""

    width: int
    time_index: int
    # MetaTrader exports keep the date in its own column before the time.
    date_index: int | None
    # Index of each value column in VALUE_COLUMNS order, None when absent.
    value_indexes: tuple[int | None, ...]
    names: tuple[str, ...]


def parse_series_name(filename: str) -> tuple[str, str]:
    """Return `(symbol, timeframe)` from a TradingView export name such as `CBOT_CORN, 1D.csv`.

    `filename` may include folders. The timeframe is normalised. Raises
    InvalidFile when the name does not follow the pattern.
    """
    symbol, timeframe = _parse_name_parts(filename)
    if symbol is None or timeframe is None:
        raise InvalidFile(
            path=_display_path(filename), reason=_name_error_reason(need_symbol=True, need_timeframe=True)
        )
    return symbol, timeframe


def read_bar_file(
    path: str | os.PathLike,
    symbol: str | None = None,
    timeframe: str | None = None,
    tz: str | None = None,
    check_high_low: bool = True,
) -> ImportedSeries:
    """Read the bars of a TradingView or MetaTrader CSV export.

    `symbol` and `timeframe` override the values taken from the file name.
    `tz` is the IANA time zone of date-times that carry no UTC offset.
    `check_high_low=False` leaves the high-below-low check to the caller,
    as the sync engine does so that a user can accept such bars.
    Raises InvalidInput subclasses for a bad name, option, header or row, and
    NotFound when the file does not exist. It returns a complete result or
    raises, so a caller never sees part of a file.
    """
    # The name keeps undecodable bytes as surrogate escapes, so a symbol taken
    # from it is rejected instead of containing U+FFFD. Messages and the result
    # use the display path, which always encodes to UTF-8.
    name = os.fsdecode(path)
    display_path = _display_path(path)
    # Open first, so a missing file is reported before problems with its name or options.
    with _open_csv(path, display_path) as file:
        series_symbol, series_timeframe = _resolve_series(name, display_path, symbol, timeframe)
        zone: ZoneInfo | None = load_time_zone(tz) if tz is not None else None
        parser = BarTimeParser(series_timeframe, zone)
        ts, values, lines, layout = _read_rows(display_path, file, parser, check_high_low)

    rows_read = len(ts)
    bars, duplicates_merged = _build_bars(display_path, layout, ts, values, lines)
    return ImportedSeries(
        symbol=series_symbol,
        timeframe=series_timeframe,
        bars=bars,
        path=display_path,
        rows_read=rows_read,
        duplicates_merged=duplicates_merged,
    )


def _display_path(path: str | os.PathLike) -> str:
    """Return `path` as text that encodes to UTF-8, with U+FFFD for each byte that is not UTF-8."""
    return os.fsdecode(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _parse_name_parts(filename: str) -> tuple[str | None, str | None]:
    """Return the symbol and timeframe of a file name, each None when its part does not parse."""
    match = _FILE_NAME_PATTERN.fullmatch(PurePath(filename).name)
    if match is None:
        return None, None

    symbol = None
    exchange, separator, ticker = match["stem"].strip().rpartition("_")
    if separator and exchange and ticker:
        try:
            symbol = validate_symbol(f"{exchange}:{ticker}")
        except InvalidSymbol:
            symbol = None

    try:
        timeframe = normalize_timeframe(match["timeframe"])
    except InvalidTimeframe:
        timeframe = None
    return symbol, timeframe


def _name_error_reason(need_symbol: bool, need_timeframe: bool) -> str:
    if need_symbol and need_timeframe:
        return _(
            "the file name does not match TradingView's pattern 'EXCHANGE_TICKER, TIMEFRAME.csv', "
            "so the symbol and timeframe are unknown: pass --symbol and --timeframe"
        )
    if need_symbol:
        return _(
            "the file name does not match TradingView's pattern 'EXCHANGE_TICKER, TIMEFRAME.csv', "
            "so the symbol is unknown: pass --symbol"
        )
    return _(
        "the file name does not match TradingView's pattern 'EXCHANGE_TICKER, TIMEFRAME.csv', "
        "so the timeframe is unknown: pass --timeframe"
    )


def _resolve_series(name: str, path: str, symbol: str | None, timeframe: str | None) -> tuple[str, str]:
    """Return the series from the arguments, else from the file name `name`. `path` is for messages."""
    if symbol is not None:
        symbol = validate_symbol(symbol)
    if timeframe is not None:
        timeframe = normalize_timeframe(timeframe)
    if symbol is not None and timeframe is not None:
        return symbol, timeframe

    name_symbol, name_timeframe = _parse_name_parts(name)
    symbol = symbol if symbol is not None else name_symbol
    timeframe = timeframe if timeframe is not None else name_timeframe
    if symbol is None or timeframe is None:
        raise InvalidFile(
            path=path,
            reason=_name_error_reason(need_symbol=symbol is None, need_timeframe=timeframe is None),
        )
    return symbol, timeframe


def _find_layout(path: str, header: list[str]) -> _Layout:
    names = tuple(cell.strip() for cell in header)
    first_index: dict[str, int] = {}
    for index, name in enumerate(names):
        first_index.setdefault(name.lower(), index)

    for required in ("time", "close"):
        if required not in first_index:
            raise InvalidFile(
                path=path,
                reason=_(
                    "missing column {column!r} in the header {header!r}. tvcat reads TradingView "
                    "exports (time,open,high,low,close,Volume) and MetaTrader exports "
                    "(Date,Time,Open,High,Low,Close,Volume)"
                ).format(column=required, header=",".join(header)),
            )

    is_metatrader = len(names) >= 2 and names[0].lower() == "date" and names[1].lower() == "time"
    return _Layout(
        width=len(names),
        time_index=first_index["time"],
        date_index=0 if is_metatrader else None,
        value_indexes=tuple(first_index.get(column) for column in VALUE_COLUMNS),
        names=names,
    )


def _open_csv(path: str | os.PathLike, display_path: str) -> TextIO:
    try:
        # utf-8-sig drops a byte order mark, and newline="" lets csv handle CRLF.
        return open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError as error:
        raise NotFound(detail=_("file not found: {path}").format(path=display_path)) from error
    except OSError as error:
        raise InvalidFile(
            path=display_path, reason=_("cannot open the file: {error}").format(error=error.strerror)
        ) from error


def _read_rows(
    path: str, file: TextIO, parser: BarTimeParser, check_high_low: bool = True
) -> tuple[list[int], list[tuple[float, ...]], list[int], _Layout]:
    """Read and parse every data row of the open file at `path`.

    Returns the bar times, the values of the value columns present in the
    header (in VALUE_COLUMNS order), the line number of each row and the
    layout. Raises InvalidFile or InvalidRow at the first problem.
    """
    ts: list[int] = []
    values: list[tuple[float, ...]] = []
    lines: list[int] = []
    reader = csv.reader(file)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidFile(
                path=path,
                reason=_("the file is empty: expected a header row such as time,open,high,low,close,Volume"),
            )
        _check_delimiter(path, header)
        layout = _find_layout(path, header)
        present = [(index, layout.names[index]) for index in layout.value_indexes if index is not None]
        positions = _value_positions(layout)

        previous_line = reader.line_num
        for row in reader:
            # A row that spans lines (a quoted newline) starts after the previous row.
            line = previous_line + 1
            previous_line = reader.line_num
            if not row:
                continue

            _check_row_width(path, line, row, layout)
            ts.append(_parse_row_time(path, line, row, layout, parser))
            row_values = tuple(_parse_cell(path, line, name, row[index]) for index, name in present)
            _check_prices(path, line, row, layout, positions, row_values, check_high_low)
            values.append(row_values)
            lines.append(line)
    except UnicodeDecodeError as error:
        raise InvalidFile(
            path=path,
            reason=_("the file is not UTF-8 text (invalid bytes near line {line}): save it as UTF-8").format(
                line=reader.line_num + 1
            ),
        ) from error
    except csv.Error as error:
        raise InvalidFile(path=path, reason=_csv_error_reason(reader.line_num, error)) from error

    if not ts:
        raise InvalidFile(path=path, reason=_("no bars: the file has a header but no data rows"))
    return ts, values, lines, layout


def _check_delimiter(path: str, header: list[str]) -> None:
    """Raise InvalidFile when a one-cell header is separated by `;` or tabs instead of commas."""
    if len(header) != 1:
        return
    for delimiter in _OTHER_DELIMITERS:
        if delimiter in header[0]:
            raise InvalidFile(
                path=path,
                reason=_(
                    "the delimiter of the header {header!r} is {delimiter!r}, not a comma: tvcat reads "
                    "comma-separated files as TradingView exports them, so save the file with commas "
                    "between the cells"
                ).format(header=header[0], delimiter=delimiter),
            )


def _csv_error_reason(line: int, error: csv.Error) -> str:
    if str(error).startswith(_FIELD_LIMIT_ERROR):
        return _(
            "line {line}: a cell is longer than {limit} characters, the limit of Python's csv module, "
            "so the file is not a TradingView or MetaTrader bar export: check that you passed the right file"
        ).format(line=line, limit=csv.field_size_limit())
    return _("line {line}: the CSV is malformed: {error}").format(line=line, error=error)


def _check_row_width(path: str, line: int, row: list[str], layout: _Layout) -> None:
    if len(row) == layout.width:
        return
    if len(row) < layout.width:
        column = layout.names[len(row)]
        value = ""
    else:
        # Extra cells have no header name, so name them by position. An
        # unquoted decimal comma such as 1,5 splits a value into two cells.
        column = str(layout.width + 1)
        value = row[layout.width]
    raise InvalidRow(
        path=path,
        line=line,
        column=column,
        value=value,
        reason=_("the row has {count} cells but the header has {expected}").format(
            count=len(row), expected=layout.width
        ),
    )


def _parse_row_time(path: str, line: int, row: list[str], layout: _Layout, parser: BarTimeParser) -> int:
    time_text = row[layout.time_index]
    time_column = layout.names[layout.time_index]
    if layout.date_index is None:
        try:
            return parser.parse(time_text)
        except TimeValueError as error:
            raise InvalidRow(path=path, line=line, column=time_column, value=time_text, reason=str(error)) from error

    date_text = row[layout.date_index]
    try:
        day = parser.parse_date(date_text)
    except TimeValueError as error:
        raise InvalidRow(
            path=path, line=line, column=layout.names[layout.date_index], value=date_text, reason=str(error)
        ) from error
    try:
        time_of_day = parser.parse_time_of_day(time_text)
    except TimeValueError as error:
        raise InvalidRow(path=path, line=line, column=time_column, value=time_text, reason=str(error)) from error
    try:
        return parser.localize(datetime.combine(day, time_of_day))
    except TimeValueError as error:
        # The zone rules apply to date and time together, so show both cells.
        raise InvalidRow(
            path=path, line=line, column=time_column, value=f"{date_text} {time_text}", reason=str(error)
        ) from error


def _value_positions(layout: _Layout) -> dict[str, int]:
    """Map each value column in the header to its position in the parsed values of a row."""
    present_columns = [column for column, index in zip(VALUE_COLUMNS, layout.value_indexes) if index is not None]
    return {column: position for position, column in enumerate(present_columns)}


def _check_prices(
    path: str, line: int, row: list[str], layout: _Layout, positions: dict[str, int], values: tuple[float, ...],
    check_high_low: bool = True,
) -> None:
    """Raise InvalidRow when the close is NULL, or when `check_high_low` and the high is below the low."""
    close_index = layout.value_indexes[VALUE_COLUMNS.index("close")]
    if math.isnan(values[positions["close"]]):
        raise InvalidRow(
            path=path,
            line=line,
            column=layout.names[close_index],
            value=row[close_index],
            reason=_(
                "the close is missing: every bar needs a close price, while open, high, low "
                "and volume may be empty or NaN"
            ),
        )

    if not check_high_low or "high" not in positions or "low" not in positions:
        return
    # A NULL high or low compares False, so it passes.
    if values[positions["high"]] < values[positions["low"]]:
        high_index = layout.value_indexes[VALUE_COLUMNS.index("high")]
        low_index = layout.value_indexes[VALUE_COLUMNS.index("low")]
        raise InvalidRow(
            path=path,
            line=line,
            column=layout.names[high_index],
            value=row[high_index],
            reason=_(
                "{high_column} {high} is below {low_column} {low}: the high of a bar must not be "
                "below its low, so check that the columns are not swapped"
            ).format(
                high_column=layout.names[high_index],
                high=row[high_index].strip(),
                low_column=layout.names[low_index],
                low=row[low_index].strip(),
            ),
        )


def _parse_cell(path: str, line: int, column: str, text: str) -> float:
    stripped = text.strip()
    if not stripped or stripped.lower() == "nan":
        return _NULL
    if _NUMBER_PATTERN.fullmatch(stripped) is None:
        raise InvalidRow(
            path=path,
            line=line,
            column=column,
            value=text,
            reason=_("not a number: use a decimal number with a dot such as 1.5, or NaN or an empty cell for no value"),
        )
    value = float(stripped)
    if math.isinf(value):
        raise InvalidRow(
            path=path, line=line, column=column, value=text, reason=_("the number is too large for a 64-bit float")
        )
    return value


def _build_bars(
    path: str,
    layout: _Layout,
    ts_list: list[int],
    value_rows: list[tuple[float, ...]],
    line_list: list[int],
) -> tuple[BarColumns, int]:
    """Sort the rows by time, merge identical duplicates and return the bars and the merge count."""
    count = len(ts_list)
    present_columns = [column for column, index in zip(VALUE_COLUMNS, layout.value_indexes) if index is not None]
    ts = np.array(ts_list, dtype=np.int64)
    lines = np.array(line_list, dtype=np.int64)
    values = np.array(value_rows, dtype=np.float64).reshape(count, len(present_columns))

    # A stable sort keeps rows with equal times in file order.
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    lines = lines[order]
    values = values[order]

    duplicate_positions = np.flatnonzero(ts[1:] == ts[:-1]) + 1
    if len(duplicate_positions):
        _check_duplicates_identical(path, layout, present_columns, ts, values, lines, duplicate_positions)
        keep = np.ones(count, dtype=bool)
        keep[duplicate_positions] = False
        ts = ts[keep]
        values = values[keep]

    columns = {}
    for column in VALUE_COLUMNS:
        if column in present_columns:
            columns[column] = values[:, present_columns.index(column)]
        else:
            columns[column] = np.full(len(ts), _NULL)
    return BarColumns.from_arrays(ts, **columns), len(duplicate_positions)


def _check_duplicates_identical(
    path: str,
    layout: _Layout,
    present_columns: list[str],
    ts: np.ndarray,
    values: np.ndarray,
    lines: np.ndarray,
    duplicate_positions: np.ndarray,
) -> None:
    """Raise InvalidRow for the first line in the file whose bar time repeats with other values."""
    # Compare bit patterns, so NULLs (all the same NaN) match and -0.0 differs from 0.0.
    bits = values.view(np.int64)
    differs = (bits[duplicate_positions] != bits[duplicate_positions - 1]).any(axis=1)
    conflicts = duplicate_positions[differs]
    if not len(conflicts):
        return

    position = conflicts[np.argmin(lines[conflicts])]
    differing = np.flatnonzero(bits[position] != bits[position - 1])[0]
    column = present_columns[differing]
    name = layout.names[layout.value_indexes[VALUE_COLUMNS.index(column)]]
    raise InvalidRow(
        path=path,
        line=int(lines[position]),
        column=name,
        value=_format_number(values[position, differing]),
        reason=_(
            "line {other_line} has a different bar at the same time {time}, with {column} "
            "{other_value}: remove one of the two rows"
        ).format(
            other_line=int(lines[position - 1]),
            time=format_utc(int(ts[position])),
            column=name,
            other_value=_format_number(values[position - 1, differing]),
        ),
    )


def _format_number(value: float) -> str:
    return "NaN" if math.isnan(value) else repr(float(value))
