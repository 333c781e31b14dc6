"""Framing, message building and message parsing of TradingView's chart websocket protocol.

Every websocket message carries one or more frames `~m~LEN~m~PAYLOAD`, where
LEN is the decimal length of PAYLOAD in characters. A payload is one of:

- a message `{"m": METHOD, "p": [PARAMETERS...]}`, such as `timescale_update`,
- the greeting the server sends first, a JSON object without `m`,
- a heartbeat `~h~N`, which the client sends back unchanged in a frame of its own.

This module does no I/O, so tests can run it on strings.
"""

import json
import math
from dataclasses import dataclass, field

from ....catalog.series import Series
from ....i18n import _
from ...importers.timeparse import MAX_UNIX_SECONDS, MIN_UNIX_SECONDS
from ..base import SeriesInfo

FRAME_MARK = "~m~"
HEARTBEAT_PREFIX = "~h~"
# A length with more digits than this (about 10 GB) cannot be real.
_MAX_LENGTH_DIGITS = 10
# Characters of a bad frame that an error message quotes.
_EXCERPT_CHARACTERS = 60

# A bar is [time, open, high, low, close] or [time, open, high, low, close, volume].
_BAR_VALUES_WITHOUT_VOLUME = 5
_BAR_VALUES_WITH_VOLUME = 6

# The fields of `symbol_resolved` kept in SeriesInfo.extra when they are text.
_EXTRA_SYMBOL_FIELDS = ("description", "exchange", "listed_exchange", "type", "currency_code", "pro_name")


class FrameError(ValueError):
    """A websocket message that breaks the framing or carries a payload that is not a JSON object."""


