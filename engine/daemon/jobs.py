"""The jobs a configuration schedules: backups, sync tiers, verify and prune.

Backups, verify and prune run as `tvcat` child processes, so the daemon can
stop them with a signal and a crash in one job never takes the daemon down.
A sync tier only queues a task; the queue job runs queued tasks in a child.
"""

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ...i18n import _
from ..config.checks import CheckFailed, check_cron
from ..config.schema import Config
from ..sync.tasks import PRIORITIES
from .schedule import CronSchedule, IntervalSchedule

QUEUE_JOB = "sync:queue"


@dataclass(frozen=True)
class Job:
    """One scheduled job: its name, when it runs, and what it runs."""

    name: str
    schedule: CronSchedule | IntervalSchedule
    # The tvcat arguments of the child process, after the global options; None for a sync tier.
    arguments: tuple[str, ...] | None = None
    # For a sync tier: the task it queues.
    tier: "SyncTier | None" = None


@dataclass(frozen=True)
class SyncTier:
    """The series of one priority tier and the queue priority of their tasks."""

    symbols: list[str] | None
    timeframes: list[str] | None
    priority: int


def scheduled_jobs(config: Config) -> tuple[list[Job], list[str]]:
    """Return the jobs of `config` and the schedules that could not be read, each with its reason.

    A schedule the loader accepted can still fail here only when the zone
    data changed since. A bad one is left out and reported, and the others run.
    """
    settings = config.schedule_config
    if not settings.enabled:
        return [], []
    zone = ZoneInfo(settings.timezone)
    jobs: list[Job] = []
    errors: list[str] = []

    def add_cron(name: str, expression: str, arguments: tuple[str, ...]) -> None:
        try:
            jobs.append(Job(name, CronSchedule(check_cron(expression), zone), arguments))
        except CheckFailed as error:
            errors.append(f"{name}: {error}")

    for name, entry in settings.backup_schedules.items():
        add_cron(f"backup:{name}", entry.cron, ("backup", "--type", entry.type or "incremental", "--json"))
    if settings.verify is not None:
        read_data = ("--read-data",) if settings.verify.read_data else ()
        add_cron("verify", settings.verify.cron, ("verify", *read_data, "--json"))
    if settings.prune is not None:
        add_cron("prune", settings.prune.cron, ("prune", "--json"))
    jobs.extend(_sync_jobs(config))
    return jobs, errors


def _sync_jobs(config: Config) -> list[Job]:
    """Build one job per priority tier, or one for every series at sync_config.sync_interval without tiers.

    Without tiers and with the default primary, the bundled sample, no sync
    is scheduled, because a daemon must not fill a user's cache with demo bars.
    """
    sync = config.sync_config
    if not sync.priority_tiers:
        if sync.primary == "sample":
            return []
        tier = SyncTier(symbols=None, timeframes=None, priority=PRIORITIES["medium"])
        return [Job("sync:primary", IntervalSchedule(float(sync.sync_interval)), tier=tier)]
    jobs = []
    for name, settings in sync.priority_tiers.items():
        symbols = None if not settings.symbols or "*" in settings.symbols else list(settings.symbols)
        tier = SyncTier(symbols=symbols, timeframes=list(settings.timeframes) or None,
                        priority=tier_priority(name))
        jobs.append(Job(f"sync:{name}", IntervalSchedule(float(settings.sync_interval)), tier=tier))
    return jobs


def tier_priority(name: str) -> int:
    """Return the queue priority a tier's name implies: high_priority is 1, low is 3, anything else 2."""
    for word, priority in PRIORITIES.items():
        if name.lower().startswith(word):
            return priority
    return PRIORITIES["medium"]


def describe(job: Job) -> str:
    """Describe a job in one line for the start-up listing: its name and when it runs."""
    if isinstance(job.schedule, CronSchedule):
        return _("{name}: cron {expression} ({zone})").format(
            name=job.name, expression=job.schedule.expression, zone=job.schedule.zone.key)
    return _("{name}: every {seconds:g} s").format(name=job.name, seconds=job.schedule.seconds)
