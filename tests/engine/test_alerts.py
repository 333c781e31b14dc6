"""Alert rules on a real repository: metrics, firing, suppression, reminders, recovery and restarts.

The webhook and the mail go to real servers on 127.0.0.1 (see
test_alert_channels.py). Events get the current time when they are
recorded, so the tests pass `now` relative to the times the log holds.
"""

import logging
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from tvcat.catalog import events as ev
from tvcat.catalog.bars import BarColumns
from tvcat.catalog.repository import Repository
from tvcat.catalog.series import Series
from tvcat.engine.alerts import MEASURES, UnknownMetric, evaluate_alerts, measure, read_rule_state
from tvcat.engine.alerts.measure import is_new_evidence
from tvcat.engine.backup import BackupType, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.config import Config, InvalidConfig, load_config_text
from tvcat.engine.config.checks import ALERT_METRICS
from tvcat.engine.config.schema import AlertCondition, AlertRule, AlertsConfig

from .test_alert_channels import (  # noqa: F401 (fixtures)
    PASSWORD,
    SECRET_PATH,
    TOKEN,
    mail_server_with_login,
    webhook_receiver,
)

SUPPRESS_SECONDS = 60
WINDOW_SECONDS = 600


def alert_config(webhook_url: str, smtp_port: int, rules: str, enabled: str = "true",
                 suppress_seconds: float = SUPPRESS_SECONDS) -> Config:
    """Load a configuration with every channel on and the given YAML rules, as a user would write it."""
    return load_config_text(f"""
monitoring_config:
  alerts:
    enabled: {enabled}
    suppress_seconds: {suppress_seconds}
    channels:
      webhook:
        enabled: true
        url: "{webhook_url}"
        token: "{TOKEN}"
        timeout_seconds: 2
        retries: 0
      email:
        enabled: true
        smtp_server: "127.0.0.1"
        smtp_port: {smtp_port}
        use_starttls: false
        smtp_username: "alerts"
        smtp_password: "{PASSWORD}"
        sender: "tvcat@example.org"
        recipients: ["ops@example.org"]
      log:
        enabled: true
        level: "WARNING"
    rules:
{rules}
""")


BACKUP_FAILURE_RULE = f"""\
      backup_failure:
        condition: "backup_failure_count > 0"
        severity: "error"
        message: "backup failed"
        window_seconds: {WINDOW_SECONDS}
"""


@pytest.fixture
def config(webhook_receiver, mail_server_with_login) -> Config:  # noqa: F811
    return alert_config(webhook_receiver.url(), mail_server_with_login.port, BACKUP_FAILURE_RULE)


def fail_backup(repository: Repository, backup_id: str = "b1") -> ev.EventRecord:
    return repository.record(ev.BackupFailed(backup_id=backup_id, type="full", error="disk full"))


def kinds(records: list[ev.EventRecord]) -> list[str]:
    return [record.kind for record in records]


def record_time(record: ev.EventRecord) -> datetime:
    return ev.parse_time(record.time)


def rule(condition: str, **settings) -> AlertRule:
    metric, comparison, threshold = condition.split()
    return AlertRule(condition=AlertCondition(metric, comparison, float(threshold)), **settings)


def value_of(repository: Repository, condition: str, now: datetime, cache_path: Path | None = None, **settings):
    return measure(repository, cache_path, "test", rule(condition, **settings), now)


# --- firing, suppression, reminders and recovery


def test_first_failure_sends_alert(repository, config, webhook_receiver, mail_server_with_login):
    failure = fail_backup(repository)
    [record] = evaluate_alerts(repository, None, config, now=record_time(failure))

    assert record.kind == "alert.sent"
    sent = record.decode()
    assert sent.rule == "backup_failure"
    assert sent.value == 1.0
    assert sent.message == "backup failed"
    assert [(result.channel, result.ok) for result in sent.channels] == [
        ("webhook", True), ("email", True), ("log", True)]

    [request] = webhook_receiver.requests
    assert b'"status":"firing"' in request.body
    [mail] = mail_server_with_login.mails
    assert mail.message["Subject"] == "[tvcat] error: backup_failure"
    assert mail.login == b"alerts"


def test_second_failure_suppressed(repository, config, webhook_receiver, mail_server_with_login):
    failure = fail_backup(repository)
    [sent] = evaluate_alerts(repository, None, config, now=record_time(failure))
    fail_backup(repository, "b2")

    [record] = evaluate_alerts(repository, None, config, now=record_time(sent) + timedelta(seconds=10))

    assert record.kind == "alert.suppressed"
    suppressed = record.decode()
    assert suppressed.value == 2.0
    assert suppressed.until == ev.format_time(record_time(sent) + timedelta(seconds=SUPPRESS_SECONDS))
    assert len(webhook_receiver.requests) == 1
    assert len(mail_server_with_login.mails) == 1


