"""The metrics that alert conditions name, measured from the event log, the projections, the cache and the disk.

Each measure reads a MeasureContext: the repository, the cache path, the
rule (for its window and backup type) and the time `now`. It returns the
value, or None when the metric has no value at that time. The rule is then
skipped, which is not an error. Counts and rates look at events with
`now - window_seconds < time <= now`.
"""

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psutil

from ...catalog import events as ev
from ...catalog.repository import Repository
from ...errors import InvalidInput
from ...i18n import N_
from ..cache import connect_readonly, series_last_bars
from ..config.checks import ALERT_METRICS
from ..config.schema import AlertRule

logger = logging.getLogger(__name__)

SECONDS_PER_HOUR = 3600.0


class UnknownMetric(InvalidInput):
    """An alert rule built without the configuration loader, naming a metric that tvcat does not measure."""

    template = N_("unknown metric {metric!r} in alert rule {rule!r}: use one of {known}")


@dataclass(frozen=True)
class MeasureContext:
    """The inputs of one measurement: the repository, the cache file, the rule and the evaluation time."""

    repository: Repository
    cache_path: Path | None
    rule: AlertRule
    now: datetime

    def window(self) -> tuple[str, str]:
        """Return the rule's window as events.time texts: (start, exclusive; end, inclusive)."""
        start = self.now - timedelta(seconds=self.rule.window_seconds)
        return ev.format_time(start), ev.format_time(self.now)


def _count_events(context: MeasureContext, kind: str, condition: str = "1") -> int:
    start, end = context.window()
    (count,) = context.repository.connection.execute(
        f"SELECT count(*) FROM events WHERE kind = ? AND time > ? AND time <= ? AND {condition}",
        (kind, start, end),
    ).fetchone()
    return count


# An interrupted task was stopped by a signal or a cancel and runs again, so it is not a failure.
_NOT_INTERRUPTED = "coalesce(json_extract(payload, '$.interrupted'), 0) = 0"


def measure_sync_failure_count(context: MeasureContext) -> float:
    """Count the sync tasks that failed within the window, interrupted ones excluded."""
    return float(_count_events(context, "sync.failed", _NOT_INTERRUPTED))


def measure_sync_failure_rate(context: MeasureContext) -> float:
    """Return failed / (completed + failed) for the sync tasks that finished within the window, or 0 when none did."""
    failed = _count_events(context, "sync.failed", _NOT_INTERRUPTED)
    completed = _count_events(context, "sync.completed")
    finished = failed + completed
    return failed / finished if finished else 0.0


def measure_backup_failure_count(context: MeasureContext) -> float:
    """Count the backup.failed events within the window, plus scheduled backups that failed before starting.

    A scheduled backup can fail before it records backup.started, for
    example when the cache is missing; its job.finished then names the failure.
    """
    return float(_count_events(context, "backup.failed") + _count_silent_job_failures(context, "backup:%",
                                                                                       "backup.failed"))


def measure_verify_failure_count(context: MeasureContext) -> float:
    """Count the verify runs within the window that found a fault, plus scheduled verify runs that crashed."""
    faults = _count_events(context, "verify.completed", "json_array_length(payload, '$.faults') > 0")
    return float(faults + _count_silent_job_failures(context, "verify", "verify.completed"))


def _count_silent_job_failures(context: MeasureContext, job_pattern: str, outcome_kind: str) -> int:
    """Count failed daemon jobs within the window that recorded no `outcome_kind` event while they ran."""
    start, end = context.window()
    (count,) = context.repository.connection.execute(
        "SELECT count(*) FROM events f WHERE f.kind = 'job.finished' AND f.subject LIKE ? "
        "AND json_extract(f.payload, '$.ok') = 0 AND f.time > ? AND f.time <= ? "
        "AND NOT EXISTS (SELECT 1 FROM events o WHERE o.kind = ? AND o.seq < f.seq AND o.seq > ("
        "  SELECT coalesce(max(s.seq), 0) FROM events s WHERE s.kind = 'job.fired' AND s.subject = f.subject "
        "  AND s.seq < f.seq))",
        (job_pattern, start, end, outcome_kind),
    ).fetchone()
    return count


