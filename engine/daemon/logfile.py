"""The daemon's log file: one line per event of the log, rotated by size.

The line holds the event's seq, time, kind and subject and a short summary
of its payload: the figures and errors that an operator greps for. Payloads
never hold secrets, so neither do the lines.
"""

import logging
import logging.handlers
from pathlib import Path

import msgspec

from ...catalog import events as ev

# Payload fields worth a place on the line, in this order, when present.
_SUMMARY_FIELDS = (
    "type", "status", "job", "scheduled_for", "ok", "rule", "severity", "value", "reason", "error", "error_kind",
    "attempt", "bars_inserted", "bar_count", "series_count", "bytes_written", "objects_deleted", "bytes_freed",
    "duration_seconds", "read_data", "interrupted",
)
_MAX_TEXT = 300


def open_log_file(path: Path, max_bytes: int, backup_count: int) -> logging.Logger:
    """Return a logger that appends lines to `path`, keeping `backup_count` rotated files of `max_bytes`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"tvcat.eventlog.{path}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backup_count,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return logger


def close_log_file(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def format_line(record: ev.EventRecord) -> str:
    """The log line of one event: `seq time kind subject key=value ...`."""
    payload = msgspec.json.decode(record.payload)
    parts = [str(record.seq), record.time, record.kind]
    if record.subject:
        parts.append(record.subject)
    for name in _SUMMARY_FIELDS:
        value = payload.get(name)
        if value is None or value == "" or value == []:
            continue
        parts.append(f"{name}={_short(value)}")
    return " ".join(parts)


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    text = " ".join(text.split())
    if " " in text or "=" in text:
        text = msgspec.json.encode(text[:_MAX_TEXT]).decode()
    return text[:_MAX_TEXT + 2]
