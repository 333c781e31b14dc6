"""Checks of single configuration values that a type alone cannot express.

Each check takes the text read from the file and returns the value to store,
or raises CheckFailed with a translated message that shows the expected form.
"""

import re
import urllib.parse
import zoneinfo

from ...catalog.series import normalize_timeframe, validate_symbol
from ...errors import InvalidSymbol, InvalidTimeframe
from ...i18n import N_, _


class CheckFailed(ValueError):
    """A value of the right type with invalid content. The argument is the translated reason."""


def check_symbol(text: str) -> str:
    """Return `text` if it is EXCHANGE:TICKER, as the importers require."""
    try:
        return validate_symbol(text)
    except InvalidSymbol as error:
        raise CheckFailed(str(error)) from None


def check_timeframe(text: str) -> str:
    """Return the TradingView notation of the timeframe `text`, so `15m` becomes `15`."""
    try:
        return normalize_timeframe(text)
    except InvalidTimeframe as error:
        raise CheckFailed(str(error)) from None


def check_timezone(text: str) -> str:
    """Return `text` if the IANA time zone database of this system contains it."""
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise CheckFailed(
            _("unknown time zone {value!r}: use an IANA name such as UTC or Asia/Shanghai").format(value=text)
        ) from None
    return text


_DURATION_PATTERN = re.compile(r"(?:[0-9]+[ymwdh])+")


def check_duration(text: str) -> str:
    """Return `text` if it is a duration such as `30d` or `1y6m`."""
    if _DURATION_PATTERN.fullmatch(text) is None:
        raise CheckFailed(
            _(
                "invalid duration {value!r}: use counts with units such as 30d, 2w or 1y6m "
                "(y years, m months, w weeks, d days, h hours)"
            ).format(value=text)
        )
    return text


def check_url(text: str) -> str:
    """Return `text` if it is an absolute http or https URL."""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CheckFailed(
            _("invalid URL {value!r}: use an absolute http:// or https:// URL").format(value=redact_url(text))
        )
    return text


def check_websocket_url(text: str) -> str:
    """Return `text` if it is an absolute ws or wss URL."""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise CheckFailed(
            _("invalid URL {value!r}: use an absolute ws:// or wss:// URL").format(value=redact_url(text))
        )
    return text


# An alert condition is METRIC OPERATOR NUMBER. The text is matched by this
# pattern and never evaluated as Python.
_CONDITION_PATTERN = re.compile(
    r"\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?P<comparison>>=|<=|==|!=|>|<)\s*"
    r"(?P<threshold>[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*"
)


def parse_condition(text: str) -> tuple[str, str, float]:
    """Split an alert condition such as `sync_failure_rate > 0.1` into metric, comparison and threshold."""
    match = _CONDITION_PATTERN.fullmatch(text)
    if match is None:
        raise CheckFailed(
            _(
                "invalid alert condition {value!r}: use METRIC OPERATOR NUMBER such as "
                "`sync_failure_rate > 0.1`, with one of >, >=, <, <=, ==, !="
            ).format(value=text)
        )
    return match["metric"], match["comparison"], float(match["threshold"])


_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

# Field name, lowest value, highest value, and the names cron accepts in place
# of numbers (the first name stands for the lowest value). Day of week 7 is
# Sunday, as in Vixie cron.
_CRON_FIELDS = (
    (N_("minute"), 0, 59, ()),
    (N_("hour"), 0, 23, ()),
    (N_("day of month"), 1, 31, ()),
    (N_("month"), 1, 12, _MONTH_NAMES),
    (N_("day of week"), 0, 7, _DAY_NAMES),
)
_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def check_cron(text: str) -> str:
    """Return the five-field cron expression `text` with single spaces, or a macro such as @daily."""
    stripped = text.strip()
    if stripped in _CRON_MACROS:
        return stripped

    fields = stripped.split()
    if len(fields) != len(_CRON_FIELDS):
        raise CheckFailed(
            _(
                "invalid cron expression {value!r}: expected 5 fields "
                "(minute hour day-of-month month day-of-week) such as \"0 2 * * *\", found {count}"
            ).format(value=text, count=len(fields))
        )

    for field, (name, lowest, highest, names) in zip(fields, _CRON_FIELDS):
        for item in field.split(","):
            if not _is_valid_cron_item(item.lower(), lowest, highest, names):
                raise CheckFailed(
                    _(
                        "invalid cron expression {value!r}: invalid {field} {item!r}, expected *, a number "
                        "from {lowest} to {highest}, a range such as {lowest}-{highest}, or a step such as */5"
                    ).format(value=text, field=_(name), item=item, lowest=lowest, highest=highest)
                )
    return " ".join(fields)


def _is_valid_cron_item(item: str, lowest: int, highest: int, names: tuple[str, ...]) -> bool:
    base, slash, step = item.partition("/")
    if slash and not (step.isdigit() and int(step) >= 1):
        return False
    if base == "*":
        return True

    first, dash, last = base.partition("-")
    low = _cron_number(first, lowest, highest, names)
    if not dash:
        return low is not None
    high = _cron_number(last, lowest, highest, names)
    return low is not None and high is not None and low <= high


def _cron_number(text: str, lowest: int, highest: int, names: tuple[str, ...]) -> int | None:
    if text in names:
        return lowest + names.index(text)
    if text.isdigit() and lowest <= int(text) <= highest:
        return int(text)
    return None


# Query parameters whose values are credentials, masked wherever a URL is shown.
_SECRET_QUERY_NAMES = ("token", "auth", "key", "secret", "password", "signature", "sig")


def redact_url(url: str) -> str:
    """Return `url` with its password and credential-like query values replaced by `***`, for messages and logs."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in credentials else f"***@{host}"
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    masked = [(name, "***" if any(secret in name.lower() for secret in _SECRET_QUERY_NAMES) else value)
              for name, value in query]
    return urllib.parse.urlunsplit(
        (parts.scheme, netloc, parts.path, urllib.parse.urlencode(masked, safe="*"), parts.fragment)
    )
