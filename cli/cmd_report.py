"""`tvcat report`: what happened in the last hours, from the event log."""

import click

from ..engine.report import activity_report
from ..i18n import _
from .output import print_json, print_table


@click.command("report", help=_(
    "Report the activity of the last hours from the event log: syncs started, completed and "
    "failed, the success rate and average duration, backups created, errors by kind and tasks "
    "by direction.\n\n"
    "\b\n"
    "Examples:\n"
    "  tvcat report\n"
    "  tvcat report --hours 168 --json"
))
@click.option("--hours", type=click.FloatRange(min=0, min_open=True, max=24 * 366 * 100), default=24.0,
              show_default=True, help=_("Length of the window, ending now, in hours."))
@click.option("--json", "as_json", is_flag=True, help=_("Print the report as JSON."))
@click.pass_obj
def report_command(app, hours, as_json):
    report = activity_report(app.repository(create=False), hours)
    if as_json:
        print_json(report)
        return

    rate = report["sync_success_rate"]
    average = report["sync_average_seconds"]
    click.echo(_("activity from {start} to {end} (UTC)").format(start=report["from"], end=report["to"]))
    rows = [
        [_("syncs started"), report["syncs_started"]],
        [_("syncs completed"), report["syncs_completed"]],
        [_("syncs failed"), report["syncs_failed"]],
        [_("sync retries"), report["sync_retries"]],
        [_("sync success rate"), "" if rate is None else f"{rate:.1%}"],
        [_("average sync duration"), "" if average is None else f"{average:.2f} s"],
        [_("revisions reported"), report["bars_revised_events"]],
        [_("backups created"), report["backups_created"]],
        [_("backups failed"), report["backups_failed"]],
        [_("prune runs"), report["prune_runs"]],
    ]
    rows += [[_("backups: {type}").format(type=backup_type), count]
             for backup_type, count in report["backups_by_type"].items()]
    rows += [[_("errors: {kind}").format(kind=kind), count] for kind, count in report["errors_by_kind"].items()]
    rows += [[_("tasks: {direction}").format(direction=direction), count]
             for direction, count in report["tasks_by_direction"].items()]
    print_table(None, [_("measure"), _("value")], rows)


COMMANDS = [report_command]
