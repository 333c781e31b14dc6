"""The monitoring server over real HTTP: /metrics against the projections, /health and its transitions, errors."""

import logging
import shutil
import socket
import sqlite3
import time
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tvcat.catalog import events as ev
from tvcat.catalog.repository import Repository
from tvcat.engine.backup import BackupType, Scope, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.config import Config
from tvcat.engine.config.schema import ResourceLimits, SyncConfig
from tvcat.engine.daemon.state import DaemonState
from tvcat.engine.importing import import_files
from tvcat.engine.monitor.metrics import source_label
from tvcat.engine.monitor.server import MonitoringAddressUnavailable, start_monitoring_server
from tvcat.engine.sync.runner import run_queued
from tvcat.engine.sync.tasks import SyncTask, queue_task
from tvcat.engine.verify import verify_repository
from tvcat.errors import NothingToBackUp

BACKUP_TYPES = ("full", "incremental", "differential", "snapshot")


def import_sample(repository: Repository, cache: BarCache, import_arguments: list[str]) -> None:
    """Import the bundled EURUSD hourly sample, given as the arguments of `tvcat import`."""
    path, *options = import_arguments
    option = dict(zip(options[::2], options[1::2]))
    import_files(repository, cache, [Path(path)], symbol=option["--symbol"], timeframe=option["--timeframe"],
                 tz=option["--tz"])


def fail_full_backup(repository: Repository, cache: BarCache) -> None:
    """Take a full backup of a scope with no bars, which records backup.started and backup.failed."""
    with pytest.raises(NothingToBackUp):
        create_backup(repository, cache, BackupType.FULL, Scope(symbols=["FX:NOTHERE"]))


@pytest.fixture
def imported(repository: Repository, cache: BarCache, sample_import_arguments: list[str]) -> BarCache:
    """The cache with the bundled sample imported."""
    import_sample(repository, cache, sample_import_arguments)
    return cache


@pytest.fixture(scope="module")
def backed_up_template(tmp_path_factory, sample_import_arguments: list[str]) -> Path:
    """A directory with repo/ and cache.db: a failed full backup, then a full, an incremental and a snapshot.

    It is built once per module, because each backup starts a reader process,
    and copied for each test by `backed_up`.
    """
    root = tmp_path_factory.mktemp("backed-up")
    repository = Repository(root / "repo")
    cache = BarCache(root / "cache.db")
    try:
        import_sample(repository, cache, sample_import_arguments)
        fail_full_backup(repository, cache)
        for backup_type in (BackupType.FULL, BackupType.INCREMENTAL, BackupType.SNAPSHOT):
            create_backup(repository, cache, backup_type)
    finally:
        cache.close()
        repository.close()
    return root


@pytest.fixture
def backed_up(backed_up_template: Path, repo_path: Path, cache_path: Path):
    """The repository of `backed_up_template`, copied to repo_path with its cache at cache_path, and open."""
    # Both databases were closed, so SQLite checkpointed their WAL files into the main files.
    shutil.copytree(backed_up_template / "repo", repo_path)
    shutil.copy2(backed_up_template / "cache.db", cache_path)
    repository = Repository(repo_path, create=False)
    yield repository
    repository.close()


@pytest.fixture
def client():
    # trust_env=False keeps proxy variables of the host from routing loopback requests elsewhere.
    with httpx.Client(trust_env=False, timeout=10.0) as client:
        yield client


