"""Projections: tables derived from the event log.

`apply_event` is the one function that turns an event into projection rows.
The live path calls it in the same transaction as the append, and
`rebuild_projections` calls it for every event of the log, so both give the
same rows.
"""

import json
import logging
import sqlite3

from ..errors import IntegrityError
from . import events as ev
from .manifests import decode_manifest
from .objects import ObjectStore

logger = logging.getLogger(__name__)

PROJECTION_TABLES = (
    "backups", "backup_series", "backup_chunks", "restores", "verifications", "sync_tasks", "source_files",
    "retention_decisions", "forgotten_backups",
)


def _json_or_null(values: list[str] | None) -> str | None:
    return None if values is None else json.dumps(values)


def apply_event(connection: sqlite3.Connection, record: ev.EventRecord, store: ObjectStore) -> bool:
    """Update the projections for one event; return False if a manifest it names is unreadable."""
    event = record.decode()

    if isinstance(event, ev.BackupStarted):
        connection.execute(
            "INSERT INTO backups (backup_id, type, status, parent_id, symbols, timeframes, started_at) "
            "VALUES (?, ?, 'started', ?, ?, ?, ?)",
            (event.backup_id, event.type, event.parent_id, _json_or_null(event.symbols),
             _json_or_null(event.timeframes), record.time),
        )

    elif isinstance(event, ev.BackupCommitted):
        return _apply_backup_committed(connection, record, event, store)

    elif isinstance(event, ev.BackupFailed):
        connection.execute(
            "UPDATE backups SET status = 'failed', failed_at = ?, error = ? WHERE backup_id = ?",
            (record.time, event.error, event.backup_id),
        )

    elif isinstance(event, (ev.RestoreCompleted, ev.RestoreFailed)):
        completed = isinstance(event, ev.RestoreCompleted)
        connection.execute(
            "INSERT INTO restores (seq, time, status, backup_id, requested_at, target, series_count, bar_count, error) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.seq, record.time, "completed" if completed else "failed", event.backup_id,
             event.requested_at, event.target,
             event.series_count if completed else None, event.bar_count if completed else None,
             None if completed else event.error),
        )

    elif isinstance(event, ev.VerifyCompleted):
        connection.execute(
            "INSERT INTO verifications (seq, time, read_data, backups_checked, objects_checked, fault_count, broken_backups) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (record.seq, record.time, int(event.read_data), event.backups_checked, event.objects_checked,
             len(event.faults), json.dumps(event.broken_backups)),
        )

    elif isinstance(event, _SYNC_EVENTS):
        _apply_sync_event(connection, record, event)

    elif isinstance(event, ev.RetentionDecided):
        _apply_retention(connection, record, event)

    return True


_SYNC_EVENTS = (ev.SyncQueued, ev.SyncStarted, ev.SyncCompleted, ev.SyncFailed, ev.SyncCancelled, ev.SyncRequeued)


def _apply_sync_event(connection, record, event) -> None:
    if isinstance(event, ev.SyncQueued):
        connection.execute(
            "INSERT INTO sync_tasks (task_id, queued_seq, status, source, target, symbols, timeframes, since, "
            "priority, dry_run, queued_at, attempts) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (event.task_id, record.seq, event.source, event.target, _json_or_null(event.symbols),
             _json_or_null(event.timeframes), event.since, event.priority, int(event.dry_run), record.time),
        )
    elif isinstance(event, ev.SyncStarted):
        connection.execute(
            "UPDATE sync_tasks SET status = 'running', started_at = ?, attempts = attempts + 1, pid = ? "
            "WHERE task_id = ?",
            (record.time, event.pid, event.task_id),
        )
    elif isinstance(event, ev.SyncCompleted):
        connection.execute(
            "UPDATE sync_tasks SET status = 'completed', finished_at = ?, bars_inserted = ?, bars_updated = ?, "
            "bars_revised = ?, duration_seconds = ?, error = NULL WHERE task_id = ?",
            (record.time, sum(s.bars_inserted for s in event.series), sum(s.bars_updated for s in event.series),
             sum(s.bars_revised for s in event.series), event.duration_seconds, event.task_id),
        )
        source = connection.execute("SELECT source FROM sync_tasks WHERE task_id = ?", (event.task_id,)).fetchone()
        if event.cache_id and source:
            connection.executemany(
                "INSERT OR REPLACE INTO source_files (cache_id, source, path, file_hash, task_id) VALUES (?, ?, ?, ?, ?)",
                [(event.cache_id, source[0], file.path, file.file_hash, event.task_id) for file in event.files],
            )
    elif isinstance(event, ev.SyncFailed):
        connection.execute(
            "UPDATE sync_tasks SET status = ?, finished_at = ?, duration_seconds = ?, error = ? WHERE task_id = ?",
            ("interrupted" if event.interrupted else "failed", record.time, event.duration_seconds, event.error,
             event.task_id),
        )
    elif isinstance(event, ev.SyncRequeued):
        connection.execute(
            "UPDATE sync_tasks SET status = 'queued', finished_at = NULL, error = NULL, pid = NULL "
            "WHERE task_id = ?",
            (event.task_id,),
        )
    else:
        connection.execute(
            "UPDATE sync_tasks SET status = 'cancelled', finished_at = ?, error = ? WHERE task_id = ?",
            (record.time, event.reason, event.task_id),
        )


