"""The Prometheus metrics of tvcat, read from the projections and the bar cache at each scrape.

Nothing is counted in memory. Every value comes from the catalog, the cache
or the daemon's live state when Prometheus scrapes, so the values are right
straight after a restart. The counters never decrease, because they count
events or sync tasks in final states, and the event log only grows.
"""

import bisect
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

from ...catalog import events as ev
from ...catalog.repository import CATALOG_FILE
from ...catalog.repository import connect_readonly as connect_catalog
from ..cache import connect_readonly as connect_cache, series_last_bars
from ..config import Config
from ..config.checks import redact_url
from ..config.schema import BACKUP_TYPE_NAMES
from ..daemon.state import DaemonState
from ..status import repository_bytes
from .health import assess_health

logger = logging.getLogger(__name__)

# Upper bounds of the backup duration buckets, in seconds: from a small
# incremental to a full backup of a large cache.
BACKUP_DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)

BACKUP_STATUSES = ("started", "committed", "failed")

# Final states of a sync task. An interrupted task is queued again, so it is not final.
FINISHED_SYNC_STATUSES = ("completed", "failed", "cancelled")


def create_registry(repository_path: Path | str, cache_path: Path | str, config: Config,
                    state: DaemonState | None) -> CollectorRegistry:
    """Return a new registry, separate from prometheus_client's global one, with a TvcatCollector registered."""
    registry = CollectorRegistry()
    registry.register(TvcatCollector(repository_path, cache_path, config, state))
    return registry


class TvcatCollector:
    """A prometheus_client collector that reads the catalog, the cache and the daemon state at each scrape.

    `collect` may run in several HTTP threads at once, so each call opens its
    own read-only connections and closes them before it returns. A catalog
    or cache that cannot be read leaves its families without samples, and
    the failure is logged once until it changes.
    """

    def __init__(self, repository_path: Path | str, cache_path: Path | str, config: Config,
                 state: DaemonState | None) -> None:
        self.repository_path = Path(repository_path)
        self.cache_path = Path(cache_path)
        self.config = config
        self.state = state
        self._last_errors: dict[str, str | None] = {"catalog": None, "cache": None}
        self._errors_lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        yield from self._catalog_families()
        yield from self._cache_families()
        yield from self._daemon_families()

    def _catalog_families(self) -> list[Metric]:
        if not (self.repository_path / CATALOG_FILE).is_file():
            self._note_error("catalog", f"no catalog at {self.repository_path / CATALOG_FILE}")
            return []
        try:
            connection = connect_catalog(self.repository_path)
            try:
                families = catalog_families(connection)
            finally:
                connection.close()
        except sqlite3.Error as error:
            self._note_error("catalog", str(error))
            return []
        self._note_error("catalog", None)
        return families

    def _cache_families(self) -> list[Metric]:
        family = GaugeMetricFamily(
            "tvcat_series_last_bar_timestamp_seconds",
            "Open time of the newest bar of each series in the bar cache, in Unix seconds.",
            labels=["symbol", "timeframe"], unit="seconds",
        )
        if not self.cache_path.is_file():
            return [family]
        try:
            connection = connect_cache(self.cache_path)
            try:
                last_bars = series_last_bars(connection)
            finally:
                connection.close()
        except sqlite3.Error as error:
            self._note_error("cache", str(error))
            return [family]
        self._note_error("cache", None)
        for symbol, timeframe, last_ts in last_bars:
            family.add_metric([symbol, timeframe], last_ts)
        return [family]

    def _daemon_families(self) -> list[Metric]:
        health = assess_health(self.repository_path, self.cache_path, self.config, self.state)
        families = [GaugeMetricFamily(
            "tvcat_health_score",
            "Health from 0 to 1: 0 when unhealthy, else the share of the health checks that pass; "
            "/health gives the reasons.",
            value=health["score"],
        )]
        if self.state is None:
            return families

        snapshot = self.state.snapshot()
        families.append(GaugeMetricFamily(
            "tvcat_daemon_uptime_seconds", "Seconds since the daemon started.",
            value=snapshot["uptime_seconds"], unit="seconds",
        ))
        families.append(GaugeMetricFamily(
            "tvcat_jobs_running", "Scheduled jobs running now.", value=len(snapshot["running_jobs"]),
        ))
        return families

    def _note_error(self, source: str, error: str | None) -> None:
        """Log a read failure of `source` when it first appears or changes, and its recovery once."""
        with self._errors_lock:
            if error == self._last_errors[source]:
                return
            self._last_errors[source] = error
        if error is None:
            logger.info("metrics can read %s again", source)
        else:
            logger.warning("metrics cannot read %s: %s", source, error)