@pytest.fixture
def serve():
    """Start monitoring servers on 127.0.0.1, each on a free port, and stop them all after the test."""
    servers = []

    def start(repository_path, cache_path, config: Config | None = None, state: DaemonState | None = None):
        server = start_monitoring_server("127.0.0.1", 0, repository_path, cache_path, config or Config(), state)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def scrape(client: httpx.Client, server) -> dict[tuple[str, frozenset], float]:
    """Return every sample of /metrics, keyed by (sample name, frozenset of label items)."""
    response = client.get(server.url + "/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def names(samples: dict) -> set[str]:
    return {name for name, _labels in samples}


def get_health(client: httpx.Client, server) -> tuple[int, dict]:
    response = client.get(server.url + "/health")
    assert response.headers["Content-Type"].startswith("application/json")
    return response.status_code, response.json()


def query(repo_path: Path, sql: str, parameters: tuple = ()) -> list[tuple]:
    connection = sqlite3.connect(repo_path / "catalog.db")
    try:
        return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


def test_metrics_content_type(client, serve, backed_up, repo_path, cache_path):
    server = serve(repo_path, cache_path)

    response = client.get(server.url + "/metrics")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST


def test_backup_counts_match_projection(client, serve, backed_up, repo_path, cache_path):
    samples = scrape(client, serve(repo_path, cache_path))

    for backup_type in BACKUP_TYPES:
        [(started, committed, failed)] = query(
            repo_path,
            "SELECT count(*), count(committed_at), coalesce(sum(status = 'failed'), 0) FROM backups WHERE type = ?",
            (backup_type,),
        )
        assert value(samples, "tvcat_backups_total", type=backup_type, status="started") == started
        assert value(samples, "tvcat_backups_total", type=backup_type, status="committed") == committed
        assert value(samples, "tvcat_backups_total", type=backup_type, status="failed") == failed
    assert value(samples, "tvcat_backups_total", type="full", status="started") == 2
    assert value(samples, "tvcat_backups_total", type="full", status="failed") == 1
    assert value(samples, "tvcat_backups_total", type="snapshot", status="committed") == 1


def test_backup_times_and_bytes_match_projection(client, serve, backed_up, repo_path, cache_path):
    samples = scrape(client, serve(repo_path, cache_path))

    rows = query(repo_path, "SELECT type, max(committed_at), count(*), sum(duration_seconds) FROM backups "
                            "WHERE committed_at IS NOT NULL GROUP BY type")
    assert {row[0] for row in rows} == {"full", "incremental", "snapshot"}
    for backup_type, committed_at, count, duration_sum in rows:
        expected_time = ev.parse_time(committed_at).timestamp()
        assert value(samples, "tvcat_last_backup_timestamp_seconds", type=backup_type) == pytest.approx(expected_time)
        assert value(samples, "tvcat_backup_duration_seconds_count", type=backup_type) == count
        assert value(samples, "tvcat_backup_duration_seconds_sum", type=backup_type) == pytest.approx(duration_sum)
        assert value(samples, "tvcat_backup_duration_seconds_bucket", type=backup_type, le="+Inf") == count
    assert value(samples, "tvcat_last_backup_timestamp_seconds", type="differential") is None

    [(stored_bytes,)] = query(repo_path, "SELECT sum(bytes_written) FROM backups WHERE status = 'committed'")
    assert stored_bytes > 0
    assert value(samples, "tvcat_repository_bytes") == stored_bytes
    [(event_count,)] = query(repo_path, "SELECT count(*) FROM events")
    assert value(samples, "tvcat_events_total") == event_count


def test_series_last_bar_matches_cache(client, serve, backed_up, repo_path, cache_path):
    connection = sqlite3.connect(cache_path)
    try:
        rows = connection.execute("SELECT symbol, timeframe, max(ts) FROM bars GROUP BY symbol, timeframe").fetchall()
    finally:
        connection.close()

    samples = scrape(client, serve(repo_path, cache_path))

    assert rows == [("FX:EURUSD", "60", rows[0][2])]
    for symbol, timeframe, last_ts in rows:
        assert value(samples, "tvcat_series_last_bar_timestamp_seconds", symbol=symbol, timeframe=timeframe) == last_ts


def test_missing_cache_no_series_samples(client, serve, backed_up, repo_path, tmp_path):
    samples = scrape(client, serve(repo_path, tmp_path / "absent" / "cache.db"))

    assert "tvcat_series_last_bar_timestamp_seconds" not in names(samples)
    assert value(samples, "tvcat_backups_total", type="full", status="committed") == 1


def test_queue_size_and_finished_tasks(client, serve, backed_up, repo_path, cache_path, tmp_path):
    server = serve(repo_path, cache_path)
    bad_exports = tmp_path / "bad exports"
    bad_exports.mkdir()
    (bad_exports / "FX_BAD, 60.csv").write_text("time,open,high,low,close\nnot-a-time,1,2,3,4\n")
    csv_source = f"csv:{bad_exports}"

    queue_task(backed_up, SyncTask(source="cache", target="backup"))
    queue_task(backed_up, SyncTask(source=csv_source, target="cache"))
    queued = scrape(client, server)
    anyio.run(run_queued, backed_up, cache_path, Config())
    finished = scrape(client, server)

    assert value(queued, "tvcat_sync_queue_size") == 2
    assert "tvcat_sync_tasks_total" not in names(queued)
    assert value(finished, "tvcat_sync_queue_size") == 0
    assert value(finished, "tvcat_sync_tasks_total", source="cache", target="backup", status="completed") == 1
    assert value(finished, "tvcat_sync_tasks_total", source=csv_source, target="cache", status="failed") == 1


def test_sync_failure_degrades_health(client, serve, backed_up, repo_path, cache_path, tmp_path):
    server = serve(repo_path, cache_path)
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "FX_BAD, 60.csv").write_text("time,open,high,low,close\nnot-a-time,1,2,3,4\n")

    queue_task(backed_up, SyncTask(source=f"csv:{tmp_path / 'exports'}", target="cache"))
    anyio.run(run_queued, backed_up, cache_path, Config())
    status, health = get_health(client, server)

    assert status == 200
    assert health["status"] == "degraded"
    assert health["checks"]["sync"]["status"] == "degraded"
    assert "1 sync task failed in the last hour" in health["reasons"]


