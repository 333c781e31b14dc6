"""The health of a daemon and its repository: healthy, degraded or unhealthy, with the reasons.

Each check returns a status of its own: ok, degraded, unhealthy or skipped.
The overall status is the worst of them. A degraded daemon still keeps the
data safe but needs attention. An unhealthy one cannot be trusted to do so:
its catalog cannot be read, it is stopping, or the last verify found
backups that cannot be restored.
"""

import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psutil

from ...catalog import events as ev
from ...catalog.repository import CATALOG_FILE, connect_readonly
from ...i18n import _, ngettext
from ..config import Config
from ..daemon.state import DaemonState

HEALTHY = "healthy"
DEGRADED = "degraded"
UNHEALTHY = "unhealthy"

CHECK_OK = "ok"
CHECK_SKIPPED = "skipped"

# The scheduler loop counts as stalled after this many missed beats, and never sooner than the minimum.
STALL_BEATS = 5
MIN_STALL_SECONDS = 10.0

# Sync tasks that failed this long before the assessment make the daemon degraded.
SYNC_FAILURE_WINDOW = timedelta(hours=1)

# A reason lists at most this many backup ids, then "...".
MAX_LISTED_IDS = 5


@dataclass
class CheckResult:
    """The outcome of one check: its status, the reasons when it is not ok, and figures for /health."""

    status: str = CHECK_OK
    reasons: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def fail(self, status: str, reason: str) -> None:
        """Add `reason`, and raise the status to `status` unless it is already worse."""
        self.reasons.append(reason)
        if _STATUS_RANK[status] > _STATUS_RANK[self.status]:
            self.status = status

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": self.reasons, **self.details}


_STATUS_RANK = {CHECK_SKIPPED: 0, CHECK_OK: 0, DEGRADED: 1, UNHEALTHY: 2}


def assess_health(repository_path: Path | str, cache_path: Path | str, config: Config,
                  state: DaemonState | None, now: datetime | None = None) -> dict[str, Any]:
    """Run every check and return the JSON-ready health of the daemon and its repository.

    The result has `status` (healthy, degraded or unhealthy), `score` (see
    `health_score`), `reasons` (one translated line per problem), `checks`
    (each check's status, reasons and figures) and `time` (UTC). With
    `state` None, as when no daemon runs, the daemon checks are skipped.
    A catalog that is missing or cannot be read makes the result unhealthy,
    and this function does not raise for it.
    """
    now = now or datetime.now(timezone.utc)

    checks = {
        "daemon": check_daemon(state),
        "schedules": check_schedules(state),
        **check_catalog(Path(repository_path), now),
        "disk": check_disk([Path(repository_path), Path(cache_path)],
                           config.sync_config.resource_limits.min_free_disk_gb),
    }

    status = _overall_status(checks.values())
    return {
        "status": status,
        "score": health_score(status, checks.values()),
        "reasons": [reason for check in checks.values() for reason in check.reasons],
        "checks": {name: check.as_dict() for name, check in checks.items()},
        "time": ev.format_time(now),
    }


def health_score(status: str, checks) -> float:
    """Return 0 when unhealthy, else the share of the checks that ran and passed (1.0 when healthy)."""
    if status == UNHEALTHY:
        return 0.0
    ran = [check for check in checks if check.status != CHECK_SKIPPED]
    if not ran:
        return 1.0
    return sum(check.status == CHECK_OK for check in ran) / len(ran)


def _overall_status(checks) -> str:
    worst = max((_STATUS_RANK[check.status] for check in checks), default=0)
    return {0: HEALTHY, 1: DEGRADED, 2: UNHEALTHY}[worst]


def stall_seconds(loop_interval: float) -> float:
    """Return how long the scheduler loop may go without a beat before it counts as stalled."""
    return max(MIN_STALL_SECONDS, STALL_BEATS * loop_interval)