class BarError(ValueError):
    """A bar entry that cannot be read. `time` is its bar-open time, or None when even that is invalid."""

    def __init__(self, reason: str, time: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.time = time


# ---------------------------------------------------------------------------
# Framing


def encode_frame(payload: str) -> str:
    """Wrap one payload in a frame."""
    return f"{FRAME_MARK}{len(payload)}{FRAME_MARK}{payload}"


def encode_message(method: str, *parameters) -> str:
    """Return the frame of the message `method` with `parameters`.

    The JSON is ASCII only, so its length in characters is the same whether
    the server counts code points or UTF-16 code units.
    """
    payload = json.dumps({"m": method, "p": list(parameters)}, separators=(",", ":"), ensure_ascii=True)
    return encode_frame(payload)


def split_frames(text: str) -> list[str]:
    """Return the payloads of the frames in one websocket message, in order.

    Raises FrameError when the text does not start with a frame mark, a length
    is not a decimal number, or a length does not end at the end of the text
    or at the next frame mark.
    """
    payloads = []
    position = 0
    while position < len(text):
        if not text.startswith(FRAME_MARK, position):
            raise FrameError(_("expected the frame mark {mark!r} at character {position}, found {found!r}").format(
                mark=FRAME_MARK, position=position, found=text[position:position + _EXCERPT_CHARACTERS]))

        length_start = position + len(FRAME_MARK)
        length_end = text.find(FRAME_MARK, length_start, length_start + _MAX_LENGTH_DIGITS + len(FRAME_MARK))
        digits = text[length_start:length_end] if length_end != -1 else text[length_start:length_start + 12]
        if length_end == -1 or not digits or not (digits.isascii() and digits.isdigit()):
            raise FrameError(_("invalid frame length {digits!r} at character {position}").format(
                digits=digits, position=position))

        start = length_end + len(FRAME_MARK)
        end = _payload_end(text, start, int(digits), position)
        payloads.append(text[start:end])
        position = end
    return payloads


def _payload_end(text: str, start: int, length: int, frame_position: int) -> int:
    """Return where a payload of `length` characters starting at `start` ends, or raise FrameError."""
    end = start + length
    if end > len(text):
        raise FrameError(_(
            "the frame at character {position} declares {length} characters, "
            "but the message has only {available} left"
        ).format(position=frame_position, length=length, available=len(text) - start))
    if _is_frame_boundary(text, end):
        return end

    # A server written in JavaScript counts UTF-16 code units, in which a
    # character outside the Basic Multilingual Plane (such as an emoji) counts twice.
    utf16_end = _utf16_offset(text, start, length)
    if utf16_end is not None and _is_frame_boundary(text, utf16_end):
        return utf16_end
    raise FrameError(_(
        "the frame at character {position} declares {length} characters, "
        "but no frame ends there: found {found!r}"
    ).format(position=frame_position, length=length, found=text[end:end + _EXCERPT_CHARACTERS]))


def _is_frame_boundary(text: str, position: int) -> bool:
    return position == len(text) or text.startswith(FRAME_MARK, position)


def _utf16_offset(text: str, start: int, units: int) -> int | None:
    """Return the index in `text` that lies `units` UTF-16 code units after `start`, or None."""
    position = start
    while units > 0 and position < len(text):
        units -= 2 if ord(text[position]) > 0xFFFF else 1
        position += 1
    return position if units == 0 else None


def is_heartbeat(payload: str) -> bool:
    return payload.startswith(HEARTBEAT_PREFIX)


def decode_payload(payload: str) -> dict:
    """Return the JSON object of a payload, or raise FrameError."""
    try:
        message = json.loads(payload)
    except json.JSONDecodeError as error:
        raise FrameError(_("invalid JSON in a frame ({error}): {excerpt!r}").format(
            error=error, excerpt=payload[:_EXCERPT_CHARACTERS])) from None
    if not isinstance(message, dict):
        raise FrameError(_("a frame contains JSON that is not an object: {excerpt!r}").format(
            excerpt=payload[:_EXCERPT_CHARACTERS]))
    return message


# ---------------------------------------------------------------------------
# Client messages


def set_auth_token(token: str) -> str:
    return encode_message("set_auth_token", token)


def chart_create_session(session_id: str) -> str:
    return encode_message("chart_create_session", session_id, "")


def resolve_symbol(session_id: str, symbol_id: str, symbol: str) -> str:
    """Return the message that resolves `symbol` with prices adjusted for splits.

    The symbol goes in TradingView's `=JSON` form, which is how a client
    requests an adjustment.
    """
    description = "=" + json.dumps({"symbol": symbol, "adjustment": "splits"}, separators=(",", ":"))
    return encode_message("resolve_symbol", session_id, symbol_id, description)


def create_series(session_id: str, series_id: str, turnaround_id: str, symbol_id: str,
                  timeframe: str, bar_count: int) -> str:
    """Return the message that loads the newest `bar_count` bars of a resolved symbol.

    The last parameter is a time range, which is empty here because paging is done
    with request_more_data.
    """
    return encode_message("create_series", session_id, series_id, turnaround_id, symbol_id,
                          timeframe, bar_count, "")


def request_more_data(session_id: str, series_id: str, bar_count: int) -> str:
    return encode_message("request_more_data", session_id, series_id, bar_count)


# ---------------------------------------------------------------------------
# Server messages


@dataclass
class SeriesUpdate:
    """The bars of one series in a `timescale_update` or `du` message."""

    # (ts, open, high, low, close, volume) tuples, volume NaN when the bar has none.
    bars: list[tuple[int, float, float, float, float, float]] = field(default_factory=list)
    # `lbs.bar_close_time`: Unix seconds when the newest bar closes on this feed.
    # In the recorded sessions, the value of a delayed feed includes the delay.
    bar_close_time: int | None = None


def parse_series_update(parameters: list, series_id: str) -> SeriesUpdate | None:
    """Return the bars that a `timescale_update` or `du` message carries for `series_id`.

    Returns None when the message is about other series or studies only.
    Raises FrameError for a message whose shape is wrong and BarError for a bar
    that cannot be read.
    """
    if len(parameters) < 2 or not isinstance(parameters[1], dict):
        raise FrameError(_("a series update has no object of series as its second parameter"))
    entry = parameters[1].get(series_id)
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise FrameError(_("the update of series {series_id} is not an object").format(series_id=series_id))

    bar_entries = entry.get("s", [])
    if not isinstance(bar_entries, list):
        raise FrameError(_("the bars of series {series_id} are not a list").format(series_id=series_id))
    update = SeriesUpdate(bars=[parse_bar(bar_entry) for bar_entry in bar_entries])

    last_bar_status = entry.get("lbs")
    if isinstance(last_bar_status, dict):
        close_time = last_bar_status.get("bar_close_time")
        if _is_number(close_time) and math.isfinite(close_time):
            update.bar_close_time = int(close_time)
    return update


def parse_bar(entry) -> tuple[int, float, float, float, float, float]:
    """Return (ts, open, high, low, close, volume) from a bar entry `{"i": INDEX, "v": [...]}`.

    A bar of five values has no volume, which becomes NaN. A JSON null value
    becomes NaN as well. Raises BarError for any other shape or a non-numeric value.
    """
    values = entry.get("v") if isinstance(entry, dict) else None
    if not isinstance(values, list) or not values:
        raise BarError(_("a bar entry has no list of values: {entry!r}").format(
            entry=_excerpt(entry)))

    time = values[0]
    if (not _is_number(time) or not math.isfinite(time) or time != int(time)
            or not MIN_UNIX_SECONDS <= time <= MAX_UNIX_SECONDS):
        raise BarError(_("invalid bar time {value!r}: expected whole Unix seconds in the years 1 to 9999").format(
            value=time))
    ts = int(time)

    if len(values) not in (_BAR_VALUES_WITHOUT_VOLUME, _BAR_VALUES_WITH_VOLUME):
        raise BarError(_("a bar has {count} values, expected 5 (time and OHLC) or 6 (with volume)").format(
            count=len(values)), ts)

    numbers = []
    for name, value in zip(("open", "high", "low", "close", "volume"), values[1:]):
        if value is None:
            numbers.append(math.nan)
        elif _is_number(value):
            numbers.append(float(value))
        else:
            raise BarError(_("invalid {column} value {value!r}: expected a number").format(
                column=name, value=value), ts)
    if len(numbers) == _BAR_VALUES_WITHOUT_VOLUME - 1:
        numbers.append(math.nan)
    return (ts, *numbers)


def parse_symbol_info(series: Series, resolved) -> SeriesInfo:
    """Return the SeriesInfo in `resolved`, the third parameter of `symbol_resolved`.

    `session_holidays` is a comma-separated list of YYYYMMDD dates.
    Raises FrameError when the parameter is not an object.
    """
    if not isinstance(resolved, dict):
        raise FrameError(_("symbol_resolved carries no object describing the symbol"))
    holidays_text = resolved.get("session_holidays")
    holidays = ()
    if isinstance(holidays_text, str):
        holidays = tuple(day.strip() for day in holidays_text.split(",") if day.strip())
    extra = {name: resolved[name] for name in _EXTRA_SYMBOL_FIELDS if isinstance(resolved.get(name), str)}
    return SeriesInfo(
        series=series,
        timezone=_text_or_none(resolved.get("timezone")),
        session=_text_or_none(resolved.get("session")),
        holidays=holidays,
        extra=extra,
    )


def _is_number(value) -> bool:
    # bool is a subclass of int, but `true` is no price.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text_or_none(value) -> str | None:
    return value if isinstance(value, str) and value else None


def _excerpt(value) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text[:_EXCERPT_CHARACTERS]
