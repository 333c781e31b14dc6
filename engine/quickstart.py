"""The quickstart: a full round trip on the bundled sample, in a directory of its own.

It imports the sample with its last day held back and its last bar still
forming, and takes a full backup. It then imports the whole sample (a day
of new bars and the final values of the forming bar) and takes an
incremental backup. Last, it restores the state at the time of the first
backup into a new database and checks that it equals the first state bit
for bit.

The steps below `run_quickstart` (importing the sample or a variant of it,
restoring at a time, verifying every chunk) are shared with the round trip
of `tvcat test`.
"""

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..catalog.bars import BarColumns
from ..catalog.repository import Repository
from ..catalog.series import Series
from ..errors import InvalidOption, VerifyFailed
from ..i18n import _
from .backup import BackupType, Scope, create_backup
from .cache import BarCache
from .importing import ImportReport, import_files
from .restore import RestoreChoice, choose_backup_at, parse_point_in_time, restore_backup
from .verify import VerifyReport, verify_repository

SAMPLE_DIR = Path(__file__).parent / "sample_data"
SAMPLE_FILE = SAMPLE_DIR / "EURUSD60.csv"
SAMPLE_SYMBOL = "FX:EURUSD"
SAMPLE_TIMEFRAME = "60"
SAMPLE_ZONE = "UTC"
HELD_BACK_BARS = 24


@dataclass(frozen=True)
class QuickstartResult:
    directory: Path
    first_backup_id: str
    second_backup_id: str
    restored_path: Path
    bars_compared: int


def run_quickstart(directory: Path, say: Callable[[str], None]) -> QuickstartResult:
    """Run every step in `directory`, reporting each through `say`.

    Raises VerifyFailed if the restored state differs from the first state.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise InvalidOption(detail=_(
            "{directory} is not empty; the quickstart needs an empty or new directory so it touches "
            "no existing cache or repository"
        ).format(directory=directory))
    repository = Repository(directory / "repo")
    cache = BarCache(directory / "cache.db")
    series = Series(SAMPLE_SYMBOL, SAMPLE_TIMEFRAME)
    try:
        first_part = write_first_part(directory / "EURUSD60-first-part.csv")
        say(_("1. import {file}: the sample without its last {count} bars, the last bar still forming").format(
            file=first_part.name, count=HELD_BACK_BARS))
        _import(repository, cache, first_part, say)

        first = create_backup(repository, cache, BackupType.FULL)
        first_state = cache.read_bars(series)
        say(_("2. full backup {backup_id}: {bars} bars, {size} bytes added").format(
            backup_id=first.backup_id, bars=first.bar_count, size=first.bytes_written))

        say(_("3. import {file}: {count} new bars and the final values of the bar that was forming").format(
            file=SAMPLE_FILE.name, count=HELD_BACK_BARS))
        _import(repository, cache, SAMPLE_FILE, say)

        second = create_backup(repository, cache, BackupType.INCREMENTAL)
        say(_("4. incremental backup {backup_id}: {windows} window(s) written, {size} bytes added").format(
            backup_id=second.backup_id, windows=second.windows_written, size=second.bytes_written))

        committed_at = repository.backup(first.backup_id).committed_at
        restored_path = directory / "restored-at-first-backup.db"
        choice = restore_at(repository, committed_at, restored_path)
        say(_("5. restore --at {at}: chose {backup_id}, wrote {path}").format(
            at=committed_at, backup_id=choice.backup.backup_id, path=restored_path))

        restored_state = read_restored_bars(restored_path, series)
        if not restored_state.bit_equal(first_state):
            raise VerifyFailed(detail=_("the restored state differs from the state at the first backup"))
        say(_("6. compared: all {count} restored bars equal the first state bit for bit").format(
            count=len(restored_state)))

        report = verify_all_data(repository)
        say(_("7. verify --read-data: {count} backups sound").format(count=report.backups_checked))
        return QuickstartResult(directory, first.backup_id, second.backup_id, restored_path, len(restored_state))
    finally:
        cache.close()
        repository.close()


def _import(repository: Repository, cache: BarCache, path: Path, say: Callable[[str], None]) -> None:
    report = import_sample(repository, cache, path)
    say(_("   {rows} rows read: {new} new, {changed} changed, {unchanged} unchanged").format(
        rows=report.rows_read, new=report.bars_inserted, changed=report.bars_updated,
        unchanged=report.bars_unchanged))


def import_sample(repository: Repository, cache: BarCache, path: Path) -> ImportReport:
    """Import `path`, the bundled sample or a variant of it, with the sample's symbol, timeframe and zone."""
    [report] = import_files(repository, cache, [path], symbol=SAMPLE_SYMBOL, timeframe=SAMPLE_TIMEFRAME,
                            tz=SAMPLE_ZONE)
    return report


def restore_at(repository: Repository, at: str, target: Path) -> RestoreChoice:
    """Restore the latest backup committed at or before `at`, an events.time text, into `target`."""
    choice = choose_backup_at(repository, parse_point_in_time(at), Scope())
    restore_backup(repository, choice, target, requested_at=at)
    return choice


def read_restored_bars(path: Path, series: Series) -> BarColumns:
    """Return the bars of `series` in the restored database at `path`."""
    restored = BarCache(path)
    try:
        return restored.read_bars(series)
    finally:
        restored.close()


def verify_all_data(repository: Repository) -> VerifyReport:
    """Verify every backup, decoding every chunk as `verify --read-data` does.

    Raises VerifyFailed naming the broken backups.
    """
    report = verify_repository(repository, read_data=True)
    if not report.ok:
        raise VerifyFailed(detail=_("verify found faults in {backups}").format(
            backups=", ".join(report.broken_backups)))
    return report


def read_sample_rows() -> list[list[str]]:
    """Return the rows of the bundled sample, the header row first."""
    with SAMPLE_FILE.open(newline="", encoding="utf-8") as source:
        return list(csv.reader(source))


def write_sample_rows(path: Path, rows: list[list[str]]) -> Path:
    """Write `rows`, the header row first, as a CSV file in the sample's format."""
    with path.open("w", newline="", encoding="utf-8") as target:
        csv.writer(target, lineterminator="\n").writerows(rows)
    return path


def write_first_part(path: Path) -> Path:
    """Write the sample without its last bars, its new last bar as it looked while forming.

    The forming bar has the real open, a close halfway to the final close,
    high and low that bound both, and half the final tick volume.
    """
    rows = read_sample_rows()
    header, body = rows[0], rows[1:-HELD_BACK_BARS]
    date, clock, open_, high, low, close, volume = body[-1]
    forming_close = round((float(open_) + float(close)) / 2, 5)
    body[-1] = [
        date, clock, open_,
        f"{max(float(open_), forming_close):.5f}", f"{min(float(open_), forming_close):.5f}",
        f"{forming_close:.5f}", str(int(volume) // 2),
    ]
    return write_sample_rows(path, [header, *body])