def measure_disk_usage(context: MeasureContext) -> float:
    """Return the used fraction, 0 to 1, of the filesystem that contains the repository, as `df` computes it.

    Like df's Use%, it divides by the space that unprivileged users can
    fill (used plus available), so blocks reserved for root count as full.
    """
    usage = psutil.disk_usage(str(context.repository.path))
    return usage.used / (usage.used + usage.free)


def measure_backup_age_hours(context: MeasureContext) -> float | None:
    """Return the hours from the newest committed backup (of the rule's backup type, when set) to `now`.

    A backup that retention forgot later still counts: it was committed.
    With no such backup, the age runs from the first event of the log, so
    a repository that never had a backup raises the alert once it is old
    enough. An empty log has no value.
    """
    end = ev.format_time(context.now)
    query = "SELECT max(committed_at) FROM backups WHERE committed_at IS NOT NULL AND committed_at <= ?"
    parameters: tuple = (end,)
    if context.rule.backup_type is not None:
        query += " AND type = ?"
        parameters += (context.rule.backup_type,)
    (newest,) = context.repository.connection.execute(query, parameters).fetchone()

    if newest is None:
        (newest,) = context.repository.connection.execute("SELECT min(time) FROM events").fetchone()
    if newest is None:
        return None
    return (context.now - ev.parse_time(newest)).total_seconds() / SECONDS_PER_HOUR


def measure_data_age_hours(context: MeasureContext) -> float | None:
    """Return the largest, over the cache's series, of the hours from the series' last bar open to `now`.

    NOTE: a series' last bar opens one bar length before the data is
    current, and markets close at weekends, so a daily series is a day old
    when it is up to date: the rule's threshold must allow for that.
    No cache, or a cache with no bars, has no value.
    """
    if context.cache_path is None or not Path(context.cache_path).exists():
        return None

    connection = connect_readonly(context.cache_path)
    try:
        last_bar_times = [last_ts for _, _, last_ts in series_last_bars(connection)]
    finally:
        connection.close()

    if not last_bar_times:
        return None
    oldest = min(last_bar_times)
    return (context.now.timestamp() - oldest) / SECONDS_PER_HOUR




MEASURES: dict[str, Callable[[MeasureContext], float | None]] = {
    "sync_failure_rate": measure_sync_failure_rate,
    "sync_failure_count": measure_sync_failure_count,
    "backup_failure_count": measure_backup_failure_count,
    "verify_failure_count": measure_verify_failure_count,
    "disk_usage": measure_disk_usage,
    "backup_age_hours": measure_backup_age_hours,
    "data_age_hours": measure_data_age_hours,
}


# The change of a value that counts as new evidence while an alert fires. Counts
# and rates change only when an event enters or leaves the window, so any change
# is evidence. Ages and disk usage drift at every evaluation, so they count in
# whole hours and whole percent, which bounds the alert.suppressed events.
_EVIDENCE_STEPS: dict[str, float] = {
    "disk_usage": 0.01,
    "backup_age_hours": 1.0,
    "data_age_hours": 1.0,
}


def is_new_evidence(metric: str, previous: float, current: float) -> bool:
    """Return True if `current` differs from `previous` by enough to report it again."""
    step = _EVIDENCE_STEPS.get(metric)
    if step is None:
        return current != previous
    return int(current // step) != int(previous // step)


def measure(repository: Repository, cache_path: Path | None, name: str, rule: AlertRule, now: datetime) -> float | None:
    """Return the value of the metric of `rule` at `now`, or None when it has no value.

    `name` is the rule's name, for messages. Raises UnknownMetric for a
    metric that tvcat does not measure. A database or file error while
    measuring is logged, and the metric then has no value, so one broken
    input does not stop the other rules.
    """
    metric = rule.condition.metric
    measure_function = MEASURES.get(metric)
    if measure_function is None:
        raise UnknownMetric(metric=metric, rule=name, known=", ".join(ALERT_METRICS))

    try:
        return measure_function(MeasureContext(repository, cache_path, rule, now))
    except (sqlite3.Error, OSError) as error:
        logger.warning("alert metric unavailable rule=%s metric=%s error=%s", name, metric, error)
        return None
