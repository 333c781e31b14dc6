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


class SyncQueued(Event, frozen=True, kw_only=True):
    """A sync task was added to the queue; the log is the queue."""

    kind = "sync.queued"
    subject_field = "task_id"

    task_id: str
    source: str                       # location name or source spec, e.g. 'primary' or 'csv:/data/exports'
    target: str                       # 'cache', 'backup', 'remote'
    symbols: list[str] | None         # None selects every series the source has
    timeframes: list[str] | None
    since: int | None = None          # bar-open Unix seconds to fetch from, when asked
    priority: int = 2                 # 1 high, 2 medium, 3 low
    backup_type: str = "incremental"  # for target 'backup'
    closed_only: bool = False
    dry_run: bool = False
    accept_invalid_bars: bool = False


class SyncStarted(Event, frozen=True, kw_only=True):
    kind = "sync.started"
    subject_field = "task_id"

    task_id: str
    attempt: int
    pid: int
    runner: str = "cli"               # 'cli' for tvcat sync, 'daemon' for tvcat daemon, 'api' for the Python API


class SyncRetried(Event, frozen=True, kw_only=True):
    kind = "sync.retried"
    subject_field = "task_id"

    task_id: str
    attempt: int                      # the attempt that failed
    error: str
    delay_seconds: float


class SyncSeriesResult(msgspec.Struct, frozen=True, kw_only=True):
    """The counts of one series in a sync task: bars fetched and written."""

    symbol: str
    timeframe: str
    bars_fetched: int
    bars_inserted: int
    bars_updated: int
    bars_unchanged: int
    bars_revised: int = 0             # stored closed bars whose values changed
    provisional_ts: int | None = None # the still-forming bar stored, if any
    first_ts: int | None = None
    last_ts: int | None = None
    history_exhausted: bool = False   # the source had no bars older than those given


class SourceFileRead(msgspec.Struct, frozen=True, kw_only=True):
    """A file a file-based source read, so the next sync skips it while unchanged."""

    path: str
    file_hash: str                    # blake3 of the file's bytes


class SyncCompleted(Event, frozen=True, kw_only=True):
    kind = "sync.completed"
    subject_field = "task_id"

    task_id: str
    series: list[SyncSeriesResult]
    duration_seconds: float
    notes: list[str] = []
    files: list[SourceFileRead] = []
    cache_id: str | None = None       # the cache written, for file skipping
    backup_id: str | None = None      # for target 'backup', or the backup restored for source 'backup'


class SyncFailed(Event, frozen=True, kw_only=True):
    kind = "sync.failed"
    subject_field = "task_id"

    task_id: str
    error: str
    error_kind: str                   # the error class, e.g. 'InvalidSourceData'
    duration_seconds: float
    interrupted: bool = False         # stopped by a signal or a cancel, to run again
    # Series written before the failure: their bars stay in the cache, because
    # writes are upserts that a rerun repeats safely.
    series: list[SyncSeriesResult] = []


class SyncRequeued(Event, frozen=True, kw_only=True):
    """An interrupted task was put back in the queue, to run again from its start."""

    kind = "sync.requeued"
    subject_field = "task_id"

    task_id: str
    reason: str


class SyncCancelled(Event, frozen=True, kw_only=True):
    kind = "sync.cancelled"
    subject_field = "task_id"

    task_id: str
    reason: str


class BarValues(msgspec.Struct, frozen=True, array_like=True):
    """One bar's open, high, low, close and volume; None is NULL."""

    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: float | None


class BarsRevised(Event, frozen=True, kw_only=True):
    """A source changed stored closed bars: the vendor rewrote history."""

    kind = "bars.revised"
    subject_field = "symbol"

    task_id: str
    symbol: str
    timeframe: str
    count: int
    first_ts: int
    first_old: BarValues
    first_new: BarValues


class InvalidBarsAccepted(Event, frozen=True, kw_only=True):
    """A warning: bars that failed the OHLC checks were stored because the user accepts them."""

    kind = "bars.invalid_accepted"
    subject_field = "symbol"

    task_id: str
    symbol: str
    timeframe: str
    count: int
    first_ts: int
    reason: str


class RetentionDecision(msgspec.Struct, frozen=True, kw_only=True):
    """Keep or forget one backup, and the rule and bucket that decided it."""

    backup_id: str
    keep: bool
    rule: str
    bucket: str | None = None
    needed_by: str | None = None


