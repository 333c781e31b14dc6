"""The activity report of the last hours, computed from the event log alone.

It reports what the original guide's daily analysis reported: syncs started,
completed and failed, the success rate, the average sync duration, backups
created, errors by kind and tasks by direction. Events are read with SQL over
the window, so the cost grows with the events in the window, not the log.
"""

from collections import Counter
from datetime import datetime, timedelta, timezone

import msgspec

from ..catalog import events as ev
from ..catalog.repository import Repository
from .sync.tasks import LOCATIONS


def activity_report(repository: Repository, hours: float, now: datetime | None = None) -> dict:
    """Return the report of the `hours` before `now` (default: the current time) as a JSON-ready dict."""
    end = now or datetime.now(timezone.utc)
    start = end - timedelta(hours=hours)
    rows = repository.connection.execute(
        "SELECT kind, payload FROM events WHERE time >= ? AND time <= ? ORDER BY seq",
        (ev.format_time(start), ev.format_time(end)),
    ).fetchall()

    kinds = Counter(kind for kind, _payload in rows)
    durations = []
    errors: Counter = Counter()
    directions: Counter = Counter()
    backups_by_type: Counter = Counter()
    for kind, payload in rows:
        event = msgspec.json.decode(payload, type=ev.EVENT_TYPES[kind])
        if isinstance(event, ev.SyncCompleted):
            durations.append(event.duration_seconds)
        elif isinstance(event, ev.SyncFailed):
            errors[f"sync.failed: {event.error_kind}"] += 1
        elif isinstance(event, ev.SyncQueued):
            source = event.source if event.source in LOCATIONS else "primary"
            directions[f"{source} → {event.target}"] += 1
        elif isinstance(event, ev.BackupCommitted):
            backups_by_type[_backup_type(repository, event.backup_id)] += 1
        elif kind.endswith(".failed"):
            errors[kind] += 1

    finished = kinds["sync.completed"] + kinds["sync.failed"]
    return {
        "from": ev.format_time(start),
        "to": ev.format_time(end),
        "hours": hours,
        "syncs_started": kinds["sync.started"],
        "syncs_completed": kinds["sync.completed"],
        "syncs_failed": kinds["sync.failed"],
        "sync_retries": kinds["sync.retried"],
        "sync_success_rate": kinds["sync.completed"] / finished if finished else None,
        "sync_average_seconds": sum(durations) / len(durations) if durations else None,
        "bars_revised_events": kinds["bars.revised"],
        "backups_created": sum(backups_by_type.values()),
        "backups_by_type": dict(sorted(backups_by_type.items())),
        "backups_failed": kinds["backup.failed"],
        "prune_runs": kinds["retention.decided"],
        "errors_by_kind": dict(errors.most_common()),
        "tasks_by_direction": dict(directions.most_common()),
    }


def _backup_type(repository: Repository, backup_id: str) -> str:
    row = repository.connection.execute("SELECT type FROM backups WHERE backup_id = ?", (backup_id,)).fetchone()
    return row[0] if row else "unknown"
