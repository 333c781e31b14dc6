"""`tvcat verify`: check that backups can be restored."""

import click

from ..engine.verify import verify_repository
from ..errors import InvalidOption, VerifyFailed
from ..i18n import _, ngettext
from .output import print_json


@click.command("verify", help=_(
    "Check that backups can be restored.\n\n"
    "Checks every manifest, every chain and that every chunk exists; with "
    "--read-data also decodes and re-hashes every chunk. Names the backups and "
    "series each fault breaks and the newest sound backup, records the result "
    "and exits with status 6 on any fault.\n\n"
    "\b\n"
    "Examples:\n"
    "  # Full check of every backup\n"
    "  tvcat verify --read-data\n"
    "  # The copy on the remote bucket, as a recovery would find it\n"
    "  tvcat verify --remote --read-data"
))
@click.argument("backup_id", required=False)
@click.option("--read-data", is_flag=True, help=_("Decode and re-hash every chunk, not only check that it exists."))
@click.option("--remote", is_flag=True,
              help=_("Check the replicated copy on backup_config.storage_backends.remote instead of the local "
                     "repository."))
@click.option("--json", "as_json", is_flag=True, help=_("Print the report as JSON."))
@click.pass_obj
def verify_command(app, backup_id, read_data, remote, as_json):
    if remote:
        if backup_id is not None:
            raise InvalidOption(detail=_("--remote checks every backup of the remote; leave out the backup id"))
        from ..engine.remote.store import S3ObjectStore
        from ..engine.remote.verify import verify_remote

        report = verify_remote(S3ObjectStore(app.config.backup_config.storage_backends.remote), read_data)
    else:
        report = verify_repository(app.repository(create=False), backup_id, read_data=read_data)
    if as_json:
        print_json({"ok": report.ok, **report.__dict__})
    else:
        click.echo(_("checked {backups} backup(s) and {objects} object(s)").format(
            backups=report.backups_checked, objects=report.objects_checked))
        for fault in report.faults:
            subject = f"{fault.problem} {fault.object_id}" if fault.object_id else fault.problem
            click.echo(_("fault: {subject}: {detail}").format(subject=subject, detail=fault.detail))
            click.echo(_("  breaks backups: {backups}").format(backups=", ".join(fault.backups)))
            if fault.series:
                click.echo(_("  series: {series}").format(series=", ".join(fault.series)))
    if report.ok:
        if not as_json:
            click.echo(_("no faults found"))
        return
    if report.newest_sound_backup:
        advice = _("restore {backup_id} instead, the newest sound backup").format(backup_id=report.newest_sound_backup)
    else:
        advice = _("no checked backup is sound")
    raise VerifyFailed(detail=ngettext(
        "verify found {count} fault in {backups}; {advice}", "verify found {count} faults in {backups}; {advice}",
        len(report.faults)).format(count=len(report.faults), backups=", ".join(report.broken_backups), advice=advice))


COMMANDS = [verify_command]
