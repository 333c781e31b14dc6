"""`tvcat daemon`: the loop that runs scheduled jobs and queued tasks until SIGTERM or SIGINT.

One loop in the main thread wakes every LOOP_SECONDS. It starts due jobs as
child processes, queues the tasks of sync tiers, starts a child that runs
queued tasks, evaluates alert rules in a worker thread, and appends new
events to the log file. On a stop signal it takes no new work and gives
running children the grace period, then interrupts them. Tasks they could not
finish are recorded as interrupted and queued again when the next daemon starts.
"""

import fcntl
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import anyio

from ... import __version__
from ...catalog import events as ev
from ...catalog.repository import Repository
from ...errors import TvcatError
from ...i18n import N_, _
from ..config.paths import log_file_path
from ..config.schema import Config
from ..sync.tasks import SyncTask, mark_stale_tasks, queue_task, requeue_interrupted, resolve_source
from . import children, planner
from .jobs import QUEUE_JOB, Job, scheduled_jobs
from .logfile import close_log_file, format_line, open_log_file
from .state import DaemonState

logger = logging.getLogger(__name__)

LOOP_SECONDS = 0.25
DAEMON_LOCK_FILE = "daemon.lock"


class DaemonAlreadyRunning(TvcatError):
    template = N_(
        "another tvcat daemon runs on the repository {repo} ({holder}); stop it first, or give this one "
        "another repository with --repo"
    )


@dataclass
class DaemonOptions:
    config: Config
    config_path: Path | None
    repo: Path
    cache: Path
    # Prints one line for the operator, such as where the metrics are served.
    say: Callable[[str], None] = print
    # With verbose, `say` also gets the log line of every new event.
    verbose: bool = False


@dataclass
class _Running:
    """The runs in progress, by job name."""

    processes: dict[str, children.Child] = field(default_factory=dict)
    tier_tasks: dict[str, str] = field(default_factory=dict)


