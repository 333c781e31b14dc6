"""The exceptions of tvcat, one hierarchy with one exit code per class.

Each class keeps its message template, with named fields so translators can
reorder words. The template is translated when the message is rendered, so the
language chosen at run time applies. The CLI prints `str(error)` on one line
and exits with `error.exit_code`.
"""

from typing import Any, ClassVar

from .i18n import N_, _

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INVALID_INPUT = 3
EXIT_NOT_FOUND = 4
EXIT_NO_BACKUP_AT_TIME = 5
EXIT_INTEGRITY = 6
EXIT_CONFIRMATION = 7
EXIT_INTERRUPTED = 130


class TvcatError(Exception):
    """Base class of every error that tvcat reports to a user."""

    exit_code: ClassVar[int] = EXIT_ERROR
    template: ClassVar[str] = N_("{detail}")

    def __init__(self, **fields: Any) -> None:
        self.fields = fields
        super().__init__(self.template, fields)

    def __str__(self) -> str:
        return _(self.template).format(**self.fields)


class InvalidInput(TvcatError):
    """Input that tvcat cannot accept: a file, a value or an option."""

    exit_code = EXIT_INVALID_INPUT


class InvalidRow(InvalidInput):
    """A row of an input file that cannot be read."""

    template = N_("{path}, line {line}, column {column}: invalid value {value!r}: {reason}")


class InvalidFile(InvalidInput):
    """An input file that cannot be read as a whole."""

    template = N_("{path}: {reason}")


class InvalidTimestamp(InvalidInput):
    """A time given on the command line that cannot be parsed."""

    template = N_(
        "invalid time {value!r}: use ISO 8601 with an offset such as "
        "2024-05-01T12:00:00+08:00 or 2024-05-01T04:00:00Z, or Unix seconds"
    )


class InvalidTimeframe(InvalidInput):
    """A timeframe that TradingView notation does not define."""

    template = N_(
        "invalid timeframe {value!r}: use minutes such as 1, 15 or 240, "
        "or 1S, 1D, 1W, 1M"
    )


class InvalidSymbol(InvalidInput):
    """A symbol that is not EXCHANGE:TICKER."""

    template = N_("invalid symbol {value!r}: use EXCHANGE:TICKER such as BINANCE:BTCUSDT")


class InvalidOption(InvalidInput):
    """A command-line option with an invalid value or an invalid combination."""

    template = N_("{detail}")


class DatabaseUnavailable(TvcatError):
    """A database file that cannot be opened or written."""

    template = N_(
        "cannot open the database {path}: {reason}; check that the path is a tvcat database file "
        "in a writable directory, or choose another with --repo or --cache"
    )


class NotFound(TvcatError):
    """Something named by the user does not exist."""

    exit_code = EXIT_NOT_FOUND


class BackupNotFound(NotFound):
    template = N_("backup {backup_id!r} not found: run `tvcat list backups` to see the ids")


class BackupForgotten(NotFound):
    template = N_(
        "backup {backup_id} was forgotten by prune at {forgotten_at} (rule {rule}) and cannot be restored, because "
        "garbage collection deletes its objects; `tvcat list backups` shows the kept backups and "
        "`tvcat list backups --all` the forgotten ones"
    )


class AmbiguousBackupId(NotFound):
    template = N_(
        "backup id prefix {prefix!r} is ambiguous: it matches {matches}; type more characters"
    )


class AmbiguousGuideId(NotFound):
    template = N_(
        "{name} names several backups started in that second: {matches}; use one of these ids instead"
    )


class RepositoryNotFound(NotFound):
    template = N_(
        "no repository at {path}: run `tvcat import` or `tvcat backup` to create one, "
        "or pass --repo"
    )


class CacheNotFound(NotFound):
    template = N_("no bar cache at {path}: import bars first with `tvcat import FILE`")


class NothingToBackUp(NotFound):
    template = N_("nothing to back up: the cache has no bars for {scope}")


class NoBackupAtTime(TvcatError):
    """No backup covers the requested point in time."""

    exit_code = EXIT_NO_BACKUP_AT_TIME
    template = N_("{detail}")


class IntegrityError(TvcatError):
    """Stored data failed a check: a missing or corrupted object, a broken chain or log."""

    exit_code = EXIT_INTEGRITY


class ObjectMissing(IntegrityError):
    template = N_("object {object_id} is missing from the repository")


class ObjectCorrupted(IntegrityError):
    template = N_("object {object_id} is corrupted: {reason}")


class ManifestMismatch(IntegrityError):
    template = N_(
        "the catalog names manifest {manifest_id} for backup {backup_id}, but that manifest belongs to "
        "{owner}: the catalog was changed; run `tvcat audit verify`"
    )


class VerifyFailed(IntegrityError):
    template = N_("{detail}")


class AuditFailed(IntegrityError):
    template = N_("{detail}")


class ConfirmationRequired(TvcatError):
    """A destructive action that needs `--force` when no terminal can confirm it."""

    exit_code = EXIT_CONFIRMATION
    template = N_("{detail}")