def catalog_families(connection: sqlite3.Connection) -> list[Metric]:
    """Return the families computed from the catalog's event log and projections."""
    return [
        backups_total(connection),
        backup_duration(connection),
        sync_tasks_total(connection),
        _single_gauge(connection, "tvcat_sync_queue_size", "Sync tasks queued and not started yet.",
                      "SELECT count(*) FROM sync_tasks WHERE status = 'queued'"),
        GaugeMetricFamily(
            "tvcat_repository_bytes",
            "Bytes of the repository's objects: written by committed backups, less freed by garbage collection.",
            value=repository_bytes(connection), unit="bytes",
        ),
        last_backup_timestamps(connection),
        _events_total(connection),
    ]


def backups_total(connection: sqlite3.Connection) -> Metric:
    """Count the backup.started, backup.committed and backup.failed events by backup type."""
    family = CounterMetricFamily("tvcat_backups", "Backups started, committed and failed, by type.",
                                 labels=["type", "status"])
    counts = {(backup_type, status): 0 for backup_type in BACKUP_TYPE_NAMES for status in BACKUP_STATUSES}
    rows = connection.execute(
        "SELECT json_extract(payload, '$.type'), kind, count(*) FROM events "
        "WHERE kind IN ('backup.started', 'backup.committed', 'backup.failed') GROUP BY 1, 2"
    )
    for backup_type, kind, count in rows:
        counts[(backup_type, kind.removeprefix("backup."))] = count
    for (backup_type, status), count in sorted(counts.items()):
        family.add_metric([backup_type, status], count)
    return family


def backup_duration(connection: sqlite3.Connection) -> Metric:
    """Build a histogram per type of the durations of every backup that committed, forgotten ones included."""
    family = HistogramMetricFamily("tvcat_backup_duration_seconds",
                                   "Time from backup.started to backup.committed, by backup type.",
                                   labels=["type"], unit="seconds")
    durations: dict[str, list[float]] = {backup_type: [] for backup_type in BACKUP_TYPE_NAMES}
    rows = connection.execute(
        "SELECT type, duration_seconds FROM backups WHERE committed_at IS NOT NULL AND duration_seconds IS NOT NULL"
    )
    for backup_type, duration in rows:
        durations.setdefault(backup_type, []).append(duration)

    for backup_type, values in sorted(durations.items()):
        values.sort()
        buckets = [(_bucket_label(bound), bisect.bisect_right(values, bound)) for bound in BACKUP_DURATION_BUCKETS]
        buckets.append(("+Inf", len(values)))
        family.add_metric([backup_type], buckets, sum(values))
    return family


def _bucket_label(bound: float) -> str:
    return repr(float(bound))


def sync_tasks_total(connection: sqlite3.Connection) -> Metric:
    """Count the sync tasks that reached a final state, by source, target and that state."""
    family = CounterMetricFamily(
        "tvcat_sync_tasks",
        "Sync tasks that finished, by source, target and final status (completed, failed or cancelled). "
        "Credentials in a source URL are replaced by ***.",
        labels=["source", "target", "status"],
    )
    placeholders = ", ".join("?" * len(FINISHED_SYNC_STATUSES))
    rows = connection.execute(
        f"SELECT source, target, status, count(*) FROM sync_tasks WHERE status IN ({placeholders}) "
        "GROUP BY source, target, status ORDER BY source, target, status",
        FINISHED_SYNC_STATUSES,
    )
    counts: dict[tuple[str, str, str], int] = {}
    for source, target, status, count in rows:
        # Two sources that differ only in a redacted password share one label set.
        key = (source_label(source), target, status)
        counts[key] = counts.get(key, 0) + count
    for labels, count in counts.items():
        family.add_metric(list(labels), count)
    return family


def source_label(source: str) -> str:
    """Return a sync source as a label value: as it is, except that a URL loses its credentials."""
    if "://" in source:
        return redact_url(source)
    return source


def last_backup_timestamps(connection: sqlite3.Connection) -> Metric:
    """Return the time of the latest commit of each backup type, forgotten backups included."""
    family = GaugeMetricFamily("tvcat_last_backup_timestamp_seconds",
                               "Time of the latest committed backup of each type, in Unix seconds.",
                               labels=["type"], unit="seconds")
    rows = connection.execute(
        "SELECT type, max(committed_at) FROM backups WHERE committed_at IS NOT NULL GROUP BY type ORDER BY type"
    )
    for backup_type, committed_at in rows:
        family.add_metric([backup_type], ev.parse_time(committed_at).timestamp())
    return family


def _events_total(connection: sqlite3.Connection) -> Metric:
    # seq has no gaps, so the largest seq is the number of events.
    (count,) = connection.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    return CounterMetricFamily("tvcat_events", "Events in the catalog's event log.", value=count)


def _single_gauge(connection: sqlite3.Connection, name: str, documentation: str, query: str,
                  unit: str = "") -> Metric:
    (value,) = connection.execute(query).fetchone()
    return GaugeMetricFamily(name, documentation, value=value, unit=unit)


