"""Checks of single configuration values that a type alone cannot express.

Each check takes the text read from the file and returns the value to store,
or raises CheckFailed with a translated message that shows the expected form.
"""

import re
import urllib.parse
import zoneinfo
from datetime import datetime

import croniter

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


_HEX_KEY_PATTERN = re.compile(r"[0-9a-fA-F]{64}")


def check_encryption_key(text: str) -> str:
    """Return `text` if it is 32 bytes in hex; the message never repeats the value."""
    if _HEX_KEY_PATTERN.fullmatch(text.strip()) is None:
        raise CheckFailed(_(
            "the encryption key must be 64 hex digits (32 bytes); generate one with "
            "python -c \"import secrets; print(secrets.token_hex(32))\""
        ))
    return text.strip().lower()


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

# The metrics an alert condition may name; engine/alerts/measure.py computes each one.
ALERT_METRICS = (
    "sync_failure_rate",
    "sync_failure_count",
    "backup_failure_count",
    "verify_failure_count",
    "disk_usage",
    "backup_age_hours",
    "data_age_hours",
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
    if match["metric"] not in ALERT_METRICS:
        raise CheckFailed(
            _("unknown metric {metric!r} in alert condition {value!r}: use one of {known}").format(
                metric=match["metric"], value=text, known=", ".join(ALERT_METRICS)
            )
        )
    return match["metric"], match["comparison"], float(match["threshold"])


_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def check_cron(text: str) -> str:
    """Return the cron expression `text` with single spaces, or a macro such as @daily.

    Five fields as in crontab, or six with seconds last, which croniter reads
    as a seconds field. An expression that never matches, such as February
    30th, is rejected too.
    """
    stripped = text.strip()
    if stripped in _CRON_MACROS:
        return stripped

    fields = stripped.split()
    if len(fields) not in (5, 6):
        raise CheckFailed(
            _(
                "invalid cron expression {value!r}: expected 5 fields "
                "(minute hour day-of-month month day-of-week) such as \"0 2 * * *\", or 6 with seconds last, "
                "found {count}"
            ).format(value=text, count=len(fields))
        )

    normalized = " ".join(fields)
    try:
        croniter.croniter(normalized, datetime(2000, 1, 1)).get_next(datetime)
    except croniter.CroniterBadDateError:
        raise CheckFailed(
            _("invalid cron expression {value!r}: it matches no date").format(value=text)
        ) from None
    except (croniter.CroniterError, ValueError) as error:
        raise CheckFailed(
            _(
                "invalid cron expression {value!r}: {reason}; each field takes *, a number, a range such as "
                "1-5, a list such as 1,3 or a step such as */5"
            ).format(value=text, reason=_bad_field(fields) or _croniter_reason(error))
        ) from None
    return normalized


# The fields of a cron expression with their ranges; day of week 7 is Sunday, as in Vixie cron.
_CRON_FIELDS = (
    (N_("minute"), "0-59"), (N_("hour"), "0-23"), (N_("day of month"), "1-31"), (N_("month"), "1-12"),
    (N_("day of week"), "0-7"), (N_("second"), "0-59"),
)


def _bad_field(fields: list[str]) -> str | None:
    """Name the first field that croniter rejects on its own, with its range, or None."""
    for index, (name, allowed) in enumerate(_CRON_FIELDS[:len(fields)]):
        alone = ["*"] * len(fields)
        alone[index] = fields[index]
        try:
            croniter.croniter(" ".join(alone), datetime(2000, 1, 1))
        except (croniter.CroniterError, ValueError):
            return _("the {field} field {item!r} is invalid, expected values in {allowed}").format(
                field=_(name), item=fields[index], allowed=allowed)
    return None


def _croniter_reason(error: Exception) -> str:
    """croniter's reason without the expression it repeats in brackets."""
    return re.sub(r"^\[[^\]]*\]\s*", "", str(error)) or type(error).__name__


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