class Daemon:
    """One daemon process on one repository."""

    def __init__(self, options: DaemonOptions) -> None:
        self.options = options
        self.state = DaemonState(loop_interval=LOOP_SECONDS)
        self.holder = f"{os.getpid()}@{socket.gethostname()}"
        self.running = _Running()
        self.stop_reason: str | None = None
        self._lock_descriptor: int | None = None
        self._repository: Repository | None = None
        self._log_seq = 0
        self._log = None
        self._alerts_running = False

    async def run(self) -> None:
        """Run until a stop signal; raise DaemonAlreadyRunning when another daemon has the repository locked."""
        self._take_daemon_lock()
        try:
            await self._run_locked()
        finally:
            os.close(self._lock_descriptor)

    async def _run_locked(self) -> None:
        options = self.options
        self._repository = Repository(options.repo)
        started = time.monotonic()
        server = None
        try:
            # The server starts first, so a port in use stops the daemon before it records a start.
            server = self._start_monitoring()
            plans = self._start()
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch_signals, group.cancel_scope)
                await self._loop(group, plans)
                await self._finish_running(group)
                group.cancel_scope.cancel()
            self._stop(time.monotonic() - started)
        finally:
            if server is not None:
                server.stop()
            self._follow_log()
            if self._log is not None:
                close_log_file(self._log)
            self._repository.close()

    def _take_daemon_lock(self) -> None:
        directory = self.options.repo / "locks"
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_descriptor = os.open(directory / DAEMON_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._lock_descriptor, 200, 0).decode("utf-8", "replace").strip() or "?"
            os.close(self._lock_descriptor)
            raise DaemonAlreadyRunning(repo=str(self.options.repo), holder=holder) from None
        os.ftruncate(self._lock_descriptor, 0)
        os.pwrite(self._lock_descriptor, self.holder.encode(), 0)

    def _start(self) -> list[planner.Plan]:
        """Record the start, queue again the tasks an earlier daemon left, and plan each job's first run."""
        repository = self._repository
        config = self.options.config
        self._open_log_file()
        self._log_seq = repository.connection.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        mark_stale_tasks(repository)
        requeued = requeue_interrupted(repository, _("interrupted when an earlier daemon stopped; queued again at this start"))
        jobs, errors = scheduled_jobs(config)
        self.state.schedule_errors = errors
        repository.record(ev.DaemonStarted(
            holder=self.holder, version=__version__, jobs=[job.name for job in jobs], schedule_errors=errors,
            requeued_tasks=requeued,
        ))
        self._follow_log()

        now = datetime.now(timezone.utc)
        catch_up = config.schedule_config.catch_up
        return [planner.first_plan(job, planner.last_fired(repository, job.name), now, catch_up) for job in jobs]

    def _open_log_file(self) -> None:
        monitoring = self.options.config.monitoring_config
        path = log_file_path(self.options.config)
        try:
            self._log = open_log_file(path, monitoring.log_max_bytes, monitoring.log_backup_count)
        except OSError as error:
            # The log file is a convenience, because the event log contains every line it would.
            logger.warning("cannot open the log file %s: %s", path, error.strerror)

    def _start_monitoring(self):
        monitoring = self.options.config.monitoring_config
        if not monitoring.enabled:
            return None
        from ..monitor.server import start_monitoring_server

        server = start_monitoring_server(monitoring.metrics_host, monitoring.metrics_port, self.options.repo,
                                         self.options.cache, self.options.config, self.state)
        self.options.say(_("metrics and health at {url}").format(url=server.url))
        return server

    async def _watch_signals(self, scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for number in signals:
                if self.stop_reason is None:
                    self.stop_reason = signal.Signals(number).name
                    self.state.stopping = True
                    logger.info("stop requested by %s", self.stop_reason)
                else:
                    # A second signal ends the grace period at once.
                    for child in self.running.processes.values():
                        child.interrupt()

    async def _loop(self, group, plans: list[planner.Plan]) -> None:
        config = self.options.config
        next_queue_check = 0.0
        next_alert_check = time.monotonic()
        while self.stop_reason is None:
            self.state.beat()
            now = datetime.now(timezone.utc)
            for index, plan in enumerate(plans):
                if plan.next_at <= now:
                    plans[index] = self._fire(group, plan, now)
            if time.monotonic() >= next_queue_check:
                next_queue_check = time.monotonic() + config.schedule_config.queue_poll_seconds
                self._run_queue(group)
            if time.monotonic() >= next_alert_check:
                next_alert_check = time.monotonic() + config.monitoring_config.alerts.evaluation_interval_seconds
                if not self._alerts_running:
                    self._alerts_running = True
                    group.start_soon(self._evaluate_alerts)
            self._follow_log()
            await anyio.sleep(LOOP_SECONDS)

    def _fire(self, group, plan: planner.Plan, now: datetime) -> planner.Plan:
        """Start the run of a due job, or record why it was skipped; return the job's next plan."""
        job = plan.job
        scheduled_for = ev.format_time(plan.next_at)
        if self._is_running(job):
            self._repository.record(ev.JobSkipped(
                job=job.name, scheduled_for=scheduled_for,
                reason=_("the run started earlier has not finished"),
            ))
        elif job.tier is not None:
            self._repository.record(ev.JobFired(job=job.name, scheduled_for=scheduled_for, catch_up=plan.catch_up))
            self._queue_tier(job)
        else:
            self._repository.record(ev.JobFired(job=job.name, scheduled_for=scheduled_for, catch_up=plan.catch_up))
            child = children.Child(job.name)
            self.running.processes[job.name] = child
            self.state.job_started(job.name)
            group.start_soon(self._run_job, job, child, scheduled_for)
        return planner.advance(plan, plan.next_at, now)

    def _is_running(self, job: Job) -> bool:
        if job.tier is None:
            return job.name in self.running.processes
        task_id = self.running.tier_tasks.get(job.name)
        if task_id is None:
            return False
        row = self._repository.connection.execute(
            "SELECT status FROM sync_tasks WHERE task_id = ?", (task_id,)
        ).fetchone()
        return row is not None and row[0] in ("queued", "running")

    def _queue_tier(self, job: Job) -> None:
        config = self.options.config
        task = SyncTask(
            source=resolve_source("primary", config), target="cache", symbols=job.tier.symbols,
            timeframes=job.tier.timeframes, priority=job.tier.priority,
            closed_only=config.sync_config.closed_only, dry_run=config.debug_config.dry_run,
            accept_invalid_bars=config.sync_config.accept_invalid_bars,
        )
        queue_task(self._repository, task, config.backup_config.storage_backends.remote)
        self.running.tier_tasks[job.name] = task.task_id

    async def _run_job(self, job: Job, child: children.Child, scheduled_for: str) -> None:
        argv = children.child_command(self._global_options(), job.arguments)
        try:
            result = await children.run_child(child, argv)
        except OSError as error:
            result = children.ChildResult(-1, b"", str(error).encode(), 0.0)
        finally:
            self.running.processes.pop(job.name, None)
            self.state.job_finished(job.name)
        ok = result.returncode == 0
        self._repository.record(ev.JobFinished(
            job=job.name, scheduled_for=scheduled_for, ok=ok, duration_seconds=result.duration_seconds,
            error=None if ok else (result.error_line() or _("exit status {code}").format(code=result.returncode)),
            detail=_job_detail(result.json()),
        ))

    def _run_queue(self, group) -> None:
        """Start a child that runs the queued tasks, unless one runs or the queue is empty."""
        if self.stop_reason is not None or QUEUE_JOB in self.running.processes:
            return
        queued = self._repository.connection.execute(
            "SELECT count(*) FROM sync_tasks WHERE status = 'queued'"
        ).fetchone()[0]
        if not queued:
            return
        child = children.Child(QUEUE_JOB)
        self.running.processes[QUEUE_JOB] = child
        self.state.job_started(QUEUE_JOB)
        group.start_soon(self._run_queue_child, child)

    async def _run_queue_child(self, child: children.Child) -> None:
        argv = children.child_command(self._global_options(), ("tasks", "run", "--runner", "daemon", "--json"))
        try:
            result = await children.run_child(child, argv)
            if result.returncode not in (0, 1):
                logger.warning("the queue runner exited with %d: %s", result.returncode, result.error_line())
        finally:
            self.running.processes.pop(QUEUE_JOB, None)
            self.state.job_finished(QUEUE_JOB)

    async def _evaluate_alerts(self) -> None:
        """Evaluate the alert rules in a worker thread; one evaluation runs at a time.

        Sending can wait on a slow SMTP or webhook server, and an evaluation
        that started while another one waits would send the same alert again.
        A stop abandons a waiting evaluation instead of waiting for it.
        """
        try:
            if self.options.config.monitoring_config.alerts.enabled:
                await anyio.to_thread.run_sync(self._evaluate_alerts_in_thread, abandon_on_cancel=True)
        except Exception as error:
            # A broken channel or rule must not stop the daemon, and the next round tries again.
            logger.warning("alert evaluation failed: %s", error)
        finally:
            self._alerts_running = False

    def _evaluate_alerts_in_thread(self) -> None:
        from ..alerts.rules import evaluate_alerts

        repository = Repository(self.options.repo, create=False)
        try:
            evaluate_alerts(repository, self.options.cache, self.options.config)
        finally:
            repository.close()

    async def _finish_running(self, group) -> None:
        """Give running children the grace period, then interrupt them, then kill what remains."""
        grace = self.options.config.schedule_config.stop_grace_seconds
        with anyio.move_on_after(grace):
            while self.running.processes:
                await anyio.sleep(LOOP_SECONDS)
        for child in list(self.running.processes.values()):
            child.interrupt()
        with anyio.move_on_after(children.KILL_AFTER_SECONDS):
            while self.running.processes:
                await anyio.sleep(LOOP_SECONDS)
        for child in list(self.running.processes.values()):
            child.kill()
        with anyio.move_on_after(children.KILL_AFTER_SECONDS):
            while self.running.processes:
                await anyio.sleep(LOOP_SECONDS)

    def _stop(self, uptime: float) -> None:
        """Record tasks left unfinished as interrupted, and the stop itself."""
        repository = self._repository
        mark_stale_tasks(repository)
        interrupted = [row[0] for row in repository.connection.execute(
            "SELECT task_id FROM sync_tasks WHERE status = 'interrupted' AND finished_at >= ("
            "  SELECT time FROM events WHERE kind = 'daemon.started' AND subject = ? ORDER BY seq DESC LIMIT 1"
            ") ORDER BY task_id",
            (self.holder,),
        )]
        repository.record(ev.DaemonStopped(
            holder=self.holder, reason=self.stop_reason or "stopped", uptime_seconds=uptime,
            interrupted_tasks=interrupted,
        ))

    def _global_options(self) -> list[str]:
        options = self.options
        return children.global_options(options.config_path, options.repo, options.cache)

    def _follow_log(self) -> None:
        """Write the events appended since the last call to the log file and, with --verbose, to stderr."""
        for record in ev.iter_events(self._repository.connection, self._log_seq):
            line = format_line(record)
            if self._log is not None:
                self._log.info(line)
            if self.options.verbose:
                self.options.say(line)
            self._log_seq = record.seq


def _job_detail(output) -> str | None:
    """Summarize a child's JSON output: the backup id, or the verify and prune figures."""
    if not isinstance(output, dict):
        return None
    if "backup_id" in output:
        return str(output["backup_id"])
    if "ok" in output:
        return f"ok={output['ok']}"
    if "forgotten" in output:
        return f"forgotten={len(output['forgotten'])}"
    return None
