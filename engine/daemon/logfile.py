"""The daemon's log file: one line per event of the log, rotated by size.

The line contains the event's seq, time, kind and subject and a short summary
of its payload: the figures and errors that an operator greps for. Payloads
never hold secrets, so neither do the lines.
"""

import logging
import logging.handlers
from datetime import datetime, timezone
from pathlib import Path

import msgspec

from ...catalog import events as ev

# Payload fields worth a place on the line, in this order, when present.
_SUMMARY_FIELDS = (
    "type", "status", "job", "scheduled_for", "ok", "rule", "severity", "value", "reason", "error", "error_kind",
    "attempt", "bars_inserted", "bar_count", "series_count", "bytes_written", "objects_deleted", "bytes_freed",
    "duration_seconds", "read_data", "interrupted", "faults", "broken_backups",
)
# List fields shown as their length, since the items are long.
_COUNTED_FIELDS = ("faults", "broken_backups")
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
    handler.setFormatter(_LineFormatter())
    logger.addHandler(handler)
    # Alerts sent to the log channel and the daemon's own warnings go to the same file.
    for name in _ALSO_LOGGED:
        logging.getLogger(name).addHandler(handler)
    return logger


def close_log_file(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        for name in _ALSO_LOGGED:
            logging.getLogger(name).removeHandler(handler)
        handler.close()


_ALSO_LOGGED = ("tvcat.alerts", "tvcat.engine.daemon")


class _LineFormatter(logging.Formatter):
    """Event lines as they are; other records with their time, level and logger, as in the event lines."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name.startswith("tvcat.eventlog"):
            return record.getMessage()
        moment = ev.format_time(datetime.fromtimestamp(record.created, timezone.utc))
        return f"- {moment} {record.levelname.lower()} {record.name} {record.getMessage()}"


def format_line(record: ev.EventRecord) -> str:
    """Format the log line of one event: `seq time kind subject key=value ...`."""
    payload = msgspec.json.decode(record.payload)
    parts = [str(record.seq), record.time, record.kind]
    if record.subject:
        parts.append(record.subject)
    for name in _SUMMARY_FIELDS:
        value = payload.get(name)
        if name in _COUNTED_FIELDS and isinstance(value, list):
            value = len(value)
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
