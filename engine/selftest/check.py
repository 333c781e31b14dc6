"""The types every self-test check shares: the setup it inspects, its outcome and its failure."""

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

from ...errors import TvcatError
from ..config import LoadedConfig


class Setup(Protocol):
    """The user's setup as the CLI resolves it, which the CLI's AppContext provides.

    `loaded` raises the loader's error when the configuration is invalid, and
    `repo` and `cache` read the configuration too.
    """

    @property
    def loaded(self) -> LoadedConfig: ...

    @property
    def repo(self) -> Path: ...

    @property
    def cache(self) -> Path: ...


class Status(str, Enum):
    """The result of one check. The value is the word used in JSON output."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Outcome:
    """The result of a check that did not fail: pass or skip, with one line of detail."""

    status: Status
    detail: str


def passed(detail: str) -> Outcome:
    return Outcome(Status.PASS, detail)


def skipped(detail: str) -> Outcome:
    return Outcome(Status.SKIP, detail)


class CheckFailed(TvcatError):
    """A problem that a self-test check found. The detail names what failed and what to do."""


@dataclass(frozen=True)
class CheckResult:
    """One line of the self-test report."""

    # A stable identifier for scripts, such as `free_space`.
    name: str
    # The translated name shown to people.
    title: str
    status: Status
    detail: str
    # The exit code of the error behind a failure, 0 otherwise.
    exit_code: int = 0

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "detail": self.detail}
