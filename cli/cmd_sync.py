"""`tvcat sync`, `tvcat list tasks` and `tvcat tasks cancel`: move bars and manage the task queue."""

import anyio
import click
import msgspec
from rich.progress import Progress, TextColumn

from ..catalog.series import normalize_timeframe, validate_symbol
from ..engine.backup import BackupType
from ..engine.importers.timeparse import format_utc
from ..engine.restore import parse_point_in_time
from ..engine.sync.runner import run_queued
from ..engine.sync.tasks import (
    LOCATIONS, PRIORITIES, SyncTask, cancel_tasks, check_direction, queue_task, resolve_source, task_rows,
)
from ..errors import InvalidOption, TvcatError
from ..i18n import N_, _
from .cmd_list import list_group
from .output import print_json, print_table, split_list, stdout_is_terminal


class TasksFailed(TvcatError):
    template = N_("{count} task(s) failed; tvcat list tasks --verbose shows why")


# Task states as stored in sync_tasks.status, marked for translation in the table.
TASK_STATUSES = {
    "queued": N_("queued"), "running": N_("running"), "completed": N_("completed"), "failed": N_("failed"),
    "interrupted": N_("interrupted"), "cancelled": N_("cancelled"),
}


@click.command("sync", help=_(
    "Move bars between the source, the cache, the backups and the remote.\n\n"
    "primary → cache fetches from the configured source (sync_config.primary) or from a "
    "source spec: sample, tradingview, csv:DIR, binance:DIR or freqtrade:DIR. It fetches "
    "from the newest stored bar minus sync_config.overlap_bars, or from --since, and writes "
    "only new and changed bars. cache → backup takes a backup of the task's series; "
    "backup → cache restores the latest backup of those series into the cache.\n\n"
    "The task is queued in the event log and run now; a run that stops half-way can "
    "be repeated, because bars are upserted.\n\n"
    "\b\n"
    "Examples:\n"
    "  tvcat sync --source primary --target cache --symbols BINANCE:BTCUSDT,BINANCE:ETHUSDT --timeframes 15,60\n"
    "  tvcat sync --source csv:./exports --target cache\n"
    "  tvcat sync --source cache --target backup --symbols BINANCE:BTCUSDT --wait"
))
@click.option("--source", required=True, metavar="SOURCE",
              help=_("primary, cache, backup, or a source spec such as csv:DIR."))
@click.option("--target", required=True, type=click.Choice(["cache", "backup", "remote"]), help=_("Where bars go."))
@click.option("--symbols", multiple=True, metavar="LIST",
              help=_("Symbols, comma-separated. Default: every series the source lists."))
@click.option("--timeframes", multiple=True, metavar="LIST", help=_("Timeframes, comma-separated. Default: all."))
@click.option("--since", metavar="TIME",
              help=_("Fetch bars from this time on (ISO 8601 or Unix seconds), including times before the oldest stored bar."))
@click.option("--type", "backup_type", type=click.Choice([t.value for t in BackupType]), default="incremental",
              show_default=True, help=_("Backup type, for --target backup."))
@click.option("--priority", type=click.Choice(list(PRIORITIES)), default="medium", show_default=True,
              help=_("Queue priority."))
@click.option("--closed-only", is_flag=True, help=_("Skip the still-forming newest bar."))
@click.option("--accept-invalid-bars", is_flag=True,
              help=_("Store bars that fail the OHLC checks, such as high below low, and record a warning."))
@click.option("--dry-run", is_flag=True, help=_("Fetch and compare, and write nothing to the cache."))
@click.option("--wait", is_flag=True,
              help=_("Wait for the task to finish; this is the default unless --queue is given."))
@click.option("--queue", "queue_only", is_flag=True,
              help=_("Add the task to the queue and return; a running tvcat daemon or tvcat tasks run takes it."))
@click.option("--json", "as_json", is_flag=True, help=_("Print the result as JSON."))
@click.pass_obj
def sync_command(app, source, target, symbols, timeframes, since, backup_type, priority, closed_only,
                 accept_invalid_bars, dry_run, wait, queue_only, as_json):
    symbol_list = [validate_symbol(symbol) for symbol in split_list(symbols, "--symbols") or []] or None
    timeframe_list = [normalize_timeframe(tf) for tf in split_list(timeframes, "--timeframes") or []] or None
    since_ts = None
    if since:
        point = parse_point_in_time(since)
        since_ts = int(point.moment.timestamp())
        if point.assumed_utc:
            click.echo(_("note: --since {since} has no UTC offset and is read as UTC").format(since=since), err=True)
    config = app.config

    task = SyncTask(
        source=source if source in LOCATIONS and source != "primary" else resolve_source(source, config),
        target=target, symbols=symbol_list, timeframes=timeframe_list, since=since_ts,
        priority=PRIORITIES[priority], backup_type=backup_type, closed_only=closed_only,
        dry_run=dry_run or config.debug_config.dry_run,
        accept_invalid_bars=accept_invalid_bars or config.sync_config.accept_invalid_bars,
    )
    # Checked before the repository is opened, so a bad option leaves no catalog behind.
    remote = config.backup_config.storage_backends.remote
    check_direction(task, remote)
    if queue_only and wait:
        raise InvalidOption(detail=_("give --queue or --wait, not both"))
    repository = app.repository()
    queue_task(repository, task, remote)
    if queue_only:
        _print_queued(task, as_json)
        return

    def report(message: str) -> None:
        click.echo(message, err=True)

    if stdout_is_terminal() and not as_json:
        with Progress(TextColumn("{task.description}"), TextColumn(_("{task.completed} bars")),
                      transient=True) as bar:
            line = bar.add_task(_("syncing"), total=None)

            def progress(series, fetched: int) -> None:
                bar.update(line, description=f"{series.symbol} {series.timeframe}", completed=fetched)

            [outcome] = anyio.run(lambda: run_queued(repository, app.cache, config, [task.task_id], report,
                                                     progress))
    else:
        [outcome] = anyio.run(lambda: run_queued(repository, app.cache, config, [task.task_id], report))
    if outcome.error is not None:
        raise outcome.error
    _print_completed(outcome.completed, task, as_json)


