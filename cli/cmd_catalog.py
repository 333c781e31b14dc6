"""`tvcat catalog rebuild` and `tvcat audit verify`."""

import click

from ..catalog import events as ev
from ..catalog.projections import rebuild_projections
from ..engine.audit import verify_log
from ..errors import AuditFailed
from ..i18n import _
from .output import print_json


@click.group("catalog", help=_("Maintain the catalog database."))
def catalog_group():
    pass


@catalog_group.command("rebuild", help=_(
    "Rebuild every projection table from the event log.\n\n"
    "Checks the hash chain of the log first and rejects a damaged log. Then empties "
    "backups, backup_series, backup_chunks, restores and verifications and replays every "
    "event into them, in one transaction. The log itself gains only audit.verified and "
    "catalog.rebuilt events."
))
@click.option("--json", "as_json", is_flag=True, help=_("Print the result as JSON."))
@click.pass_obj
def rebuild_command(app, as_json):
    repository = app.repository(create=False)
    audit = verify_log(repository)
    if not audit.ok:
        raise AuditFailed(detail=_(
            "refusing to rebuild from a damaged event log: event {seq}: {problem}"
        ).format(seq=audit.first_bad_seq, problem=audit.problem))
    replayed, missing = rebuild_projections(repository.connection, repository.store)
    repository.record(ev.CatalogRebuilt(events_replayed=replayed, manifests_missing=missing))
    if as_json:
        print_json({"events_replayed": replayed, "manifests_missing": missing})
        return
    click.echo(_("replayed {count} events into fresh projections").format(count=replayed))
    if missing:
        click.echo(_("warning: {count} manifests could not be read; run `tvcat verify`").format(count=missing), err=True)


@click.group("audit", help=_("Audit the event log."))
def audit_group():
    pass


@audit_group.command("verify", help=_(
    "Check the hash chain of the event log.\n\n"
    "Re-hashes every event and checks its link to the one before, its sequence number "
    "and its time. An event edited or deleted behind the triggers' back is found and "
    "named; the exit status is then 6. Events removed from the end leave no trace in "
    "the chain itself, so the command prints the last event's hash to keep elsewhere."
))
@click.option("--json", "as_json", is_flag=True, help=_("Print the result as JSON."))
@click.pass_obj
def audit_verify_command(app, as_json):
    report = verify_log(app.repository(create=False))
    if as_json:
        print_json({"ok": report.ok, **report.__dict__})
    elif report.ok:
        click.echo(_("event log intact: {count} events checked").format(count=report.events_checked))
        if report.last_hash:
            click.echo(_("hash of the last event: {hash}; keep it elsewhere to detect later removal of "
                         "events from the end of the log").format(hash=report.last_hash))
    if not report.ok:
        raise AuditFailed(detail=_("event log damaged at event {seq}: {problem}").format(
            seq=report.first_bad_seq, problem=report.problem))


COMMANDS = [catalog_group, audit_group]