def test_source_label_keeps_paths_redacts_urls():
    assert source_label("csv:/data/exports") == "csv:/data/exports"
    assert source_label("primary") == "primary"
    redacted = source_label("https://user:hunter2@example.invalid/feed?token=abc&symbol=X")
    assert "hunter2" not in redacted
    assert "abc" not in redacted
    assert "user:***@example.invalid" in redacted


def test_health_healthy_with_backups(client, serve, backed_up, repo_path, cache_path):
    server = serve(repo_path, cache_path, state=DaemonState())

    status, health = get_health(client, server)
    samples = scrape(client, server)

    assert status == 200
    assert health["status"] == "healthy"
    assert health["reasons"] == []
    assert health["score"] == 1.0
    assert value(samples, "tvcat_health_score") == 1.0
    assert value(samples, "tvcat_jobs_running") == 0
    assert value(samples, "tvcat_daemon_uptime_seconds") >= 0


def test_failed_backup_degrades_then_recovers(client, serve, repository, imported, repo_path, cache_path):
    server = serve(repo_path, cache_path, state=DaemonState())
    create_backup(repository, imported, BackupType.FULL)

    fail_full_backup(repository, imported)
    degraded_status, degraded = get_health(client, server)
    degraded_score = value(scrape(client, server), "tvcat_health_score")
    create_backup(repository, imported, BackupType.FULL)
    imported.close()
    recovered_status, recovered = get_health(client, server)

    assert degraded_status == 200
    assert degraded["status"] == "degraded"
    assert degraded["checks"]["backups"]["status"] == "degraded"
    [reason] = degraded["reasons"]
    assert reason.startswith("the latest full backup failed at ")
    assert "nothing to back up" in reason
    assert 0 < degraded["score"] < 1
    assert degraded_score == degraded["score"]
    assert recovered_status == 200
    assert recovered["status"] == "healthy"


