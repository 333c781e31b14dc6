"""`tvcat test`: check the setup and run a backup and restore round trip."""

import click

from ..engine.selftest import CheckResult, Status, raise_for_failures, run_self_test
from ..i18n import _
from .output import print_json

STATUS_COLORS = {Status.PASS: "green", Status.FAIL: "red", Status.SKIP: "yellow"}


@click.command("test", help=_(
    "Check the configuration, paths, free space and catalog that tvcat uses, then run a backup and "
    "restore round trip.\n\n"
    "The checks run in order. The configuration must load. The repository and cache "
    "directories must exist or be possible to create, and must be writable. An existing "
    "cache must open. The free space must reach sync_config.resource_limits.min_free_disk_gb. "
    "The hash chain of the repository's event log must verify, as with `tvcat audit verify`. "
    "Last, a round trip on the bundled sample runs in a temporary directory: import, full "
    "backup, revised and new bars, incremental backup, both backups restored and compared "
    "bit for bit, and verify --read-data.\n\n"
    "A failed check does not stop the next ones, but a check that needs the configuration "
    "is skipped when it does not load. Your repository, cache and configuration are not "
    "changed and no event is recorded. Exits with status 6 when a check found an integrity "
    "fault and 1 when any other check failed.\n\n"
    "\b\n"
    "Examples:\n"
    "  # Check the setup that the other commands use\n"
    "  tvcat test\n"
    "  # Check another configuration file, with output for scripts\n"
    "  tvcat --config ./tvcat.yaml test --json"
))
@click.option("--json", "as_json", is_flag=True,
              help=_("Print the checks as a JSON list of objects with name, status and detail."))
@click.pass_obj
def test_command(app, as_json):
    if as_json:
        results = run_self_test(app)
        print_json([result.as_json() for result in results])
    else:
        results = run_self_test(app, report=_print_result)
        _print_summary(results)
    raise_for_failures(results)


def _status_words() -> dict[Status, str]:
    return {Status.PASS: _("pass"), Status.FAIL: _("fail"), Status.SKIP: _("skip")}


def _print_result(result: CheckResult) -> None:
    words = _status_words()
    width = max(map(len, words.values()))
    status = click.style(words[result.status].ljust(width), fg=STATUS_COLORS[result.status], bold=True)
    # An invalid configuration lists one problem per line, so later lines are indented under the first.
    detail = result.detail.replace("\n", "\n" + " " * (width + 2))
    click.echo(f"{status}  {result.title}: {detail}")


def _print_summary(results: list[CheckResult]) -> None:
    counts = {status: sum(result.status is status for result in results) for status in Status}
    click.echo(_("{total} checks: {passed} passed, {failed} failed, {skipped} skipped").format(
        total=len(results), passed=counts[Status.PASS], failed=counts[Status.FAIL], skipped=counts[Status.SKIP]))


COMMANDS = [test_command]