def _apply_retention(connection, record, event: ev.RetentionDecided) -> None:
    policy = json.dumps(event.policy, sort_keys=True)
    connection.executemany(
        "INSERT INTO retention_decisions (seq, time, backup_id, keep, rule, bucket, needed_by, timezone, policy) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(record.seq, record.time, decision.backup_id, int(decision.keep), decision.rule, decision.bucket,
          decision.needed_by, event.timezone, policy) for decision in event.decisions],
    )
    forgotten = [decision for decision in event.decisions if not decision.keep]
    connection.executemany(
        "UPDATE backups SET status = 'forgotten' WHERE backup_id = ? AND status = 'committed'",
        [(decision.backup_id,) for decision in forgotten],
    )
    connection.executemany(
        "INSERT OR IGNORE INTO forgotten_backups (backup_id, seq, forgotten_at, rule, timezone) VALUES (?, ?, ?, ?, ?)",
        [(decision.backup_id, record.seq, record.time, decision.rule, event.timezone) for decision in forgotten],
    )


def _apply_backup_committed(connection, record, event: ev.BackupCommitted, store: ObjectStore) -> bool:
    series_count = len(event.series)
    bar_count = sum(summary.bar_count for summary in event.series)
    window_count = sum(summary.window_count for summary in event.series)
    connection.execute(
        "UPDATE backups SET status = 'committed', committed_at = ?, manifest_id = ?, parent_id = ?, "
        "base_full_id = ?, cache_id = ?, change_seq = ?, series_count = ?, bar_count = ?, window_count = ?, "
        "windows_written = ?, chunks_written = ?, bytes_written = ?, duration_seconds = ? WHERE backup_id = ?",
        (record.time, event.manifest_id, event.parent_id, event.base_full_id, event.cache_id, event.change_seq,
         series_count, bar_count, window_count, event.windows_written, event.chunks_written,
         event.bytes_written, event.duration_seconds, event.backup_id),
    )
    connection.executemany(
        "INSERT INTO backup_series (backup_id, symbol, timeframe, bar_count, window_count, first_ts, last_ts, windows_written) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(event.backup_id, s.symbol, s.timeframe, s.bar_count, s.window_count, s.first_ts, s.last_ts, s.windows_written)
         for s in event.series],
    )

    try:
        manifest = decode_manifest(event.manifest_id, store.get(event.manifest_id))
    except IntegrityError as error:
        logger.warning("manifest unreadable backup_id=%s error=%s", event.backup_id, error)
        return False
    connection.executemany(
        "INSERT INTO backup_chunks (backup_id, symbol, timeframe, window_start, position, chunk_id, bar_count) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(event.backup_id, entry.symbol, entry.timeframe, window.window_start, position, chunk_id, window.bar_count)
         for entry in manifest.series for window in entry.windows
         for position, chunk_id in enumerate(window.object_ids() or [None])],
    )
    return True


def rebuild_projections(connection: sqlite3.Connection, store: ObjectStore) -> tuple[int, int]:
    """Empty every projection table and replay the whole log into it, in one transaction.

    Returns (events replayed, manifests that could not be read).
    """
    replayed = 0
    missing = 0
    connection.execute("BEGIN IMMEDIATE")
    try:
        for table in PROJECTION_TABLES:
            connection.execute(f"DELETE FROM {table}")
        for record in list(ev.iter_events(connection)):
            if not apply_event(connection, record, store):
                missing += 1
            replayed += 1
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return replayed, missing