def test_stalled_loop_degrades_health(client, serve, backed_up, repo_path, cache_path):
    state = DaemonState(loop_interval=1.0)
    server = serve(repo_path, cache_path, state=state)

    state.last_beat_monotonic = time.monotonic() - 60
    stalled_status, stalled = get_health(client, server)
    state.beat()
    beating_status, beating = get_health(client, server)

    assert stalled_status == 200
    assert stalled["status"] == "degraded"
    [reason] = stalled["reasons"]
    assert reason == "the scheduler loop has not run for 60 s"
    assert beating_status == 200
    assert beating["status"] == "healthy"


def test_stall_limit_follows_loop_interval(client, serve, backed_up, repo_path, cache_path):
    state = DaemonState(loop_interval=30.0)
    server = serve(repo_path, cache_path, state=state)

    state.last_beat_monotonic = time.monotonic() - 60
    status, health = get_health(client, server)

    assert status == 200
    assert health["status"] == "healthy"
    assert health["checks"]["daemon"]["stall_after_seconds"] == 150.0


def test_schedule_error_degrades_health(client, serve, backed_up, repo_path, cache_path):
    state = DaemonState(schedule_errors=["backup:nightly: invalid cron expression '0 25 * * *'"])
    server = serve(repo_path, cache_path, state=state)

    status, health = get_health(client, server)

    assert status == 200
    assert health["status"] == "degraded"
    assert health["reasons"] == ["schedule backup:nightly is invalid: invalid cron expression '0 25 * * *'"]


def test_stopping_daemon_unhealthy(client, serve, backed_up, repo_path, cache_path):
    state = DaemonState()
    server = serve(repo_path, cache_path, state=state)

    state.stopping = True
    status, health = get_health(client, server)

    assert status == 503
    assert health["status"] == "unhealthy"
    assert health["score"] == 0.0
    assert health["reasons"] == ["the daemon is stopping"]


def test_missing_catalog_unhealthy(client, serve, tmp_path, cache_path):
    missing = tmp_path / "no-repo"
    server = serve(missing, cache_path, state=DaemonState())

    status, health = get_health(client, server)
    samples = scrape(client, server)

    assert status == 503
    assert health["status"] == "unhealthy"
    assert health["reasons"] == [f"the catalog {missing / 'catalog.db'} is missing"]
    assert health["checks"]["backups"]["status"] == "skipped"
    assert value(samples, "tvcat_health_score") == 0.0
    assert "tvcat_backups_total" not in names(samples)
    assert "tvcat_events_total" not in names(samples)
    assert not missing.exists()


def test_unreadable_catalog_unhealthy(client, serve, tmp_path, cache_path):
    broken = tmp_path / "broken-repo"
    broken.mkdir()
    (broken / "catalog.db").write_bytes(b"this is not an SQLite database" * 100)
    server = serve(broken, cache_path)

    status, health = get_health(client, server)
    metrics = client.get(server.url + "/metrics")

    assert status == 503
    [reason] = health["reasons"]
    assert reason.startswith(f"the catalog {broken / 'catalog.db'} cannot be read: ")
    assert metrics.status_code == 200


def test_broken_backup_after_verify_unhealthy(client, serve, backed_up, repo_path, cache_path):
    server = serve(repo_path, cache_path)
    [full] = [row for row in backed_up.backups() if row.type == "full"]

    backed_up.store.path(full.manifest_id).unlink()
    report = verify_repository(backed_up)
    status, health = get_health(client, server)

    assert full.backup_id in report.broken_backups
    assert status == 503
    assert health["checks"]["verify"]["status"] == "unhealthy"
    assert health["checks"]["verify"]["broken_backups"] == report.broken_backups
    assert any("broken backup" in reason and full.backup_id in reason for reason in health["reasons"])