def check_daemon(state: DaemonState | None) -> CheckResult:
    """Check that the scheduler loop beats and that the daemon is not stopping."""
    if state is None:
        return CheckResult(CHECK_SKIPPED)
    snapshot = state.snapshot()
    limit = stall_seconds(snapshot["loop_interval"])
    result = CheckResult(details={
        "seconds_since_beat": round(snapshot["seconds_since_beat"], 3),
        "stall_after_seconds": limit,
        "uptime_seconds": round(snapshot["uptime_seconds"], 3),
        "running_jobs": snapshot["running_jobs"],
        "stopping": snapshot["stopping"],
    })

    if snapshot["stopping"]:
        result.fail(UNHEALTHY, _("the daemon is stopping"))
    if snapshot["seconds_since_beat"] > limit:
        result.fail(DEGRADED, _("the scheduler loop has not run for {seconds:.0f} s").format(
            seconds=snapshot["seconds_since_beat"]))
    return result


def check_schedules(state: DaemonState | None) -> CheckResult:
    """Report each schedule that the daemon could not read."""
    if state is None:
        return CheckResult(CHECK_SKIPPED)
    errors = state.snapshot()["schedule_errors"]
    result = CheckResult(details={"errors": errors})
    for error in errors:
        # DaemonState keeps each error as "NAME: REASON", e.g. "backup:nightly: invalid cron ...".
        name, separator, reason = error.partition(": ")
        if separator:
            message = _("schedule {name} is invalid: {reason}").format(name=name, reason=reason)
        else:
            message = _("a schedule is invalid: {reason}").format(reason=error)
        result.fail(DEGRADED, message)
    return result


def check_catalog(repository_path: Path, now: datetime) -> dict[str, CheckResult]:
    """Open the catalog read-only and run the checks that read it: catalog, backups, sync and verify.

    A missing or unreadable catalog makes `catalog` unhealthy and the others skipped.
    """
    path = repository_path / CATALOG_FILE
    if not path.is_file():
        return _catalog_failed(path, _("the catalog {path} is missing").format(path=path))

    try:
        connection = connect_readonly(repository_path)
        try:
            event_count = connection.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            return {
                "catalog": CheckResult(details={"path": str(path), "events": event_count}),
                "backups": check_backups(connection),
                "sync": check_sync(connection, now),
                "verify": check_verify(connection),
                "jobs": check_jobs(connection),
            }
        finally:
            connection.close()
    except sqlite3.Error as error:
        return _catalog_failed(path, _("the catalog {path} cannot be read: {error}").format(path=path, error=error))


def _catalog_failed(path: Path, reason: str) -> dict[str, CheckResult]:
    failed = CheckResult(details={"path": str(path)})
    failed.fail(UNHEALTHY, reason)
    return {"catalog": failed, "backups": CheckResult(CHECK_SKIPPED), "sync": CheckResult(CHECK_SKIPPED),
            "verify": CheckResult(CHECK_SKIPPED), "jobs": CheckResult(CHECK_SKIPPED)}


def check_backups(connection: sqlite3.Connection) -> CheckResult:
    """Report each backup type whose latest failure came after its latest commit."""
    last_commits = dict(connection.execute(
        "SELECT type, max(committed_at) FROM backups WHERE committed_at IS NOT NULL GROUP BY type"
    ).fetchall())
    # SQLite takes the other columns of a max() query from the row with the maximum.
    last_failures = connection.execute(
        "SELECT type, max(failed_at), error FROM backups WHERE status = 'failed' GROUP BY type ORDER BY type"
    ).fetchall()

    result = CheckResult(details={"last_committed_at": last_commits, "last_failed_at": {}})
    for backup_type, failed_at, error in last_failures:
        result.details["last_failed_at"][backup_type] = failed_at
        committed_at = last_commits.get(backup_type)
        if committed_at is None or failed_at > committed_at:
            result.fail(DEGRADED, _("the latest {type} backup failed at {time}: {error}").format(
                type=backup_type, time=failed_at, error=error))
    return result


