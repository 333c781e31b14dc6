"""`tvcat restore`: restore a backup into the cache or another database."""

import sys
from pathlib import Path

import click

from ..engine.restore import RestoreChoice, choose_backup_at, parse_point_in_time, restore_backup
from ..errors import ConfirmationRequired, InvalidOption
from ..i18n import _
from .cmd_backup import parse_scope, scope_options
from .output import print_json


@click.command("restore", help=_(
    "Restore a backup into the bar cache or into another database.\n\n"
    "Give a backup id (or a unique prefix) or --at TIME to take the latest backup "
    "committed at or before that time. The database is built beside the target and "
    "renamed into place, so a failed restore leaves the target as it was. Replacing "
    "an existing database asks first on a terminal and needs --force otherwise. With "
    "--symbols or --timeframes, only those series of an existing target are replaced.\n\n"
    "\b\n"
    "Examples:\n"
    "  # Restore the state of 1 May 2024, 08:00 in Shanghai, into a new file\n"
    "  tvcat restore --at 2024-05-01T08:00:00+08:00 --target-db /tmp/may.db\n"
    "  # Replace the cache with a backup, without asking\n"
    "  tvcat restore 20241201T020000 --force\n"
    "  # On a new machine, from the replicated copy alone\n"
    "  tvcat restore --from remote --at 2024-05-01T08:00:00Z --target-db /tmp/may.db"
))
@click.argument("backup_id", required=False)
@click.option("--at", "at", metavar="TIME",
              help=_("Point in time: ISO 8601 with an offset (2024-05-01T08:00:00+08:00, ...Z) or Unix seconds. "
                     "Without an offset the time is read as UTC."))
@click.option("--target-db", type=click.Path(path_type=Path), help=_("Database to write. Default: the bar cache."))
@scope_options
@click.option("--force", is_flag=True, help=_("Replace an existing target database without asking."))
@click.option("--from", "source", type=click.Choice(["remote"]),
              help=_("Read the backup from the replicated copy on backup_config.storage_backends.remote; needs --at."))
@click.option("--json", "as_json", is_flag=True, help=_("Print the result as JSON."))
@click.pass_obj
def restore_command(app, backup_id, at, target_db, symbols, timeframes, force, source, as_json):
    if (backup_id is None) == (at is None):
        raise InvalidOption(detail=_("give either a backup id or --at TIME, not both and not neither"))
    scope = parse_scope(symbols, timeframes)
    app.reject_dry_run("tvcat restore")
    if source == "remote":
        _restore_from_remote(app, at, target_db, scope, force, as_json)
        return
    repository = app.repository(create=False)

    requested_at = None
    if at is not None:
        point = parse_point_in_time(at)
        requested_at = at
        if point.assumed_utc:
            click.echo(_("note: {at} has no offset and is read as UTC").format(at=at), err=True)
        choice = choose_backup_at(repository, point, scope)
    else:
        backup = repository.find_backup(backup_id)
        choice = RestoreChoice(backup, _("named on the command line"))

    target = target_db or app.cache
    click.echo(_("restoring backup {backup_id} ({type}, committed {committed_at}): {reason}").format(
        backup_id=choice.backup.backup_id, type=choice.backup.type, committed_at=choice.backup.committed_at,
        reason=choice.reason), err=as_json)
    if Path(target).exists() and not force:
        _confirm_replace(target)

    result = restore_backup(repository, choice, Path(target), scope, requested_at=requested_at)
    if as_json:
        print_json({"backup_id": result.backup_id, "target": str(result.target), "reason": choice.reason,
                    "series_count": result.series_count, "bar_count": result.bar_count})
        return
    click.echo(_("restored {bars} bars of {series} series into {target}").format(
        bars=result.bar_count, series=result.series_count, target=result.target))


def _restore_from_remote(app, at: str | None, target_db: Path | None, scope, force: bool, as_json: bool) -> None:
    """Restore the latest remote backup at `at`, with no local repository needed."""
    if at is None:
        raise InvalidOption(detail=_("--from remote needs --at TIME, because backup ids come from the remote log"))
    point = parse_point_in_time(at)
    if point.assumed_utc:
        click.echo(_("note: {at} has no offset and is read as UTC").format(at=at), err=True)
    target = Path(target_db or app.cache)
    if target.exists() and not force:
        _confirm_replace(target)

    from ..engine.remote.restore import restore_from_remote
    from ..engine.remote.store import S3ObjectStore

    remote = S3ObjectStore(app.config.backup_config.storage_backends.remote)
    result = restore_from_remote(remote, point, target, scope, requested_at=at)
    if as_json:
        print_json({"backup_id": result.backup_id, "target": str(result.target), "source": "remote",
                    "series_count": result.series_count, "bar_count": result.bar_count})
        return
    click.echo(_("restored {bars} bars of {series} series from backup {backup_id} on bucket {bucket} into {target}")
               .format(bars=result.bar_count, series=result.series_count, backup_id=result.backup_id,
                       bucket=remote.bucket, target=result.target))


def _confirm_replace(target: Path) -> None:
    if not sys.stdin.isatty():
        raise ConfirmationRequired(detail=_(
            "{target} exists; pass --force to replace it, or --target-db to restore elsewhere").format(target=target))
    if not click.confirm(_("{target} exists. Replace it?").format(target=target)):
        raise ConfirmationRequired(detail=_("restore cancelled: {target} was not changed").format(target=target))


COMMANDS = [restore_command]
