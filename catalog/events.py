"""The event log: one frozen msgspec struct per kind, and the hash-chained append.

Every action that changes state appends an event. Payload structs change by
msgspec's rules: a new field gets a default and a field keeps its type, and a
kind name is never reused for a new meaning.
"""

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar

import blake3
import msgspec

GENESIS_HASH = "0" * 64
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every payload struct. `kind` names the event; `subject_field` its subject."""

    kind: ClassVar[str] = ""
    subject_field: ClassVar[str | None] = None

    def subject(self) -> str:
        if self.subject_field is None:
            return ""
        return str(getattr(self, self.subject_field))


class ImportCompleted(Event, frozen=True, kw_only=True):
    kind = "import.completed"
    subject_field = "path"

    path: str
    file_hash: str                    # blake3 of the file's bytes
    cache_path: str
    symbol: str
    timeframe: str
    rows_read: int
    duplicates_merged: int
    bars_inserted: int
    bars_updated: int
    bars_unchanged: int
    first_ts: int | None = None
    last_ts: int | None = None


class ImportFailed(Event, frozen=True, kw_only=True):
    kind = "import.failed"
    subject_field = "path"

    path: str
    error: str


class BackupStarted(Event, frozen=True, kw_only=True):
    kind = "backup.started"
    subject_field = "backup_id"

    backup_id: str
    type: str
    symbols: list[str] | None = None
    timeframes: list[str] | None = None
    parent_id: str | None = None


class SeriesSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One series in the restored state of a backup."""

    symbol: str
    timeframe: str
    bar_count: int
    window_count: int
    first_ts: int | None
    last_ts: int | None
    windows_written: int


class BackupCommitted(Event, frozen=True, kw_only=True):
    kind = "backup.committed"
    subject_field = "backup_id"

    backup_id: str
    type: str
    manifest_id: str
    parent_id: str | None
    base_full_id: str | None
    cache_id: str
    change_seq: int
    series: list[SeriesSummary]
    windows_written: int
    chunks_written: int
    bytes_written: int
    duration_seconds: float
    objects_repaired: int = 0         # damaged objects a full backup found and replaced


class BackupFailed(Event, frozen=True, kw_only=True):
    kind = "backup.failed"
    subject_field = "backup_id"

    backup_id: str
    type: str
    error: str


class RestoreCompleted(Event, frozen=True, kw_only=True):
    kind = "restore.completed"
    subject_field = "backup_id"

    backup_id: str
    target: str
    requested_at: str | None
    reason: str
    series_count: int
    bar_count: int


class RestoreFailed(Event, frozen=True, kw_only=True):
    kind = "restore.failed"
    subject_field = "target"

    target: str
    backup_id: str | None
    requested_at: str | None
    error: str


class VerifyFault(msgspec.Struct, frozen=True, kw_only=True):
    """One problem found by verify, with everything it breaks."""

    problem: str                      # 'missing', 'corrupted', 'broken-chain' or 'unreadable-manifest'
    object_id: str | None
    detail: str
    backups: list[str]
    series: list[str]


class VerifyCompleted(Event, frozen=True, kw_only=True):
    kind = "verify.completed"

    read_data: bool
    backups_checked: int
    objects_checked: int
    faults: list[VerifyFault]
    broken_backups: list[str]
    newest_sound_backup: str | None


class CatalogRebuilt(Event, frozen=True, kw_only=True):
    kind = "catalog.rebuilt"

    events_replayed: int
    manifests_missing: int


class AuditVerified(Event, frozen=True, kw_only=True):
    kind = "audit.verified"

    events_checked: int
    first_bad_seq: int | None
    problem: str | None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        ImportCompleted, ImportFailed, BackupStarted, BackupCommitted, BackupFailed,
        RestoreCompleted, RestoreFailed, VerifyCompleted, CatalogRebuilt, AuditVerified,
    )
}

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class EventRecord:
    """One row of the events table."""

    seq: int
    time: str
    kind: str
    subject: str
    payload: str
    prev_hash: str
    hash: str

    def decode(self) -> Event:
        """Decode the payload into the struct of its kind."""
        return msgspec.json.decode(self.payload, type=EVENT_TYPES[self.kind])


def hash_event(prev_hash: str, seq: int, time: str, kind: str, subject: str, payload: str) -> str:
    """Return the chain hash of one event, as stored in events.hash."""
    hasher = blake3.blake3()
    for part in (prev_hash, str(seq), time, kind, subject, payload):
        hasher.update(part.encode("utf-8"))
        hasher.update(b"\n")
    return hasher.hexdigest()


def format_time(moment: datetime) -> str:
    """Format an aware datetime as the events.time text, in UTC."""
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """Parse an events.time text into an aware UTC datetime."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=timezone.utc)


def append_event(connection: sqlite3.Connection, event: Event) -> EventRecord:
    """Insert `event` after the last one, inside the caller's write transaction.

    The time is the current UTC time, or the last event's time if the clock
    went backwards, so times never decrease along the log.
    """
    last = connection.execute(
        "SELECT seq, time, hash FROM events ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    seq, last_time, prev_hash = (last[0] + 1, last[1], last[2]) if last else (1, "", GENESIS_HASH)
    time = max(format_time(datetime.now(timezone.utc)), last_time)

    payload = _encoder.encode(event).decode("utf-8")
    subject = event.subject()
    record = EventRecord(
        seq, time, event.kind, subject, payload, prev_hash,
        hash_event(prev_hash, seq, time, event.kind, subject, payload),
    )
    connection.execute(
        "INSERT INTO events (seq, time, kind, subject, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (record.seq, record.time, record.kind, record.subject, record.payload, record.prev_hash, record.hash),
    )
    return record


def iter_events(connection: sqlite3.Connection, after_seq: int = 0):
    """Yield every event with seq greater than `after_seq`, in order."""
    cursor = connection.execute(
        "SELECT seq, time, kind, subject, payload, prev_hash, hash FROM events WHERE seq > ? ORDER BY seq",
        (after_seq,),
    )
    for row in cursor:
        yield EventRecord(*row)


def payload_dict(record: EventRecord) -> dict[str, Any]:
    return msgspec.json.decode(record.payload)
