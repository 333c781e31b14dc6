"""`tvcat status`: show the cache and the repository at a glance."""

import click

from ..catalog.repository import CATALOG_FILE
from ..engine.status import collect_status
from ..i18n import _
from .output import format_bar_time, format_bytes, print_json, print_table


@click.command("status", help=_(
    "Show the cache size and series, backups per type, the last backup of each type "
    "and the last failure."
))
@click.option("--verbose", "-v", is_flag=True, help=_("List every series of the cache."))
@click.option("--json", "as_json", is_flag=True, help=_("Print the status as JSON."))
@click.pass_obj
def status_command(app, verbose, as_json):
    repository = app.repository(create=False) if (app.repo / CATALOG_FILE).exists() else None
    status = collect_status(repository, app.cache, verbose=verbose)
    if as_json:
        print_json(status)
        return

    cache = status["cache"]
    if not cache["exists"]:
        click.echo(_("cache: {path} (not created yet)").format(path=cache["path"]))
    else:
        click.echo(_("cache: {path}, {size}, {series} series, {bars} bars").format(
            path=cache["path"], size=format_bytes(cache["size_bytes"]), series=cache["series_count"],
            bars=cache["bar_count"]))
        if verbose:
            print_table(None, [_("symbol"), _("timeframe"), _("bars"), _("first bar (UTC)"), _("last bar (UTC)")],
                        [[s["symbol"], s["timeframe"], s["bars"], format_bar_time(s["first_ts"]),
                          format_bar_time(s["last_ts"])] for s in cache["series"]])

    repository_status = status["repository"]
    if repository_status is None:
        click.echo(_("repository: {path} (not created yet)").format(path=app.repo))
        return
    click.echo(_("repository: {path}, {events} events, {size} stored").format(
        path=repository_status["path"], events=repository_status["events"],
        size=format_bytes(repository_status["bytes_stored"])))
    by_type = repository_status["backups_by_type"]
    if by_type:
        print_table(None, [_("type"), _("backups"), _("last backup"), _("committed (UTC)")],
                    [[backup_type, info["count"], info["last_backup_id"], info["last_committed_at"]]
                     for backup_type, info in by_type.items()])
    else:
        click.echo(_("no backups yet"))
    failure = repository_status["last_failure"]
    if failure:
        click.echo(_("last failure: {time} {kind} {subject}: {error}").format(**failure))
    else:
        click.echo(_("no failures recorded"))


COMMANDS = [status_command]