def check_jobs(connection: sqlite3.Connection) -> CheckResult:
    """Report each scheduled job whose latest run failed, such as a backup that found no cache."""
    rows = connection.execute(
        "SELECT subject, time, json_extract(payload, '$.ok'), json_extract(payload, '$.error') FROM events e "
        "WHERE kind = 'job.finished' AND seq = (SELECT max(seq) FROM events l "
        "WHERE l.kind = 'job.finished' AND l.subject = e.subject) ORDER BY subject"
    ).fetchall()
    result = CheckResult(details={"last_runs": {job: {"time": time, "ok": bool(ok)} for job, time, ok, _ in rows}})
    for job, time, ok, error in rows:
        if not ok:
            result.fail(DEGRADED, _("the latest run of {job}, at {time}, failed: {error}").format(
                job=job, time=time, error=error))
    return result


def check_sync(connection: sqlite3.Connection, now: datetime) -> CheckResult:
    """Report sync tasks that failed in the last hour. Interrupted tasks do not count, because they run again."""
    since = ev.format_time(now - SYNC_FAILURE_WINDOW)
    (count,) = connection.execute(
        "SELECT count(*) FROM sync_tasks WHERE status = 'failed' AND finished_at >= ?", (since,)
    ).fetchone()
    result = CheckResult(details={"failed_since": since, "failed_tasks": count})
    if count:
        result.fail(DEGRADED, ngettext("{count} sync task failed in the last hour",
                                       "{count} sync tasks failed in the last hour", count).format(count=count))
    return result


def check_verify(connection: sqlite3.Connection) -> CheckResult:
    """Report the faults of the latest verify.

    Broken backups make the result unhealthy, because restoring them would
    fail and the data they hold may be lost. Faults that break no backup
    only make it degraded, because every backup can still be restored.
    """
    row = connection.execute(
        "SELECT time, fault_count, broken_backups FROM verifications ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return CheckResult(details={"last_verified_at": None})
    verified_at, fault_count, broken_json = row
    broken = sorted(_json_list(broken_json))
    result = CheckResult(details={"last_verified_at": verified_at, "fault_count": fault_count,
                                  "broken_backups": broken})

    if broken:
        listed = ", ".join(broken[:MAX_LISTED_IDS]) + (", ..." if len(broken) > MAX_LISTED_IDS else "")
        result.fail(UNHEALTHY, ngettext(
            "the last verify, at {time}, found {count} broken backup: {ids}",
            "the last verify, at {time}, found {count} broken backups: {ids}", len(broken),
        ).format(time=verified_at, count=len(broken), ids=listed))
    elif fault_count:
        result.fail(DEGRADED, ngettext(
            "the last verify, at {time}, found {count} fault",
            "the last verify, at {time}, found {count} faults", fault_count,
        ).format(time=verified_at, count=fault_count))
    return result


def _json_list(text: str) -> list[str]:
    value = json.loads(text)
    return value if isinstance(value, list) else []


def check_disk(paths: list[Path], min_free_gb: float | None) -> CheckResult:
    """Report each file system under `paths` whose free space is below `min_free_gb` gigabytes (10**9 bytes).

    With `min_free_gb` None the check is skipped. A path that does not exist
    yet is measured at its nearest existing parent.
    """
    if min_free_gb is None:
        return CheckResult(CHECK_SKIPPED)
    result = CheckResult(details={"min_free_disk_gb": min_free_gb, "free_gb": {}})
    seen_devices: set[int] = set()
    for path in paths:
        existing = next((candidate for candidate in (path, *path.parents) if candidate.exists()), Path("/"))
        try:
            device = os.stat(existing).st_dev
            free_gb = psutil.disk_usage(str(existing)).free / 1e9
        except OSError as error:
            result.fail(DEGRADED, _("cannot measure the free disk space under {path}: {error}").format(
                path=existing, error=error.strerror or error))
            continue
        if device in seen_devices:
            continue
        seen_devices.add(device)
        result.details["free_gb"][str(existing)] = round(free_gb, 3)
        if free_gb < min_free_gb:
            result.fail(DEGRADED, _("free disk under {path} is {free:.3g} GB, below min_free_disk_gb {limit:g} GB")
                        .format(path=existing, free=free_gb, limit=min_free_gb))
    return result