def test_unchanged_value_records_nothing(repository, config, webhook_receiver):
    failure = fail_backup(repository)
    [sent] = evaluate_alerts(repository, None, config, now=record_time(failure))
    (events_before,) = repository.connection.execute("SELECT count(*) FROM events").fetchone()

    records = evaluate_alerts(repository, None, config, now=record_time(sent) + timedelta(seconds=10))

    assert records == []
    assert repository.connection.execute("SELECT count(*) FROM events").fetchone() == (events_before,)
    assert len(webhook_receiver.requests) == 1


def test_reminder_after_suppression(repository, config, webhook_receiver, mail_server_with_login):
    failure = fail_backup(repository)
    [sent] = evaluate_alerts(repository, None, config, now=record_time(failure))
    fail_backup(repository, "b2")
    evaluate_alerts(repository, None, config, now=record_time(sent) + timedelta(seconds=10))

    later = record_time(sent) + timedelta(seconds=SUPPRESS_SECONDS + 1)
    [reminder] = evaluate_alerts(repository, None, config, now=later)

    assert reminder.kind == "alert.sent"
    assert reminder.decode().value == 2.0
    assert len(webhook_receiver.requests) == 2
    assert len(mail_server_with_login.mails) == 2


def test_recovery_announced_once(repository, config, webhook_receiver, mail_server_with_login):
    failure = fail_backup(repository)
    evaluate_alerts(repository, None, config, now=record_time(failure))

    after_window = record_time(failure) + timedelta(seconds=WINDOW_SECONDS + 1)
    [record] = evaluate_alerts(repository, None, config, now=after_window)
    again = evaluate_alerts(repository, None, config, now=after_window + timedelta(seconds=SUPPRESS_SECONDS + 1))

    assert record.kind == "alert.resolved"
    assert record.decode().value == 0.0
    assert again == []
    assert len(webhook_receiver.requests) == 2
    assert b'"status":"resolved"' in webhook_receiver.requests[1].body
    assert mail_server_with_login.mails[1].message["Subject"] == "[tvcat] resolved: backup_failure"


def test_fires_again_after_recovery(repository, config, webhook_receiver):
    failure = fail_backup(repository)
    evaluate_alerts(repository, None, config, now=record_time(failure))
    evaluate_alerts(repository, None, config, now=record_time(failure) + timedelta(seconds=WINDOW_SECONDS + 1))

    second = fail_backup(repository, "b2")
    [record] = evaluate_alerts(repository, None, config, now=record_time(second))

    assert record.kind == "alert.sent"
    assert len(webhook_receiver.requests) == 3


def test_state_survives_reopen(repo_path, config, webhook_receiver):
    repository = Repository(repo_path)
    failure = fail_backup(repository)
    [sent] = evaluate_alerts(repository, None, config, now=record_time(failure))
    repository.close()

    reopened = Repository(repo_path)
    try:
        state = read_rule_state(reopened, "backup_failure")
        unchanged = evaluate_alerts(reopened, None, config, now=record_time(sent) + timedelta(seconds=5))
        fail_backup(reopened, "b2")
        changed = evaluate_alerts(reopened, None, config, now=record_time(sent) + timedelta(seconds=10))
    finally:
        reopened.close()

    assert state.firing
    assert state.last_sent == record_time(sent)
    assert state.last_value == 1.0
    assert unchanged == []
    assert kinds(changed) == ["alert.suppressed"]
    assert len(webhook_receiver.requests) == 1


def test_alerts_disabled_do_nothing(repository, webhook_receiver, mail_server_with_login):
    config = alert_config(webhook_receiver.url(), mail_server_with_login.port, BACKUP_FAILURE_RULE, enabled="false")
    failure = fail_backup(repository)

    assert evaluate_alerts(repository, None, config, now=record_time(failure)) == []
    assert webhook_receiver.requests == []


def test_metric_without_value_skips_rule(repository, webhook_receiver, mail_server_with_login, tmp_path):
    rules = '      stale:\n        condition: "data_age_hours > 1"\n'
    config = alert_config(webhook_receiver.url(), mail_server_with_login.port, rules)

    records = evaluate_alerts(repository, tmp_path / "missing-cache.db", config)

    assert records == []
    assert webhook_receiver.requests == []


def test_unknown_metric_rule_raises(repository):
    alerts = AlertsConfig(enabled=True, rules={"cpu": rule("cpu_percent > 90")})
    with pytest.raises(UnknownMetric, match="cpu_percent"):
        evaluate_alerts(repository, None, alerts)