class RetentionDecided(Event, frozen=True, kw_only=True):
    """A retention run: the decision for every committed backup. Forgotten ones are gone from then on."""

    kind = "retention.decided"

    policy: dict                      # the policy applied, as its fields
    timezone: str                     # zone of the buckets
    decisions: list[RetentionDecision]
    reason: str = "prune"             # 'prune', or 'disk-pressure' / 'size-threshold' for auto-cleanup


class GarbageCollected(Event, frozen=True, kw_only=True):
    """Objects that no remaining backup references were deleted."""

    kind = "gc.completed"

    objects_deleted: int
    bytes_freed: int
    objects_live: int                 # objects referenced by backups that are not forgotten
    objects_in_grace: int             # unreferenced objects younger than the grace period, kept
    temporary_files_deleted: int
    grace_seconds: float
    duration_seconds: float


class StaleLockCleared(Event, frozen=True, kw_only=True):
    """A lock record of a process that no longer runs was removed."""

    kind = "lock.stale_cleared"
    subject_field = "holder"

    holder: str                       # 'pid@host'
    lock_kind: str                    # 'backup' or 'prune'
    since: str                        # when the holder took the lock


class DaemonStarted(Event, frozen=True, kw_only=True):
    kind = "daemon.started"
    subject_field = "holder"

    holder: str                       # 'pid@host'
    version: str
    jobs: list[str]                   # names of the scheduled jobs, e.g. 'backup:daily_full'
    schedule_errors: list[str] = []   # schedules that could not be read, with the reason
    requeued_tasks: list[str] = []    # interrupted tasks put back in the queue at start


class DaemonStopped(Event, frozen=True, kw_only=True):
    kind = "daemon.stopped"
    subject_field = "holder"

    holder: str
    reason: str                       # e.g. 'SIGTERM'
    uptime_seconds: float
    interrupted_tasks: list[str] = [] # tasks still running when the grace period ended


class JobFired(Event, frozen=True, kw_only=True):
    """A scheduled job started its run for one scheduled time."""

    kind = "job.fired"
    subject_field = "job"

    job: str                          # e.g. 'backup:daily_full', 'sync:high', 'verify', 'prune'
    scheduled_for: str                # the scheduled time, UTC, in the events.time format
    catch_up: bool = False            # a run missed while the daemon was down


class JobFinished(Event, frozen=True, kw_only=True):
    kind = "job.finished"
    subject_field = "job"

    job: str
    scheduled_for: str
    ok: bool
    duration_seconds: float
    error: str | None = None
    detail: str | None = None         # e.g. the backup id or task id the run created


class JobSkipped(Event, frozen=True, kw_only=True):
    """A scheduled time came while the previous run of the same job was still going."""

    kind = "job.skipped"
    subject_field = "job"

    job: str
    scheduled_for: str
    reason: str


class ChannelResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one notification on one alert channel."""

    channel: str                      # 'webhook', 'email' or 'log'
    ok: bool
    attempts: int = 1
    error: str | None = None          # with no secret, URL path or credential in it


class AlertSent(Event, frozen=True, kw_only=True):
    kind = "alert.sent"
    subject_field = "rule"

    rule: str
    severity: str
    message: str
    metric: str
    value: float
    threshold: float
    channels: list[ChannelResult]


class AlertSuppressed(Event, frozen=True, kw_only=True):
    """A repeat of a firing alert within its suppression time; nothing was sent."""

    kind = "alert.suppressed"
    subject_field = "rule"

    rule: str
    metric: str
    value: float
    until: str                        # end of the suppression time, UTC, in the events.time format


class AlertResolved(Event, frozen=True, kw_only=True):
    """A firing alert's condition became false; the recovery was announced once."""

    kind = "alert.resolved"
    subject_field = "rule"

    rule: str
    metric: str
    value: float
    channels: list[ChannelResult]


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        ImportCompleted, ImportFailed, BackupStarted, BackupCommitted, BackupFailed,
        RestoreCompleted, RestoreFailed, VerifyCompleted, CatalogRebuilt, AuditVerified,
        SyncQueued, SyncStarted, SyncRetried, SyncCompleted, SyncFailed, SyncCancelled,
        BarsRevised, InvalidBarsAccepted, RetentionDecided, GarbageCollected, StaleLockCleared,
        SyncRequeued, DaemonStarted, DaemonStopped, JobFired, JobFinished, JobSkipped,
        AlertSent, AlertSuppressed, AlertResolved,
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
