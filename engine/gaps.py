"""Missing bars of a series: steps between stored bars that are longer than the bar spacing.

Without session facts, a gap is any step longer than one bar (for monthly
bars, more than one calendar month). When the source gave a time zone and a
trading session (TradingView's `0930-1600:23456` form, days 1 = Sunday to
7 = Saturday) and holidays, a step is a gap only when a bar open that falls
inside the session on a trading day is missing. The bar times are read in
windows, so memory does not grow with the series.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from ..catalog.series import Series, timeframe_seconds
from .cache import BarCache

READ_ROWS = 65_536
# The maximum number of missing bar opens examined one by one inside one step. A longer
# step is counted by spacing alone, so a decade-long hole cannot stall the check.
MAX_STEP_CANDIDATES = 100_000


@dataclass(frozen=True)
class Gap:
    """Bars missing between two stored bars: `after` and `before` are their open times."""

    after: int
    before: int
    missing: int


@dataclass(frozen=True)
class Session:
    """A parsed trading session: time ranges in minutes of the day and the weekdays they run."""

    ranges: tuple[tuple[int, int], ...]
    # ISO weekdays (Monday 1 to Sunday 7) on which the session runs.
    weekdays: frozenset[int]
    zone: ZoneInfo
    holidays: frozenset[date]

    def contains(self, ts: int) -> bool:
        """Tell whether a bar opening at `ts` falls inside the session on a trading day."""
        local = datetime.fromtimestamp(ts, self.zone)
        minute = local.hour * 60 + local.minute
        for start, end in self.ranges:
            if start < end and start <= minute < end:
                return self._trading_day(local.date())
            # An overnight range, such as 1700-1600, belongs to the next day's session after its start.
            if start >= end and minute >= start:
                return self._trading_day(local.date() + timedelta(days=1))
            if start >= end and minute < end:
                return self._trading_day(local.date())
        return False

    def _trading_day(self, day: date) -> bool:
        return day.isoweekday() in self.weekdays and day not in self.holidays


def parse_session(text: str, zone: str, holidays: list[str]) -> Session | None:
    """Parse TradingView's session text; return None for `24x7` or text this parser does not know."""
    text = text.strip()
    if not text or text.lower() == "24x7":
        return None
    ranges_text, _separator, days_text = text.partition(":")
    # TradingView numbers days 1 = Sunday to 7 = Saturday; the default is Monday to Friday.
    tradingview_days = [int(day) for day in days_text if day.isdigit()] or [2, 3, 4, 5, 6]
    weekdays = frozenset(7 if day == 1 else day - 1 for day in tradingview_days)
    ranges = []
    for part in ranges_text.split(","):
        start_text, dash, end_text = part.partition("-")
        if not dash or len(start_text) != 4 or len(end_text) != 4 or not (start_text + end_text).isdigit():
            return None
        ranges.append((int(start_text[:2]) * 60 + int(start_text[2:]), int(end_text[:2]) * 60 + int(end_text[2:])))
    days = frozenset(datetime.strptime(day, "%Y%m%d").date() for day in holidays)
    return Session(tuple(ranges), weekdays, ZoneInfo(zone), days)


def find_gaps(cache: BarCache, series: Series) -> Iterator[Gap]:
    """Yield every gap of the series in time order, using the session facts the cache holds."""
    info = cache.series_info(series)
    session = None
    if info and info["session"] and info["timezone"]:
        session = parse_session(info["session"], info["timezone"], info["holidays"])
    spacing = timeframe_seconds(series.timeframe)
    monthly = series.timeframe.endswith("M")

    previous = None
    for ts in _bar_times(cache, series):
        if previous is not None:
            missing = _missing_between(previous, ts, spacing, monthly, session)
            if missing:
                yield Gap(previous, ts, missing)
        previous = ts


def _bar_times(cache: BarCache, series: Series) -> Iterator[int]:
    cursor = cache.connection.execute(
        "SELECT ts FROM bars WHERE symbol = ? AND timeframe = ? ORDER BY ts", (series.symbol, series.timeframe)
    )
    while rows := cursor.fetchmany(READ_ROWS):
        for (ts,) in rows:
            yield ts


def _missing_between(previous: int, current: int, spacing: int, monthly: bool, session: Session | None) -> int:
    if monthly:
        before = datetime.fromtimestamp(previous, timezone.utc)
        after = datetime.fromtimestamp(current, timezone.utc)
        months = (after.year - before.year) * 12 + after.month - before.month
        return max(months - 1, 0)
    # Half a bar of slack absorbs daily bars that move by an hour with daylight saving.
    step_bars = round((current - previous) / spacing)
    if step_bars <= 1:
        return 0
    if session is None or step_bars > MAX_STEP_CANDIDATES:
        return step_bars - 1
    return sum(1 for index in range(1, step_bars) if session.contains(previous + index * spacing))
