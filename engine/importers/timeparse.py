"""Bar times in import files, converted to Unix seconds UTC.

Accepted cell forms:

- Unix seconds as integer text (`1641164400`) or float text with a zero
  fraction (`1641164400.0`).
- ISO 8601 date-times with a UTC offset: `2024-01-21T23:00:00+09:00`,
  `2005-03-22T23:00:00Z`, `+0900` or `+09` offsets, a space instead of `T`,
  and fractional seconds whose digits are all zero (`.000Z`).
- ISO 8601 dates (`2024-04-09`) for daily, weekly and monthly bars only.
- Date-times without an offset, including MetaTrader's separate date
  (`2019.02.15`) and time (`14:00`) cells, only when a time zone is given.

Bar times must be whole seconds because the bar store keeps int64 seconds, so
a non-zero fraction of a second is rejected instead of being rounded.
"""

import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ...errors import InvalidOption
from ...i18n import _

# datetime covers the years 1 to 9999, so these are the Unix seconds of
# 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z. Any time in milliseconds
# after 1978-01-11 exceeds the maximum, so the range check also catches those.
MIN_UNIX_SECONDS = -62_135_596_800
MAX_UNIX_SECONDS = 253_402_300_799

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_SECOND = timedelta(seconds=1)

_UNIX_PATTERN = re.compile(r"[+-]?\d+(?:\.(?P<fraction>\d*))?")
_ISO_PATTERN = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[T ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?"
    r"(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)
_OFFSET_PATTERN = re.compile(r"(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2})?")
# MetaTrader writes 2019.02.15, and other brokers use - or / with the year first.
_SEPARATE_DATE_PATTERN = re.compile(r"(?P<year>\d{4})(?P<separator>[./-])(?P<month>\d{2})(?P=separator)(?P<day>\d{2})")
_SEPARATE_TIME_PATTERN = re.compile(r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?")

# Units of normalised timeframes whose bars may be stamped with a date alone.
_DATE_ONLY_UNITS = ("D", "W", "M")


class TimeValueError(ValueError):
    """A time cell that cannot be read. The message is the translated reason."""


def load_time_zone(name: str) -> ZoneInfo:
    """Return the IANA time zone `name`, or raise InvalidOption naming it."""
    # NOTE: zoneinfo reads the system zone database or the tzdata package.
    # tzdata is not a declared dependency, so where neither exists (Windows)
    # every name is reported as unknown.
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:
        # ValueError covers empty, absolute and `..` keys, and OSError covers
        # keys that name a folder of the zone database, such as `America`.
        raise InvalidOption(
            detail=_(
                "unknown time zone {name!r}: pass an IANA time zone name "
                "such as UTC, Europe/London or America/New_York"
            ).format(name=name)
        ) from error


def format_utc(ts: int) -> str:
    """Format Unix seconds as ISO 8601 in UTC with a `Z` suffix."""
    moment = _EPOCH + timedelta(seconds=ts)
    return moment.isoformat().replace("+00:00", "Z")


class BarTimeParser:
    """Converter of the time cells of one file into Unix seconds UTC.

    `zone` is the time zone for date-times without a UTC offset. Without it
    such times are rejected, because guessing a zone would silently shift
    every bar. Times with an offset and Unix seconds ignore `zone`.

    A date without a time of day is accepted only when `timeframe` is daily,
    weekly or monthly, and it is read as 00:00 UTC of that date whatever
    `zone` is, so the same daily bar gets the same key whatever zone the
    chart used.

    NOTE: this assumes the date is the bar's trading day. That is true for a
    Binance daily export, whose bars open at 00:00 UTC, but for a market whose
    session opens the evening before (CME, CBOT), the date may not be the UTC
    date of the same bar in a Unix-seconds export.
    """

    def __init__(self, timeframe: str, zone: ZoneInfo | None = None) -> None:
        self.timeframe = timeframe
        self.zone = zone
        self.date_only_allowed = timeframe.endswith(_DATE_ONLY_UNITS)

    def parse(self, text: str) -> int:
        """Return the Unix seconds of a `time` cell, or raise TimeValueError."""
        text = text.strip()
        if text.isascii() and text.isdigit():
            return _check_unix_range(int(text))

        unix_match = _UNIX_PATTERN.fullmatch(text)
        if unix_match is not None:
            _check_zero_fraction(unix_match["fraction"])
            return _check_unix_range(int(text.partition(".")[0]))

        iso_match = _ISO_PATTERN.fullmatch(text)
        if iso_match is None:
            raise TimeValueError(
                _(
                    "not a valid time: use Unix seconds, ISO 8601 with a UTC offset "
                    "such as 2024-05-01T12:00:00+08:00 or 2024-05-01T04:00:00Z, "
                    "or a date such as 2024-05-01 for daily, weekly or monthly bars"
                )
            )

        if iso_match["hour"] is None:
            return self._parse_date_only(iso_match)

        _check_zero_fraction(iso_match["fraction"])
        moment = _build_datetime(iso_match)
        offset_text = iso_match["offset"]
        if offset_text is None:
            return self.localize(moment)
        return _to_unix(moment.replace(tzinfo=_parse_offset(offset_text)))

    def parse_date(self, text: str) -> date:
        """Return the date of a separate date cell such as `2019.02.15`, or raise TimeValueError."""
        match = _SEPARATE_DATE_PATTERN.fullmatch(text.strip())
        if match is None:
            raise TimeValueError(_("not a valid date: use a year-first date such as 2019.02.15 or 2019-02-15"))
        try:
            return date(int(match["year"]), int(match["month"]), int(match["day"]))
        except ValueError as error:
            raise TimeValueError(_("not a valid calendar date")) from error

    def parse_time_of_day(self, text: str) -> time:
        """Return the time of a separate time cell such as `14:00`, or raise TimeValueError."""
        match = _SEPARATE_TIME_PATTERN.fullmatch(text.strip())
        if match is None:
            raise TimeValueError(_("not a valid time of day: use HH:MM or HH:MM:SS such as 14:00"))
        try:
            return time(int(match["hour"]), int(match["minute"]), int(match["second"] or 0))
        except ValueError as error:
            raise TimeValueError(_("not a valid time of day")) from error

    def localize(self, moment: datetime) -> int:
        """Return the Unix seconds of a date-time without offset, read in `zone`.

        Raises TimeValueError when no zone is set, when the local time falls
        in a gap (the clocks skip it) or when it occurs twice (the clocks
        repeat it), because no single instant matches it.
        """
        zone = self.zone
        if zone is None:
            raise TimeValueError(
                _(
                    "the time has no UTC offset: pass --tz ZONE with the IANA time zone "
                    "of the file, such as --tz UTC or --tz America/New_York"
                )
            )

        earlier = moment.replace(tzinfo=zone, fold=0)
        later = moment.replace(tzinfo=zone, fold=1)
        if earlier.utcoffset() == later.utcoffset():
            return _to_unix(earlier)

        # The offsets differ only around a UTC offset change. A time in the
        # gap does not survive a round trip through UTC, a repeated time does.
        round_trip = earlier.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None)
        if round_trip != moment:
            raise TimeValueError(
                _(
                    "the local time does not exist in {zone} because the clocks skip it "
                    "at a UTC offset change, such as the start of daylight saving time"
                ).format(zone=zone.key)
            )
        raise TimeValueError(
            _(
                "the local time is ambiguous in {zone} because it occurs twice "
                "when the clocks go back: export the file with UTC offsets or in UTC"
            ).format(zone=zone.key)
        )

    def _parse_date_only(self, match: re.Match) -> int:
        if not self.date_only_allowed:
            raise TimeValueError(
                _(
                    "a date without a time of day is accepted only for daily, weekly "
                    "or monthly bars, but the timeframe is {timeframe}"
                ).format(timeframe=self.timeframe)
            )
        try:
            day = date(int(match["year"]), int(match["month"]), int(match["day"]))
        except ValueError as error:
            raise TimeValueError(_("not a valid calendar date")) from error
        return _to_unix(datetime.combine(day, time(), tzinfo=timezone.utc))


def _build_datetime(match: re.Match) -> datetime:
    try:
        return datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"] or 0),
        )
    except ValueError as error:
        raise TimeValueError(_("not a valid calendar date or time of day")) from error


def _parse_offset(text: str) -> timezone:
    if text in ("Z", "z"):
        return timezone.utc
    match = _OFFSET_PATTERN.fullmatch(text)
    hours = int(match["hours"])
    minutes = int(match["minutes"] or 0)
    if hours > 23 or minutes > 59:
        raise TimeValueError(_("not a valid UTC offset: use -23:59 to +23:59"))
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if match["sign"] == "-" else offset)


def _check_zero_fraction(fraction: str | None) -> None:
    if fraction and fraction.strip("0"):
        raise TimeValueError(_("bar times must be whole seconds, but this time has a fraction of a second"))


def _check_unix_range(seconds: int) -> int:
    if not MIN_UNIX_SECONDS <= seconds <= MAX_UNIX_SECONDS:
        raise TimeValueError(
            _("Unix time out of range for seconds (years 1 to 9999): if it is in milliseconds, divide it by 1000")
        )
    return seconds


def _to_unix(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_SECOND
