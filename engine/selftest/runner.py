"""Run the self-test checks in order and turn their failures into one error with the right exit code."""

from collections.abc import Callable
from dataclasses import dataclass

from ...errors import EXIT_ERROR, EXIT_INTEGRITY, IntegrityError, TvcatError
from ...i18n import N_, _
from .catalog import check_catalog
from .check import CheckResult, Outcome, Setup, Status
from .round_trip import check_round_trip
from .setup_checks import check_configuration, check_free_space, check_paths


@dataclass(frozen=True)
class Check:
    """One self-test check and the checks that must pass before it can run."""

    name: str
    # Marked with N_ and translated when shown.
    title: str
    run: Callable[[Setup], Outcome]
    needs: tuple[str, ...] = ()


CHECKS = (
    Check("configuration", N_("configuration"), check_configuration),
    Check("paths", N_("paths and permissions"), check_paths, needs=("configuration",)),
    Check("free_space", N_("free space"), check_free_space, needs=("configuration",)),
    Check("catalog", N_("catalog integrity"), check_catalog, needs=("configuration",)),
    Check("round_trip", N_("round trip"), check_round_trip),
)


class SelfTestFailed(TvcatError):
    """One or more self-test checks failed, none of them with an integrity fault."""


class SelfTestFoundFault(IntegrityError):
    """A self-test check found an integrity fault: a damaged event log, or a restore or chunk that differs."""


def run_self_test(setup: Setup, report: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """Run every check in order and return their results, passing each to `report` as it is known.

    A TvcatError or OSError in a check makes that check fail, and the next
    check runs. A check whose prerequisite did not pass is skipped.
    """
    results: dict[str, CheckResult] = {}
    for check in CHECKS:
        result = _run_check(check, setup, results)
        results[check.name] = result
        if report is not None:
            report(result)
    return list(results.values())


def raise_for_failures(results: list[CheckResult]) -> None:
    """Raise an error naming the failed checks, and nothing when none failed.

    The error is SelfTestFoundFault, exit status 6, when a failed check found
    an integrity fault, and SelfTestFailed, exit status 1, otherwise.
    """
    failed = [result for result in results if result.status is Status.FAIL]
    if not failed:
        return

    detail = _("{count} of {total} checks failed: {titles}").format(
        count=len(failed), total=len(results), titles=", ".join(result.title for result in failed))
    if any(result.exit_code == EXIT_INTEGRITY for result in failed):
        raise SelfTestFoundFault(detail=detail)
    raise SelfTestFailed(detail=detail)


def _run_check(check: Check, setup: Setup, earlier: dict[str, CheckResult]) -> CheckResult:
    title = _(check.title)
    for name in check.needs:
        if earlier[name].status is not Status.PASS:
            detail = _("skipped because the {check} check did not pass").format(check=earlier[name].title)
            return CheckResult(check.name, title, Status.SKIP, detail)

    try:
        outcome = check.run(setup)
    except TvcatError as error:
        return CheckResult(check.name, title, Status.FAIL, str(error), error.exit_code)
    except OSError as error:
        detail = str(error)
        if error.strerror and error.filename:
            detail = _("{reason}: {path}").format(reason=error.strerror, path=error.filename)
        return CheckResult(check.name, title, Status.FAIL, detail, EXIT_ERROR)
    return CheckResult(check.name, title, outcome.status, outcome.detail)