def _print_queued(task: SyncTask, as_json: bool) -> None:
    if as_json:
        print_json({"task_id": task.task_id, "status": "queued"})
        return
    click.echo(_("task {task_id} queued; tvcat daemon or tvcat tasks run will take it").format(task_id=task.task_id))


def _print_completed(completed, task: SyncTask, as_json: bool) -> None:
    if as_json:
        print_json({**msgspec.to_builtins(completed), "source": task.source, "target": task.target,
                    "dry_run": task.dry_run})
        return
    prefix = _("dry run: ") if task.dry_run else ""
    click.echo(prefix + _("task {task_id} completed: {source} → {target}").format(
        task_id=task.task_id, source=task.source, target=task.target))
    if completed.series:
        print_table(None, [_("symbol and timeframe"), _("fetched"), _("new"), _("changed"), _("revised"), _("forming bar"),
                           _("last bar (UTC)")],
                    [[f"{s.symbol} {s.timeframe}", s.bars_fetched, s.bars_inserted, s.bars_updated, s.bars_revised,
                      format_utc(s.provisional_ts) if s.provisional_ts is not None else "",
                      format_utc(s.last_ts) if s.last_ts is not None else ""] for s in completed.series])
    if completed.backup_id:
        click.echo(_("backup: {backup_id}").format(backup_id=completed.backup_id))
    for note in completed.notes:
        click.echo(_("note: {note}").format(note=note))


@list_group.command("tasks", help=_(
    "List sync tasks, newest first, with their state from the event log.\n\n"
    "\b\n"
    "Examples:\n"
    "  tvcat list tasks --verbose"
))
@click.option("--verbose", "-v", is_flag=True, help=_("Show series, attempts, counts and errors."))
@click.option("--json", "as_json", is_flag=True, help=_("Print the tasks as JSON."))
@click.pass_obj
def list_tasks(app, verbose, as_json):
    rows = task_rows(app.repository(create=False))
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo(_("no sync tasks yet: run one with `tvcat sync --source primary --target cache`"))
        return
    columns = [_("id"), _("status"), _("source"), _("target"), _("queued (UTC)")]
    if verbose:
        columns += [_("symbols"), _("timeframes"), _("attempts"), _("new"), _("changed"), _("revised"), _("error")]
    table = []
    for row in rows:
        status = _(TASK_STATUSES.get(row["status"], row["status"]))
        if row["dry_run"]:
            status = _("{status} (dry run)").format(status=status)
        line = [row["task_id"], status, row["source"], row["target"], row["queued_at"]]
        if verbose:
            line += [",".join(row["symbols"] or ["*"]), ",".join(row["timeframes"] or ["*"]), row["attempts"],
                     row["bars_inserted"], row["bars_updated"], row["bars_revised"], row["error"] or ""]
        table.append(line)
    print_table(None, columns, table)


@click.group("tasks", help=_("Manage queued sync tasks."))
def tasks_group():
    pass


@tasks_group.command("cancel", help=_(
    "Cancel a queued or interrupted sync task, or all of them with --all; a daemon does not run a cancelled "
    "task again.\n\n"
    "\b\n"
    "Examples:\n"
    "  tvcat tasks cancel --all"
))
@click.argument("task_id", required=False)
@click.option("--all", "cancel_all", is_flag=True, help=_("Cancel every queued or interrupted task."))
@click.pass_obj
def cancel_command(app, task_id, cancel_all):
    if (task_id is None) == (not cancel_all):
        raise TvcatError(detail=_("give either a task id or --all"))
    cancelled = cancel_tasks(app.repository(create=False), None if cancel_all else task_id,
                             _("cancelled by the user"))
    click.echo(_("cancelled {count} task(s)").format(count=len(cancelled)))


@tasks_group.command("run", help=_(
    "Run every queued sync task now, highest priority first, at most sync_config.max_concurrent_tasks at once.\n\n"
    "The daemon does the same on its own; this drains the queue without one."
))
@click.option("--runner", type=click.Choice(["cli", "daemon"]), default="cli", hidden=True)
@click.option("--json", "as_json", is_flag=True, help=_("Print one result per task as JSON."))
@click.pass_obj
def run_command(app, runner, as_json):
    repository = app.repository(create=False)

    def report(message: str) -> None:
        click.echo(message, err=True)

    outcomes = anyio.run(lambda: run_queued(repository, app.cache, app.config, None, report, None, runner))
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    if as_json:
        print_json([{"task_id": outcome.task.task_id,
                     "status": "failed" if outcome.error is not None else "completed",
                     "error": None if outcome.error is None else str(outcome.error)} for outcome in outcomes])
    else:
        for outcome in outcomes:
            if outcome.error is None:
                click.echo(_("task {task_id} completed").format(task_id=outcome.task.task_id))
            else:
                click.echo(_("task {task_id} failed: {error}").format(task_id=outcome.task.task_id,
                                                                      error=outcome.error))
        click.echo(_("{count} task(s) run, {failed} failed").format(count=len(outcomes), failed=len(failed)))
    if failed:
        raise TasksFailed(count=len(failed))


COMMANDS = [sync_command, tasks_group]
