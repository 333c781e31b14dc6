"""`tvcat list`: list backups."""

import click

from ..i18n import _
from .output import format_bytes, print_json, print_table


@click.group("list", help=_("List backups."))
def list_group():
    pass


@list_group.command("backups", help=_(
    "List committed backups, oldest first.\n\n"
    "Any unique prefix of a backup id can be given to restore and verify.\n\n"
    "\b\n"
    "Examples:\n"
    "  # Show type, parent and size of every backup\n"
    "  tvcat list backups --verbose"
))
@click.option("--verbose", "-v", is_flag=True, help=_("Show parents, scope, windows and duration."))
@click.option("--all", "show_all", is_flag=True,
              help=_("Also list forgotten backups, with when and by which rule they were forgotten."))
@click.option("--json", "as_json", is_flag=True, help=_("Print the backups as JSON."))
@click.pass_obj
def list_backups(app, verbose, show_all, as_json):
    repository = app.repository(create=False)
    backups = repository.backups()
    forgotten = {}
    if show_all:
        backups = [backup for backup in repository.backups(status=None) if backup.status in ("committed", "forgotten")]
        forgotten = {row[0]: {"forgotten_at": row[1], "rule": row[2], "timezone": row[3]} for row in
                     repository.connection.execute(
                         "SELECT backup_id, forgotten_at, rule, timezone FROM forgotten_backups")}
    if as_json:
        print_json([{**backup.__dict__, "guide_id": backup.guide_id, "forgotten": forgotten.get(backup.backup_id)}
                    for backup in backups])
        return
    if not backups:
        click.echo(_("no backups yet: take one with `tvcat backup --type full`"))
        return

    columns = [_("id"), _("type"), _("committed (UTC)"), _("series"), _("bars"), _("added")]
    if verbose:
        columns += [_("guide-style id"), _("parent"), _("scope"), _("windows written"), _("new chunks"), _("seconds")]
    if show_all:
        columns += [_("forgotten (UTC)"), _("rule")]
    rows = []
    for backup in backups:
        row = [backup.backup_id, backup.type, backup.committed_at, backup.series_count, backup.bar_count,
               format_bytes(backup.bytes_written)]
        if verbose:
            scope = "{} / {}".format(",".join(backup.symbols or ["*"]), ",".join(backup.timeframes or ["*"]))
            row += [backup.guide_id, backup.parent_id or "", scope, backup.windows_written, backup.chunks_written,
                    f"{backup.duration_seconds:.2f}"]
        if show_all:
            gone = forgotten.get(backup.backup_id)
            row += [gone["forgotten_at"], gone["rule"]] if gone else ["", ""]
        rows.append(row)
    print_table(None, columns, rows)


COMMANDS = [list_group]