def test_channel_failure_recorded_without_secrets(repository, webhook_receiver, mail_server_with_login, caplog):
    caplog.set_level(logging.DEBUG)
    webhook_receiver.statuses = [500, 500]
    url = webhook_receiver.url(SECRET_PATH + "?key=query-secret-31")
    config = alert_config(url, mail_server_with_login.port, BACKUP_FAILURE_RULE)

    failure = fail_backup(repository)
    [sent] = evaluate_alerts(repository, None, config, now=record_time(failure))
    fail_backup(repository, "b2")
    evaluate_alerts(repository, None, config, now=record_time(sent) + timedelta(seconds=5))
    evaluate_alerts(repository, None, config, now=record_time(sent) + timedelta(seconds=SUPPRESS_SECONDS + 1))
    evaluate_alerts(repository, None, config, now=record_time(failure) + timedelta(seconds=WINDOW_SECONDS + 1))

    webhook_result = sent.decode().channels[0]
    assert not webhook_result.ok
    assert "HTTP 500" in webhook_result.error
    payloads = [payload for (payload,) in repository.connection.execute("SELECT payload FROM events")]
    assert [kind for (kind,) in repository.connection.execute("SELECT kind FROM events WHERE kind LIKE 'alert.%' ORDER BY seq")] \
        == ["alert.sent", "alert.suppressed", "alert.sent", "alert.resolved"]
    for secret in (TOKEN, PASSWORD, "path-secret-77", "query-secret-31"):
        assert not [payload for payload in payloads if secret in payload], secret
        assert secret not in caplog.text, secret
    assert "alert channel failed rule=backup_failure channel=webhook" in caplog.text


# --- configuration


def test_unknown_metric_rejected_by_config():
    with pytest.raises(InvalidConfig) as caught:
        load_config_text('monitoring_config:\n  alerts:\n    rules:\n      x: {condition: "cpu_percent > 90"}\n')
    [message] = [str(problem) for problem in caught.value.problems]
    assert "monitoring_config.alerts.rules.x.condition" in message
    assert "unknown metric 'cpu_percent'" in message
    for metric in ALERT_METRICS:
        assert metric in message


def test_measures_cover_config_metrics():
    assert set(MEASURES) == set(ALERT_METRICS)


# --- metrics


def record_sync(repository: Repository, task_id: str, outcome: str) -> ev.EventRecord:
    repository.record(ev.SyncQueued(task_id=task_id, source="primary", target="cache", symbols=None, timeframes=None))
    repository.record(ev.SyncStarted(task_id=task_id, attempt=1, pid=os.getpid()))
    if outcome == "completed":
        return repository.record(ev.SyncCompleted(task_id=task_id, series=[], duration_seconds=1.0))
    return repository.record(ev.SyncFailed(task_id=task_id, error="source down", error_kind="SourceUnavailable",
                                           duration_seconds=1.0, interrupted=outcome == "interrupted"))


def test_sync_failure_rate_and_count(repository):
    for number, outcome in enumerate(["completed", "completed", "failed", "interrupted"]):
        last = record_sync(repository, f"t{number}", outcome)
    now = record_time(last)

    assert value_of(repository, "sync_failure_rate > 0.1", now) == pytest.approx(1 / 3)
    assert value_of(repository, "sync_failure_count > 0", now) == 1.0


def test_sync_failure_rate_without_tasks(repository):
    assert value_of(repository, "sync_failure_rate > 0.1", datetime.now(timezone.utc)) == 0.0


def test_sync_failures_leave_window(repository):
    last = record_sync(repository, "t1", "failed")
    later = record_time(last) + timedelta(seconds=3601)

    assert value_of(repository, "sync_failure_count > 0", later, window_seconds=3600) == 0.0
    assert value_of(repository, "sync_failure_count > 0", later, window_seconds=7200) == 1.0


def test_verify_failure_count(repository):
    fault = ev.VerifyFault(problem="missing", object_id="ab" * 32, detail="not found", backups=["b1"], series=[])
    for faults in ([], [fault], []):
        last = repository.record(ev.VerifyCompleted(read_data=False, backups_checked=1, objects_checked=3,
                                                    faults=faults, broken_backups=[], newest_sound_backup=None))
    assert value_of(repository, "verify_failure_count > 0", record_time(last)) == 1.0


def test_disk_usage_matches_statvfs(repository):
    stats = os.statvfs(repository.path)
    used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
    expected = used / (used + stats.f_bavail * stats.f_frsize)

    value = value_of(repository, "disk_usage > 0.85", datetime.now(timezone.utc))

    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(expected, abs=0.01)


def write_bars(cache_path: Path, series: Series, times: list[int]) -> None:
    cache = BarCache(cache_path)
    try:
        prices = np.full(len(times), 100.0)
        cache.upsert(series, BarColumns.from_arrays(times, prices, prices + 1, prices - 1, prices, prices))
    finally:
        cache.close()


