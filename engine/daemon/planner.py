"""The next run of each job, from its schedule and the job.fired events of earlier daemons."""

from dataclasses import dataclass
from datetime import datetime

from ...catalog import events as ev
from ...catalog.repository import Repository
from .jobs import Job
from .schedule import IntervalSchedule

# A catch-up after a long stop looks for the latest missed time. This caps
# its steps, since a job that fires every second takes 86,400 per day of downtime.
_MAX_CATCH_UP_STEPS = 100_000


@dataclass
class Plan:
    """When a job runs next, and whether that run makes up for one missed while the daemon was down."""

    job: Job
    next_at: datetime
    catch_up: bool = False


def last_fired(repository: Repository, job_name: str) -> datetime | None:
    """Return the scheduled time of the job's latest run by any daemon on this repository."""
    row = repository.connection.execute(
        "SELECT json_extract(payload, '$.scheduled_for') FROM events "
        "WHERE kind = 'job.fired' AND subject = ? ORDER BY seq DESC LIMIT 1",
        (job_name,),
    ).fetchone()
    return None if row is None else ev.parse_time(row[0])


def first_plan(job: Job, last: datetime | None, now: datetime, catch_up: bool) -> Plan:
    """Plan a job's first run after the daemon starts at `now`.

    A cron job that missed runs while the daemon was down runs once at once,
    for the latest missed time, when `catch_up` is set. An interval job (a
    sync tier) runs at once whenever its interval has passed since its last
    run, since a sync is due rather than scheduled for a particular time.
    """
    if isinstance(job.schedule, IntervalSchedule):
        if last is None:
            return Plan(job, now)
        due = job.schedule.next_after(last)
        return Plan(job, now if due <= now else due)

    if last is None or not catch_up:
        return Plan(job, job.schedule.next_after(now))
    missed = job.schedule.next_after(last)
    if missed > now:
        return Plan(job, missed)
    return Plan(job, _latest_not_after(job, missed, now), catch_up=True)


def _latest_not_after(job: Job, first_missed: datetime, now: datetime) -> datetime:
    latest = first_missed
    for _ in range(_MAX_CATCH_UP_STEPS):
        following = job.schedule.next_after(latest)
        if following > now:
            break
        latest = following
    return latest


def advance(plan: Plan, fired_for: datetime, now: datetime) -> Plan:
    """Return the plan after a run for `fired_for`: the next scheduled time after both that and now.

    Times that passed while the run was starting are skipped, not queued up.
    """
    if isinstance(plan.job.schedule, IntervalSchedule):
        # Counted from the due time, so the loop's wake-up delay does not add up period after period.
        following = plan.job.schedule.next_after(fired_for)
        return Plan(plan.job, following if following > now else plan.job.schedule.next_after(now))
    return Plan(plan.job, plan.job.schedule.next_after(max(fired_for, now)))