def test_sound_verify_keeps_healthy(client, serve, backed_up, repo_path, cache_path):
    server = serve(repo_path, cache_path)

    verify_repository(backed_up)
    status, health = get_health(client, server)

    assert status == 200
    assert health["status"] == "healthy"
    assert health["checks"]["verify"]["fault_count"] == 0


def test_low_free_disk_degrades_health(client, serve, backed_up, repo_path, cache_path):
    # No disk here has a million terabytes free, so the limit is always missed.
    config = Config(sync_config=SyncConfig(resource_limits=ResourceLimits(min_free_disk_gb=1e9)))
    server = serve(repo_path, cache_path, config=config)

    status, health = get_health(client, server)

    assert status == 200
    assert health["status"] == "degraded"
    assert health["checks"]["disk"]["status"] == "degraded"
    assert all(reason.startswith("free disk under ") for reason in health["reasons"])


def test_unknown_path_not_found(client, serve, backed_up, repo_path, cache_path):
    server = serve(repo_path, cache_path)

    assert client.get(server.url + "/").status_code == 404
    assert client.get(server.url + "/metrics/extra").status_code == 404
    assert client.get(server.url + "/health?verbose=1").status_code == 200


def test_port_in_use_names_config_keys(backed_up, repo_path, cache_path):
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]

        with pytest.raises(MonitoringAddressUnavailable) as raised:
            start_monitoring_server("127.0.0.1", port, repo_path, cache_path, Config(), None)

    message = str(raised.value)
    assert f"127.0.0.1 port {port}" in message
    assert "Address already in use" in message
    assert "monitoring_config.metrics_host" in message
    assert "monitoring_config.metrics_port" in message


def test_restart_gives_same_values(client, serve, backed_up, repo_path, cache_path):
    first = serve(repo_path, cache_path, state=DaemonState())
    before = scrape(client, first)
    first.stop()
    backed_up.close()

    second = serve(repo_path, cache_path, state=DaemonState())
    after = scrape(client, second)

    uptime = ("tvcat_daemon_uptime_seconds", frozenset())
    assert {key: sample for key, sample in before.items() if key != uptime} == \
        {key: sample for key, sample in after.items() if key != uptime}
    assert value(after, "tvcat_backups_total", type="full", status="committed") == 1


def test_stop_closes_port(client, serve, backed_up, repo_path, cache_path):
    server = serve(repo_path, cache_path)

    server.stop()
    server.stop()

    with pytest.raises(httpx.ConnectError):
        client.get(server.url + "/health")


def test_requests_logged_at_debug_not_stderr(client, serve, backed_up, repo_path, cache_path, caplog, capfd):
    server = serve(repo_path, cache_path)
    capfd.readouterr()

    with caplog.at_level(logging.DEBUG, logger="tvcat.engine.monitor.server"):
        client.get(server.url + "/metrics")
        client.get(server.url + "/nowhere")
    captured = capfd.readouterr()

    assert captured.err == ""
    request_lines = [record for record in caplog.records if "GET /metrics" in record.getMessage()]
    assert request_lines
    assert all(record.levelno == logging.DEBUG for record in request_lines)


def test_failed_job_degrades_health(client, serve, backed_up, repo_path, cache_path):
    repository = Repository(repo_path, create=False)
    try:
        repository.record(ev.JobFired(job="backup:nightly", scheduled_for="2026-12-05T02:00:00.000000Z"))
        repository.record(ev.JobFinished(job="backup:nightly", scheduled_for="2026-12-05T02:00:00.000000Z",
                                         ok=False, duration_seconds=0.3, error="tvcat: error: no bar cache"))
    finally:
        repository.close()
    server = serve(repo_path, cache_path, state=DaemonState())

    status, health = get_health(client, server)

    assert status == 200
    assert health["status"] == "degraded"
    assert health["checks"]["jobs"]["status"] == "degraded"
    assert "backup:nightly" in health["reasons"][0]
    assert "no bar cache" in health["reasons"][0]
