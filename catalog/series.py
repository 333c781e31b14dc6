"""Series names, timeframes and the window function that cuts a series into chunks.

A series is `(symbol, timeframe)`. A window is a fixed span of bar time,
aligned in UTC, whose bars form one chunk. The window of a bar depends only
on its timeframe and its time, so the same bars always fall into the same
chunks and dedupe across backups.
"""

import re
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidSymbol, InvalidTimeframe

# Bars per full window for a gap-free series. Windows are
# WINDOW_BARS * timeframe seconds long and aligned to multiples of that
# span since 1970-01-01T00:00Z: one-minute bars get windows of 8192 minutes
# (about 5.7 days), daily bars windows of 8192 days. Changing this constant
# changes every chunk id, so it is part of the repository format. Larger
# windows mean fewer object files, and every file costs an fsync; patches
# keep the cost of the growing last window small.
WINDOW_BARS = 8192

_MINUTE = 60
_HOUR = 3600
_DAY = 86_400
# A month has no fixed length, so monthly bars use 30 days for the window span.
_UNIT_SECONDS = {"S": 1, "D": _DAY, "W": 7 * _DAY, "M": 30 * _DAY}

# Maximum length of one bar: 10 years of 365 days, which is 5_256_000
# minutes, 3650D, 521W or 121M. It keeps the window span (WINDOW_BARS bars,
# at most about 2.6e12 seconds) within int64, which the bar cache stores as an
# SQLite INTEGER and numpy uses for window starts.
MAX_TIMEFRAME_SECONDS = 10 * 365 * _DAY
# A count with more digits than this is over the limit in every unit, and
# int() of a very long digit string raises ValueError, so it is checked first.
_MAX_COUNT_DIGITS = len(str(MAX_TIMEFRAME_SECONDS))

# `m` and `min` mean minutes and `h` means hours, while `M` means months, so
# only the `min` and `h` suffixes ignore case. The units S, D, W and M are
# upper case only. [0-9] keeps out other Unicode digits, which int() accepts.
_TIMEFRAME_PATTERN = re.compile(
    r"(?P<minutes>[0-9]+)(?:m|(?i:min))?"
    r"|(?P<hours>[0-9]+)[hH]"
    r"|(?P<count>[0-9]*)(?P<unit>[SDWMsdw])"
)
_EXCHANGE_PATTERN = re.compile(r"[A-Za-z0-9_.\-]+")
# A colon separates the exchange from the ticker. The backup and restore
# options take comma-separated symbol lists, so a ticker with a comma could
# never be selected there.
_TICKER_EXCLUDED = frozenset(",:")


@dataclass(frozen=True, order=True)
class Series:
    """One series of bars: a symbol and a normalised timeframe."""

    symbol: str
    timeframe: str

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe}"


def normalize_timeframe(text: str) -> str:
    """Return TradingView notation for `text`: minutes as integers, then 1S, 1D, 1W, 1M.

    Accepts a bare number or `15m`, `1min`, `1MIN` for minutes, `1h` or `4H`
    for hours, and `S`, `D`, `W`, `M` with an optional count for seconds,
    days, weeks and months, where `s`, `d` and `w` work too. The case of `m`
    matters: `15m` is 15 minutes and `1M` is one month. Raises InvalidTimeframe for anything else, for a zero
    count and for bars longer than MAX_TIMEFRAME_SECONDS.
    """
    match = _TIMEFRAME_PATTERN.fullmatch(text.strip())
    if match is None:
        raise InvalidTimeframe(value=text)

    if match["minutes"] is not None:
        count = _parse_count(text, match["minutes"])
        normalized = str(count)
    elif match["hours"] is not None:
        count = _parse_count(text, match["hours"])
        normalized = str(count * _HOUR // _MINUTE)
    else:
        count = _parse_count(text, match["count"] or "1")
        normalized = f"{count}{match['unit'].upper()}"

    if timeframe_seconds(normalized) > MAX_TIMEFRAME_SECONDS:
        raise InvalidTimeframe(value=text)
    return normalized


def _parse_count(text: str, digits: str) -> int:
    """Return the positive count `digits` of the timeframe `text`, or raise InvalidTimeframe."""
    significant = digits.lstrip("0")
    if not significant or len(significant) > _MAX_COUNT_DIGITS:
        raise InvalidTimeframe(value=text)
    return int(significant)


def timeframe_seconds(timeframe: str) -> int:
    """Return the nominal length of one bar of a normalised timeframe, in seconds."""
    if timeframe.isdigit():
        return int(timeframe) * _MINUTE
    return int(timeframe[:-1]) * _UNIT_SECONDS[timeframe[-1]]


def window_span(timeframe: str) -> int:
    """Return the length of one window of `timeframe`, in seconds."""
    return WINDOW_BARS * timeframe_seconds(timeframe)


def window_start(timeframe: str, ts: int) -> int:
    """Return the start, in Unix seconds, of the window that contains a bar opening at `ts`."""
    span = window_span(timeframe)
    return ts - ts % span


def window_starts(timeframe: str, ts: np.ndarray) -> np.ndarray:
    """Return the window start of every bar time in `ts` (int64 Unix seconds)."""
    span = window_span(timeframe)
    return ts - np.mod(ts, span)


def validate_symbol(symbol: str) -> str:
    """Return `symbol` unchanged if it is EXCHANGE:TICKER, else raise InvalidSymbol.

    The exchange contains ASCII letters, digits, `_`, `.` and `-`. The ticker
    may contain any printable character, such as `!`, `/`, `&` or CJK
    letters, except a comma, a colon and whitespace. Control, format and
    surrogate characters are rejected as well.
    """
    exchange, separator, ticker = symbol.partition(":")
    if not separator or _EXCHANGE_PATTERN.fullmatch(exchange) is None or not _is_valid_ticker(ticker):
        raise InvalidSymbol(value=symbol)
    return symbol


def _is_valid_ticker(ticker: str) -> bool:
    # str.isprintable() is False for control, format (such as U+200B), surrogate
    # and unassigned characters and for every space except the ASCII space.
    return (
        bool(ticker)
        and ticker.isprintable()
        and not any(character.isspace() or character in _TICKER_EXCLUDED for character in ticker)
    )
