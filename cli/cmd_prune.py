"""`tvcat prune` (alias `forget`): apply the retention policy and collect garbage."""

import dataclasses
import math

import click

from ..engine.config.checks import CheckFailed, check_duration, check_timezone
from ..engine.retention.gc import DEFAULT_GRACE_SECONDS
from ..engine.retention.policy import Policy
from ..engine.retention.prune import policy_from_config, prune
from ..errors import InvalidOption
from ..i18n import _
from .output import format_bytes, print_json, print_table

# Ten years, which also keeps out inf.
MAX_GRACE_SECONDS = 10 * 365 * 86400.0
BUCKET_FLAGS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")


def _finite(parameter, value: float) -> float:
    """Reject nan, which every range comparison lets through."""
    if math.isnan(value):
        raise click.BadParameter(_("{value} is not a number of seconds").format(value=value), param=parameter)
    return value


def _policy(app, flags: dict, within: str | None, zone: str | None) -> Policy:
    """Return the configured policy, or the one the flags give, which replaces it for this run."""
    for value, check in ((within, check_duration), (zone, check_timezone)):
        if value is not None:
            try:
                check(value)
            except CheckFailed as error:
                raise InvalidOption(detail=str(error)) from None
    configured = policy_from_config(app.config)
    given = {name: value for name, value in flags.items() if value is not None}
    if given or within is not None:
        # Any --keep-* flag, even 0, replaces the whole configured policy for this run.
        policy = Policy(**given, keep_within=within, timezone=configured.timezone)
    else:
        policy = configured
    return dataclasses.replace(policy, timezone=zone) if zone else policy


@click.command("prune", help=_(
    "Decide which backups to keep, forget the others and delete the objects no kept backup needs.\n\n"
    "The policy is backup_config.retention_policy with max_backup_files and max_total_size_gb; "
    "--keep-* flags replace it for this run. Buckets (hour, day, ISO week, month, year) count back "
    "from the newest backup in the policy's time zone. A backup that a kept backup needs to restore "
    "is always kept. Every decision is recorded in a retention.decided event. Unreferenced "
    "objects younger than the grace period are kept, and a running backup blocks garbage "
    "collection until it ends.\n\n"
    "\b\n"
    "Examples:\n"
    "  tvcat prune --dry-run\n"
    "  tvcat forget --keep-daily 7 --keep-weekly 4 --timezone Asia/Shanghai"
))
@click.option("--keep-last", type=click.IntRange(min=0), default=None, help=_("Keep the N newest backups."))
@click.option("--keep-hourly", type=click.IntRange(min=0), default=None, help=_("Keep the newest backup of each of N hours."))
@click.option("--keep-daily", type=click.IntRange(min=0), default=None, help=_("Keep the newest backup of each of N days."))
@click.option("--keep-weekly", type=click.IntRange(min=0), default=None,
              help=_("Keep the newest backup of each of N ISO weeks."))
@click.option("--keep-monthly", type=click.IntRange(min=0), default=None,
              help=_("Keep the newest backup of each of N months."))
@click.option("--keep-yearly", type=click.IntRange(min=0), default=None, help=_("Keep the newest backup of each of N years."))
@click.option("--keep-within", metavar="DURATION",
              help=_("Keep every backup within DURATION of the newest, such as 30d or 1y6m (units y, m, w, d, h)."))
@click.option("--timezone", "zone", metavar="ZONE", help=_("IANA time zone of the buckets. Default: the policy's, else UTC."))
@click.option("--grace-seconds", type=click.FloatRange(min=0, max=MAX_GRACE_SECONDS), default=DEFAULT_GRACE_SECONDS,
              show_default=True, callback=lambda context, parameter, value: _finite(parameter, value),
              help=_("Keep unreferenced objects younger than this many seconds."))
@click.option("--dry-run", is_flag=True, help=_("Show the decisions and the bytes to free, and change nothing."))
@click.option("--json", "as_json", is_flag=True, help=_("Print the decisions and the result as JSON."))
@click.pass_obj
def prune_command(app, keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within,
                  zone, grace_seconds, dry_run, as_json):
    flags = dict(zip(BUCKET_FLAGS, (keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly)))
    policy = _policy(app, flags, keep_within, zone)
    result = prune(app.repository(create=False), policy, dry_run=dry_run or app.config.debug_config.dry_run,
                   grace_seconds=grace_seconds)

    if as_json:
        print_json({
            "dry_run": result.dry_run, "policy": dataclasses.asdict(policy),
            "decisions": [{**dataclasses.asdict(decision),
                           "bytes_alone": result.reclaim.alone_bytes.get(decision.backup_id)}
                          for decision in result.decisions],
            "bytes_to_free": result.reclaim.total_bytes, "objects_to_free": result.reclaim.objects,
            "collected": None if result.collected is None else {
                "objects_deleted": result.collected.objects_deleted, "bytes_freed": result.collected.bytes_freed,
                "objects_in_grace": result.collected.objects_in_grace},
        })
        return

    _print_decisions(result)
    if result.collected is not None:
        click.echo(_("deleted {objects} object(s), freed {size}; {grace} unreferenced object(s) kept by the "
                     "grace period").format(objects=result.collected.objects_deleted,
                                            size=format_bytes(result.collected.bytes_freed),
                                            grace=result.collected.objects_in_grace))


def _print_decisions(result) -> None:
    prefix = _("dry run: ") if result.dry_run else ""
    rows = []
    for decision in result.decisions:
        backup = result.backups[decision.backup_id]
        reason = decision.rule + (f" {decision.bucket}" if decision.bucket else "")
        if decision.needed_by:
            reason = _("needed by {backup_id}").format(backup_id=decision.needed_by)
        rows.append([decision.backup_id, backup.type, backup.committed_at.strftime("%Y-%m-%d %H:%M:%S"),
                     _("keep") if decision.keep else _("forget"), reason,
                     "" if decision.keep else format_bytes(result.reclaim.alone_bytes.get(decision.backup_id, 0))])
    if rows:
        print_table(None, [_("id"), _("type"), _("committed (UTC)"), _("decision"), _("reason"), _("frees alone")],
                    rows)
    click.echo(prefix + _("{kept} kept, {forgotten} to forget, {size} to free (zone {zone})").format(
        kept=len(result.decisions) - len(result.forgotten), forgotten=len(result.forgotten),
        size=format_bytes(result.reclaim.total_bytes), zone=result.policy.timezone))


COMMANDS = [prune_command]
