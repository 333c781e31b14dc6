"""Check and convert the arguments of the Python API: backup types, symbols, timeframes, priorities and times."""

from collections.abc import Iterable
from datetime import datetime, timezone

from ..catalog.series import normalize_timeframe, validate_symbol
from ..engine.backup import BackupType, Scope
from ..engine.restore import parse_point_in_time
from ..engine.sync.tasks import PRIORITIES
from ..errors import InvalidOption
from ..i18n import _

SymbolsArgument = Iterable[str] | str | None
TimeframesArgument = Iterable[str | int] | str | int | None


def parse_backup_type(value: BackupType | str) -> BackupType:
    """Return the BackupType that `value` names: a member, or its value or name in any case (`full`, `FULL`).

    Raises InvalidOption listing the four types.
    """
    if isinstance(value, BackupType):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        for member in BackupType:
            if text == member.value:
                return member
    raise InvalidOption(detail=_("invalid backup type {value!r}: use one of {types}").format(
        value=value, types=", ".join(member.value for member in BackupType)))


def parse_symbols(symbols: SymbolsArgument) -> list[str] | None:
    """Return the checked symbols, or None for every symbol.

    A text is one symbol or a comma-separated list, as the CLI's --symbols
    takes it. Raises InvalidSymbol for an item that is not EXCHANGE:TICKER.
    """
    items = _items(symbols)
    if items is None:
        return None
    return [validate_symbol(item) for item in items]


def parse_timeframes(timeframes: TimeframesArgument) -> list[str] | None:
    """Return the timeframes in TradingView notation (`15`, `60`, `1D`), or None for every timeframe.

    An integer counts minutes. Raises InvalidTimeframe for an item that no
    notation defines.
    """
    if isinstance(timeframes, int) and not isinstance(timeframes, bool):
        timeframes = [timeframes]
    items = _items(timeframes)
    if items is None:
        return None
    return [normalize_timeframe(str(item)) for item in items]


def parse_scope(symbols: SymbolsArgument, timeframes: TimeframesArgument) -> Scope:
    """Return the Scope of the checked symbols and timeframes; None selects every symbol or timeframe."""
    return Scope.of(parse_symbols(symbols) or [], parse_timeframes(timeframes) or [])


def parse_priority(priority: int | str) -> int:
    """Return a queue priority: a positive integer (1 is the highest), or `high`, `medium` or `low`.

    Raises InvalidOption for anything else.
    """
    if isinstance(priority, str) and priority.strip().lower() in PRIORITIES:
        return PRIORITIES[priority.strip().lower()]
    if isinstance(priority, int) and not isinstance(priority, bool) and priority >= 1:
        return priority
    raise InvalidOption(detail=_(
        "invalid priority {value!r}: use a positive integer, 1 being the highest, or one of {names}"
    ).format(value=priority, names=", ".join(PRIORITIES)))


def parse_since(since: datetime | str | int | float | None) -> int | None:
    """Return `since` as Unix seconds, or None.

    Accepts a datetime, ISO 8601 text or Unix seconds. A datetime or text
    without an offset is read as UTC. Raises InvalidTimestamp for text that
    does not parse.
    """
    if since is None:
        return None
    if isinstance(since, datetime):
        moment = since if since.tzinfo is not None else since.replace(tzinfo=timezone.utc)
        return int(moment.timestamp())
    if isinstance(since, (int, float)) and not isinstance(since, bool):
        return int(since)
    return int(parse_point_in_time(str(since)).moment.timestamp())


def _items(values: Iterable | str | None) -> list | None:
    """Return the items of a list, or of a comma-separated text; None or an empty list gives None."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [item.strip() for item in values.split(",")]
    items = list(values)
    return items or None