def test_data_age_hours_stalest_series(repository, cache_path):
    now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    recent = int(now.timestamp()) - 3600
    stale = int(now.timestamp()) - 10 * 3600
    write_bars(cache_path, Series("BINANCE:BTCUSDT", "60"), [recent - 7200, recent - 3600, recent])
    write_bars(cache_path, Series("FX:EURUSD", "60"), [stale - 3600, stale])
    write_bars(cache_path, Series("FX:EURUSD", "1D"), [recent - 86400])
    write_bars(cache_path, Series("FX:EURUSD", "1D"), [int(now.timestamp()) - 2 * 3600])

    assert value_of(repository, "data_age_hours > 6", now, cache_path) == 10.0


def test_data_age_hours_without_bars(repository, cache_path, tmp_path):
    BarCache(cache_path).close()
    now = datetime.now(timezone.utc)

    assert value_of(repository, "data_age_hours > 6", now, cache_path) is None
    assert value_of(repository, "data_age_hours > 6", now, tmp_path / "missing.db") is None
    assert value_of(repository, "data_age_hours > 6", now, None) is None


def test_backup_age_hours_newest_of_type(repository, cache_path):
    write_bars(cache_path, Series("FX:EURUSD", "60"), [1_700_000_000, 1_700_003_600])
    cache = BarCache(cache_path)
    try:
        create_backup(repository, cache, BackupType.FULL)
    finally:
        cache.close()
    committed = ev.parse_time(repository.backups()[0].committed_at)
    (first_event,) = repository.connection.execute("SELECT min(time) FROM events").fetchone()
    now = committed + timedelta(hours=3)

    assert value_of(repository, "backup_age_hours > 24", now) == pytest.approx(3.0)
    assert value_of(repository, "backup_age_hours > 24", now, backup_type="full") == pytest.approx(3.0)
    snapshot_age = value_of(repository, "backup_age_hours > 24", now, backup_type="snapshot")
    assert snapshot_age == pytest.approx((now - ev.parse_time(first_event)).total_seconds() / 3600)


def test_backup_age_hours_without_backups(repository):
    assert value_of(repository, "backup_age_hours > 24", datetime.now(timezone.utc)) is None

    failure = fail_backup(repository)
    now = record_time(failure) + timedelta(hours=30)
    assert value_of(repository, "backup_age_hours > 24", now) == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("metric", "previous", "current", "expected"),
    [
        ("backup_failure_count", 1.0, 2.0, True),
        ("backup_failure_count", 2.0, 2.0, False),
        ("sync_failure_rate", 0.25, 0.5, True),
        ("backup_age_hours", 25.1, 25.9, False),
        ("backup_age_hours", 25.9, 26.1, True),
        ("disk_usage", 0.901, 0.905, False),
        ("disk_usage", 0.905, 0.912, True),
    ],
)
def test_new_evidence(metric, previous, current, expected):
    assert is_new_evidence(metric, previous, current) is expected


def test_growing_age_does_not_grow_log(repository, webhook_receiver, mail_server_with_login):
    # The alert.sent event gets the real time, so `now` stays within minutes of
    # it: the age crosses no whole hour before the suppression time ends.
    rules = '      no_backup:\n        condition: "backup_age_hours > 0"\n'
    config = alert_config(webhook_receiver.url(), mail_server_with_login.port, rules, suppress_seconds=3600)
    failure = fail_backup(repository)
    start = record_time(failure) + timedelta(seconds=1)

    first = evaluate_alerts(repository, None, config, now=start)
    minutes_later = [evaluate_alerts(repository, None, config, now=start + timedelta(minutes=minutes))
                     for minutes in (1, 10, 50)]
    hour_later = evaluate_alerts(repository, None, config, now=start + timedelta(minutes=61))

    assert kinds(first) == ["alert.sent"]
    assert minutes_later == [[], [], []]
    assert kinds(hour_later) == ["alert.sent"]
    assert len(webhook_receiver.requests) == 2


def test_backup_job_failing_before_start_counts(repository):
    scheduled = "2026-12-05T02:00:00.000000Z"
    repository.record(ev.JobFired(job="backup:nightly", scheduled_for=scheduled))
    repository.record(ev.JobFinished(job="backup:nightly", scheduled_for=scheduled, ok=False, duration_seconds=0.4,
                                     error="tvcat: error: no bar cache at /data/cache.db"))
    repository.record(ev.JobFired(job="backup:nightly", scheduled_for=scheduled))
    repository.record(ev.BackupFailed(backup_id="20261205T020000.000000Z-full-0001", type="full", error="disk full"))
    repository.record(ev.JobFinished(job="backup:nightly", scheduled_for=scheduled, ok=False, duration_seconds=0.4,
                                     error="tvcat: error: disk full"))
    now = datetime.now(timezone.utc)

    assert value_of(repository, "backup_failure_count > 0", now) == 2
    assert value_of(repository, "verify_failure_count > 0", now) == 0
