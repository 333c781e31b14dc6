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
_DAY = 86_400
# A month has no fixed length, so monthly bars use 30 days for the window span.
_UNIT_SECONDS = {"S": 1, "D": _DAY, "W": 7 * _DAY, "M": 30 * _DAY}

_TIMEFRAME_PATTERN = re.compile(
    r"^(?:(?P<minutes>\d+)(?:m|min)?|(?P<hours>\d+)h|(?P<count>\d*)(?P<unit>[SDWM]))$"
)
_SYMBOL_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+:[^\s:]+$")


@dataclass(frozen=True, order=True)
class Series:
    """One series of bars: a symbol and a normalised timeframe."""

    symbol: str
    timeframe: str

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe}"


def normalize_timeframe(text: str) -> str:
    """Return TradingView notation for `text`: minutes as integers, then 1S, 1D, 1W, 1M.

    Accepts `D`, `W`, `M` for one day, week or month, `1min`/`15m` for
    minutes, `1h`/`4h` for hours. Raises InvalidTimeframe for anything else.
    """
    match = _TIMEFRAME_PATTERN.match(text.strip())
    if match is None:
        raise InvalidTimeframe(value=text)

    if match["minutes"] is not None:
        minutes = int(match["minutes"])
        if minutes <= 0:
            raise InvalidTimeframe(value=text)
        return str(minutes)

    if match["hours"] is not None:
        hours = int(match["hours"])
        if hours <= 0:
            raise InvalidTimeframe(value=text)
        return str(hours * 60)

    count = int(match["count"] or 1)
    if count <= 0:
        raise InvalidTimeframe(value=text)
    return f"{count}{match['unit']}"


def timeframe_seconds(timeframe: str) -> int:
    """Return the nominal length of one bar of a normalised timeframe, in seconds."""
    if timeframe.isdigit():
        return int(timeframe) * _MINUTE
    return int(timeframe[:-1]) * _UNIT_SECONDS[timeframe[-1]]


def window_span(timeframe: str) -> int:
    """Return the length of one window of `timeframe`, in seconds."""
    return WINDOW_BARS * timeframe_seconds(timeframe)


def window_start(timeframe: str, ts: int) -> int:
    """Return the start, in Unix seconds, of the window that holds a bar opening at `ts`."""
    span = window_span(timeframe)
    return ts - ts % span


def window_starts(timeframe: str, ts: np.ndarray) -> np.ndarray:
    """Return the window start of every bar time in `ts` (int64 Unix seconds)."""
    span = window_span(timeframe)
    return ts - np.mod(ts, span)


def validate_symbol(symbol: str) -> str:
    """Return `symbol` unchanged if it is EXCHANGE:TICKER, else raise InvalidSymbol."""
    if not _SYMBOL_PATTERN.match(symbol):
        raise InvalidSymbol(value=symbol)
    return symbol
