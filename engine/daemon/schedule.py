"""When scheduled jobs run: cron expressions in a time zone, and fixed intervals.

A cron expression is read by croniter against local wall-clock time in the
configured zone. Daylight saving time changes follow Vixie cron:

- A job whose hour field is a wildcard (`*/30 * * * *`, `0 * * * *`) follows
  elapsed time. In the repeated hour of autumn it runs in both copies of the
  hour. In the skipped hour of spring it does not run, and the next run comes
  the usual interval after the last one.
- A job at a fixed wall-clock time (`30 1 * * *`) runs once a day: at the
  first of two occurrences in autumn, and at the end of the gap (the next
  valid instant) when spring skips its time.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import croniter

# Offset changes further than this from an instant cannot move a wall-clock
# time across it, since no zone changes its offset by a day.
_CHANGE_REACH = timedelta(days=1)


@dataclass(frozen=True)
class CronSchedule:
    """A cron expression evaluated in one time zone."""

    expression: str
    zone: ZoneInfo

    @property
    def follows_elapsed_time(self) -> bool:
        """True when the hour field is a wildcard, so DST changes leave the run interval alone."""
        if self.expression.startswith("@"):
            return self.expression == "@hourly"
        return self.expression.split()[1].startswith("*")

    def next_after(self, moment: datetime) -> datetime:
        """Return the first run instant strictly after the aware datetime `moment`, in UTC."""
        local = moment.astimezone(self.zone).replace(tzinfo=None)
        candidates = croniter.croniter(self.expression, local - _offset_change_near(moment, self.zone))
        best: datetime | None = None
        while True:
            wall = candidates.get_next(datetime)
            # Later wall-clock times map to later instants, except across an
            # offset change, which can move them back by the size of the change.
            if best is not None:
                reach = best.astimezone(self.zone).replace(tzinfo=None) + _offset_change_near(best, self.zone)
                if wall > reach:
                    return best
            for instant in self._instants(wall):
                if instant > moment and (best is None or instant < best):
                    best = instant

    def _instants(self, wall: datetime) -> list[datetime]:
        """Return the UTC instants at which the naive local time `wall` runs this schedule."""
        first = _to_utc(wall, self.zone, fold=0)
        second = _to_utc(wall, self.zone, fold=1)
        if _exists(wall, self.zone):
            if first == second or not self.follows_elapsed_time:
                return [first]
            return [first, second]
        if self.follows_elapsed_time:
            return []
        return [_end_of_gap(wall, self.zone)]


@dataclass(frozen=True)
class IntervalSchedule:
    """Every `seconds` of elapsed time, counted from the previous run."""

    seconds: float

    def next_after(self, moment: datetime) -> datetime:
        return moment.astimezone(timezone.utc) + timedelta(seconds=self.seconds)


def _offset_change_near(moment: datetime, zone: ZoneInfo) -> timedelta:
    """Return how far the zone's UTC offset moves within a day of `moment`: zero away from DST changes."""
    before = (moment - _CHANGE_REACH).astimezone(zone).utcoffset()
    after = (moment + _CHANGE_REACH).astimezone(zone).utcoffset()
    return abs(after - before)


def _to_utc(wall: datetime, zone: ZoneInfo, fold: int) -> datetime:
    return wall.replace(tzinfo=zone, fold=fold).astimezone(timezone.utc)


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    """False for a wall-clock time inside a spring-forward gap."""
    round_trip = _to_utc(wall, zone, fold=0).astimezone(zone).replace(tzinfo=None)
    return round_trip == wall


def _end_of_gap(wall: datetime, zone: ZoneInfo) -> datetime:
    """Return the first instant after the gap that contains the nonexistent local time `wall`."""
    # Within a gap, fold=1 reads the time with the offset in force before the
    # change, which gives an instant before it; fold=0 gives one after it.
    low = _to_utc(wall, zone, fold=1)
    high = _to_utc(wall, zone, fold=0)
    low, high = min(low, high), max(low, high)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)
