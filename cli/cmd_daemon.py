"""`tvcat daemon`: run the configured schedules until SIGTERM or SIGINT."""

import logging

import anyio
import click

from ..engine.daemon.jobs import describe, scheduled_jobs
from ..engine.daemon.service import Daemon, DaemonOptions
from ..i18n import _


@click.command("daemon", help=_(
    "Run the configured schedules until SIGTERM or SIGINT: backups by cron "
    "(schedule_config.backup_schedules), sync tiers (sync_config.priority_tiers, else every "
    "sync_config.sync_interval seconds), verify and prune (schedule_config.verify, schedule_config.prune), "
    "and the tasks that tvcat sync --queue added.\n\n"
    "With monitoring_config.enabled it serves /metrics and /health on "
    "monitoring_config.metrics_host:metrics_port, and with monitoring_config.alerts.enabled it sends alerts. "
    "Every event is also written as one line to monitoring_config.log_file.\n\n"
    "On a stop signal it starts no new work, lets running jobs finish within "
    "schedule_config.stop_grace_seconds, then interrupts them; interrupted sync tasks run again at the next "
    "start.\n\n"
    "\b\n"
    "Examples:\n"
    "  tvcat daemon\n"
    "  tvcat --config /etc/tvcat/tvcat.yaml daemon --verbose"
))
@click.option("--verbose", "verbose_here", is_flag=True, help=_("Print every event as it is recorded."))
@click.pass_obj
def daemon_command(app, verbose_here):
    config = app.config
    verbose = verbose_here or app.verbose or config.debug_config.verbose_logging
    app.reject_dry_run("tvcat daemon")
    options = DaemonOptions(config=config, config_path=app.loaded.file.resolve() if app.loaded.file else None,
                            repo=app.repo.resolve(), cache=app.cache.resolve(),
                            say=lambda line: click.echo(line, err=True), verbose=verbose)

    # A service reports its warnings, such as alerts sent to the log channel, without -v too.
    if logging.getLogger().level > logging.WARNING:
        logging.getLogger().setLevel(logging.WARNING)

    jobs, errors = scheduled_jobs(config)
    click.echo(_("tvcat daemon on {repo}, cache {cache}").format(repo=app.repo, cache=app.cache), err=True)
    for job in jobs:
        click.echo("  " + describe(job), err=True)
    for error in errors:
        click.echo(_("  invalid schedule, not run: {error}").format(error=error), err=True)

    daemon = Daemon(options)
    anyio.run(daemon.run)
    click.echo(_("tvcat daemon stopped ({reason})").format(reason=daemon.stop_reason or "-"), err=True)


COMMANDS = [daemon_command]
