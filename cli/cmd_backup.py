"""`tvcat backup`: take a backup of the cache."""

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ..catalog.series import normalize_timeframe, validate_symbol
from ..engine.backup import BackupType, Scope, create_backup
from ..engine.retention.auto_cleanup import cleanup_before_backup
from ..engine.verify import verify_new_backup
from ..i18n import _
from .output import format_bytes, print_json, split_list, stdout_is_terminal


def parse_scope(symbols: tuple[str, ...], timeframes: tuple[str, ...]) -> Scope:
    """Build a Scope from --symbols/--timeframes values, validating each item."""
    symbol_list = split_list(symbols, "--symbols")
    timeframe_list = split_list(timeframes, "--timeframes")
    if symbol_list:
        symbol_list = [validate_symbol(symbol) for symbol in symbol_list]
    if timeframe_list:
        timeframe_list = [normalize_timeframe(timeframe) for timeframe in timeframe_list]
    return Scope.of(symbol_list, timeframe_list)


def scope_options(function):
    function = click.option("--timeframes", multiple=True, metavar="LIST",
                            help=_("Timeframes, comma-separated, e.g. 15,60. Default: all."))(function)
    function = click.option("--symbols", multiple=True, metavar="LIST",
                            help=_("Symbols, comma-separated, e.g. BINANCE:BTCUSDT,BINANCE:ETHUSDT. Default: all."))(function)
    return function


@click.command("backup", help=_(
    "Take a backup of the bar cache into the repository.\n\n"
    "full reads every window; incremental stores the windows changed since the "
    "latest backup of the same scope; differential those changed since the latest "
    "full; snapshot those changed since the latest backup, in a self-contained "
    "manifest. Unchanged chunks are never stored twice.\n\n"
    "\b\n"
    "Examples:\n"
    "  # Back up everything\n"
    "  tvcat backup --type full\n"
    "  # Back up the changes of two symbols\n"
    "  tvcat backup --type incremental --symbols BINANCE:BTCUSDT,BINANCE:ETHUSDT --timeframes 15,60"
))
@click.option("--type", "backup_type", type=click.Choice([t.value for t in BackupType]), default="incremental",
              show_default=True, help=_("Backup type."))
@scope_options
@click.option("--allow-shrink", is_flag=True,
              help=_("Back up even when a series is missing, or has lost bars, compared with the last backup that held it."))
@click.option("--json", "as_json", is_flag=True, help=_("Print the result as JSON."))
@click.pass_obj
def backup_command(app, backup_type, symbols, timeframes, allow_shrink, as_json):
    scope = parse_scope(symbols, timeframes)
    app.reject_dry_run("tvcat backup")
    settings = app.config.backup_config
    repository = app.repository()
    cache = app.bar_cache(create=False)
    cleaned = cleanup_before_backup(repository, app.config)
    if cleaned is not None and not as_json:
        message, pruned = cleaned
        click.echo(_("cleanup before the backup: {message}; forgot {count} backup(s), freed {size}").format(
            message=message, count=len(pruned.forgotten), size=format_bytes(pruned.collected.bytes_freed)))

    if stdout_is_terminal() and not as_json:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), transient=True) as bar:
            task = bar.add_task(_("backing up"), total=None)

            def report(series: str, done: int, total: int) -> None:
                bar.update(task, description=series or _("committing"), completed=done, total=total)

            result = create_backup(repository, cache, BackupType(backup_type), scope, progress=report,
                                   compression_level=settings.compression_level, allow_shrink=allow_shrink)
    else:
        result = create_backup(repository, cache, BackupType(backup_type), scope,
                               compression_level=settings.compression_level, allow_shrink=allow_shrink)
    verification = verify_new_backup(repository, result.backup_id, settings.verification)

    if as_json:
        cleanup = None
        if cleaned is not None:
            message, pruned = cleaned
            cleanup = {"reason": message, "forgotten": [decision.backup_id for decision in pruned.forgotten],
                       "bytes_freed": pruned.collected.bytes_freed}
        print_json({**result.__dict__, "type": result.type.value, "requested_type": result.requested_type.value,
                    "verified": verification, "auto_cleanup": cleanup})
        return
    for note in result.notes:
        click.echo(_("note: {note}").format(note=note))
    click.echo(_("backup {backup_id} committed ({type})").format(backup_id=result.backup_id, type=result.type.value))
    if result.parent_id:
        click.echo(_("  parent:          {parent_id}").format(parent_id=result.parent_id))
    click.echo(_("  series:          {count}").format(count=result.series_count))
    click.echo(_("  bars:            {count}").format(count=result.bar_count))
    click.echo(_("  windows written: {written} of {read} read").format(
        written=result.windows_written, read=result.windows_read))
    click.echo(_("  new chunks:      {count}").format(count=result.chunks_written))
    click.echo(_("  bytes added:     {size}").format(size=format_bytes(result.bytes_written)))
    click.echo(_("  duration:        {seconds:.2f} s").format(seconds=result.duration_seconds))
    if result.objects_repaired:
        click.echo(_("  repaired:        {count} damaged objects replaced").format(count=result.objects_repaired))
    if verification is None:
        click.echo(_("  verified:        no (backup_config.verification.verify_after_backup is false)"))
    elif verification["read_data"]:
        click.echo(_("  verified:        every object of its restored state read and re-hashed"))
    else:
        click.echo(_("  verified:        every object of its restored state exists"))


COMMANDS = [backup_command]
