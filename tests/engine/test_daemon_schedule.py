"""Schedules of the daemon: cron in a zone across DST changes, intervals, catch-up and requeue.

The DST cases use fixed dates and the installed tzdata: Europe/London
changes at 01:00 UTC on the last Sunday of March and October; America/Santiago
changes at local midnight, in April and September.
"""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tvcat.catalog import events as ev
from tvcat.engine.config import load_config_text
from tvcat.engine.daemon import planner
from tvcat.engine.daemon.jobs import Job, scheduled_jobs, tier_priority
from tvcat.engine.daemon.schedule import CronSchedule, IntervalSchedule
from tvcat.engine.sync.tasks import SyncTask, queue_task, requeue_interrupted

LONDON = ZoneInfo("Europe/London")
SANTIAGO = ZoneInfo("America/Santiago")


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def runs(expression: str, zone: ZoneInfo, start: datetime, count: int) -> list[datetime]:
    schedule = CronSchedule(expression, zone)
    found = []
    moment = start
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(moment)
    return found


def test_tzdata_dst_dates():
    assert utc(2026, 3, 29, 0, 59).astimezone(LONDON).utcoffset() == timedelta(0)
    assert utc(2026, 3, 29, 1, 0).astimezone(LONDON).utcoffset() == timedelta(hours=1)
    assert utc(2026, 10, 25, 1, 0).astimezone(LONDON).utcoffset() == timedelta(0)
    assert utc(2026, 9, 6, 4, 0).astimezone(SANTIAGO).utcoffset() == timedelta(hours=-3)
    assert utc(2026, 4, 5, 3, 0).astimezone(SANTIAGO).utcoffset() == timedelta(hours=-4)


def test_fixed_time_in_spring_gap():
    # 01:30 does not exist in London on 2026-03-29: clocks go from 01:00 GMT to 02:00 BST.
    assert runs("30 1 * * *", LONDON, utc(2026, 3, 28, 12), 3) == [
        utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30), utc(2026, 3, 31, 0, 30),
    ]


def test_fixed_time_repeated_in_autumn():
    # 01:30 happens twice in London on 2026-10-25: at 00:30 UTC (BST) and 01:30 UTC (GMT).
    assert runs("30 1 * * *", LONDON, utc(2026, 10, 24, 12), 3) == [
        utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), utc(2026, 10, 27, 1, 30),
    ]


def test_sub_hourly_job_elapsed_time():
    spring = runs("*/30 * * * *", LONDON, utc(2026, 3, 29, 0, 0), 3)
    assert [b - a for a, b in zip(spring, spring[1:])] == [timedelta(minutes=30)] * 2
    assert spring[0] == utc(2026, 3, 29, 0, 30)

    autumn = runs("*/30 * * * *", LONDON, utc(2026, 10, 24, 23, 45), 6)
    assert autumn == [utc(2026, 10, 25, 0, 0) + timedelta(minutes=30 * n) for n in range(6)]


def test_hourly_job_repeated_hour():
    assert runs("0 * * * *", LONDON, utc(2026, 10, 24, 23, 30), 3) == [
        utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 2, 0),
    ]


def test_santiago_midnight_gap():
    # On 2026-09-06 Santiago's clocks go from 00:00 -04 to 01:00 -03.
    assert runs("0 0 * * *", SANTIAGO, utc(2026, 9, 4, 12), 3) == [
        utc(2026, 9, 5, 4, 0), utc(2026, 9, 6, 4, 0), utc(2026, 9, 7, 3, 0),
    ]


def test_santiago_repeated_evening():
    # On 2026-04-05 at 00:00 -03 the clocks go back to 23:00 -04 on April 4th: 23:30 happens twice.
    assert runs("30 23 * * *", SANTIAGO, utc(2026, 4, 4, 12), 2) == [
        utc(2026, 4, 5, 2, 30), utc(2026, 4, 6, 3, 30),
    ]


def test_seconds_field_and_utc_default():
    assert runs("* * * * * */5", ZoneInfo("UTC"), utc(2026, 1, 1), 3) == [
        utc(2026, 1, 1, 0, 0, 5), utc(2026, 1, 1, 0, 0, 10), utc(2026, 1, 1, 0, 0, 15),
    ]
    assert runs("0 2 * * 0", ZoneInfo("UTC"), utc(2026, 12, 5), 1) == [utc(2026, 12, 6, 2)]


def guide_config(extra: str = ""):
    return load_config_text(
        "schedule_config:\n"
        "  timezone: Europe/London\n"
        "  catch_up: true\n"
        "  backup_schedules:\n"
        "    daily_full: {cron: '0 2 * * *', type: full}\n"
        "    incremental_backup: {cron: '*/30 * * * *'}\n"
        "  verify: {cron: '0 3 * * 0', read_data: true}\n"
        "  prune: {cron: '0 4 * * *'}\n"
        "sync_config:\n"
        "  priority_tiers:\n"
        "    high_priority: {symbols: [BINANCE:BTCUSDT], timeframes: ['1', '5'], sync_interval: 60}\n"
        "    low_priority: {symbols: ['*'], sync_interval: 1800}\n" + extra
    )


def test_jobs_from_the_guide_configuration():
    jobs, errors = scheduled_jobs(guide_config())
    by_name = {job.name: job for job in jobs}

    assert errors == []
    assert set(by_name) == {"backup:daily_full", "backup:incremental_backup", "verify", "prune",
                            "sync:high_priority", "sync:low_priority"}
    assert by_name["backup:daily_full"].arguments == ("backup", "--type", "full", "--json")
    assert by_name["verify"].arguments == ("verify", "--read-data", "--json")
    assert by_name["sync:high_priority"].tier.symbols == ["BINANCE:BTCUSDT"]
    assert by_name["sync:high_priority"].tier.priority == 1
    assert by_name["sync:low_priority"].tier.symbols is None
    assert by_name["sync:low_priority"].schedule == IntervalSchedule(1800.0)


def test_without_tiers_one_sync_job_uses_sync_interval():
    jobs, _ = scheduled_jobs(load_config_text("sync_config:\n  sync_interval: 120\n  primary: 'csv:/data'\n"))
    assert [(job.name, job.schedule) for job in jobs] == [("sync:primary", IntervalSchedule(120.0))]
    assert scheduled_jobs(load_config_text("sync_config:\n  sync_interval: 120\n")) == ([], [])
    assert tier_priority("medium") == 2
    assert tier_priority("Low_priority") == 3
    assert tier_priority("nightly") == 2


def test_disabled_schedules_give_no_jobs():
    config = load_config_text("schedule_config:\n  enabled: false\n  prune: {cron: '0 4 * * *'}\n")
    assert scheduled_jobs(config) == ([], [])


NIGHTLY = Job("backup:nightly", CronSchedule("0 2 * * *", ZoneInfo("UTC")), ("backup", "--json"))


def test_catch_up_runs_the_latest_missed_time_once():
    now = utc(2026, 12, 5, 12)
    plan = planner.first_plan(NIGHTLY, last=utc(2026, 12, 2, 2), now=now, catch_up=True)
    assert plan.catch_up and plan.next_at == utc(2026, 12, 5, 2)

    following = planner.advance(plan, plan.next_at, now)
    assert following.next_at == utc(2026, 12, 6, 2)
    assert not following.catch_up


def test_without_catch_up_missed_runs_are_dropped():
    now = utc(2026, 12, 5, 12)
    plan = planner.first_plan(NIGHTLY, last=utc(2026, 12, 2, 2), now=now, catch_up=False)
    assert not plan.catch_up
    assert plan.next_at == utc(2026, 12, 6, 2)


def test_interval_counts_from_due_time():
    tier = Job("sync:high", IntervalSchedule(60.0))
    due = utc(2026, 12, 5, 12)
    plan = planner.Plan(tier, due)
    assert planner.advance(plan, due, due + timedelta(seconds=0.3)).next_at == due + timedelta(seconds=60)
    assert planner.advance(plan, due, due + timedelta(seconds=90)).next_at == due + timedelta(seconds=150)


def test_first_start_plans():
    now = utc(2026, 12, 5, 12)
    assert planner.first_plan(NIGHTLY, None, now, catch_up=True).next_at == utc(2026, 12, 6, 2)

    tier = Job("sync:high", IntervalSchedule(60.0))
    assert planner.first_plan(tier, None, now, catch_up=False).next_at == now
    assert planner.first_plan(tier, now - timedelta(seconds=10), now, False).next_at == now + timedelta(seconds=50)
    assert planner.first_plan(tier, now - timedelta(hours=2), now, False).next_at == now


def test_last_fired_reads_the_log(repository):
    assert planner.last_fired(repository, "backup:nightly") is None
    repository.record(ev.JobFired(job="backup:nightly", scheduled_for="2026-12-04T02:00:00.000000Z"))
    repository.record(ev.JobFired(job="verify", scheduled_for="2026-12-04T03:00:00.000000Z"))
    assert planner.last_fired(repository, "backup:nightly") == utc(2026, 12, 4, 2)


def test_requeue_takes_only_tasks_the_daemon_ran(repository):
    by_daemon = queue_task(repository, SyncTask(source="sample", target="cache", symbols=None, timeframes=None))
    by_hand = queue_task(repository, SyncTask(source="sample", target="cache", symbols=None, timeframes=None))
    for task, runner in ((by_daemon, "daemon"), (by_hand, "cli")):
        repository.record(ev.SyncStarted(task_id=task.task_id, attempt=1, pid=1, runner=runner))
        repository.record(ev.SyncFailed(task_id=task.task_id, error="stopped", error_kind="Interrupted",
                                        duration_seconds=1.0, interrupted=True))

    assert requeue_interrupted(repository, "daemon restarted") == [by_daemon.task_id]

    statuses = dict(repository.connection.execute("SELECT task_id, status FROM sync_tasks"))
    assert statuses == {by_daemon.task_id: "queued", by_hand.task_id: "interrupted"}
    assert requeue_interrupted(repository, "again") == []


@pytest.mark.parametrize("cron", ["0 2 30 2 *", "61 * * * *"])
def test_invalid_schedule_is_a_config_error(cron):
    from tvcat.engine.config import InvalidConfig

    with pytest.raises(InvalidConfig, match="invalid cron expression"):
        load_config_text(f"schedule_config:\n  verify: {{cron: '{cron}'}}\n")


def test_cancelled_interrupted_task_is_not_requeued(repository):
    from tvcat.engine.sync.tasks import cancel_tasks

    task = queue_task(repository, SyncTask(source="sample", target="cache", symbols=None, timeframes=None))
    repository.record(ev.SyncStarted(task_id=task.task_id, attempt=1, pid=1, runner="daemon"))
    repository.record(ev.SyncFailed(task_id=task.task_id, error="stopped", error_kind="Interrupted",
                                    duration_seconds=1.0, interrupted=True))

    assert cancel_tasks(repository, None, "not needed") == [task.task_id]
    assert requeue_interrupted(repository, "daemon restarted") == []
