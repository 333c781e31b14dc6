"""The quickstart: a full round trip on the bundled sample, in a directory of its own.

It imports the sample with its last day held back and its last bar still
forming, and takes a full backup. It then imports the whole sample (a day
of new bars and the final values of the forming bar) and takes an
incremental backup. Last, it restores the state at the time of the first
backup into a new database and checks that it equals the first state bit
for bit.
"""

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..catalog.repository import Repository
from ..catalog.series import Series
from ..errors import InvalidOption, VerifyFailed
from ..i18n import _
from .backup import BackupType, create_backup
from .cache import BarCache
from .importing import import_files
from .restore import choose_backup_at, parse_point_in_time, restore_backup
from .verify import verify_repository

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
        first_part = _write_first_part(directory / "EURUSD60-first-part.csv")
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
        point = parse_point_in_time(committed_at)
        choice = choose_backup_at(repository, point, _scope_all())
        restored_path = directory / "restored-at-first-backup.db"
        restore_backup(repository, choice, restored_path, requested_at=committed_at)
        say(_("5. restore --at {at}: chose {backup_id}, wrote {path}").format(
            at=committed_at, backup_id=choice.backup.backup_id, path=restored_path))

        restored = BarCache(restored_path)
        try:
            restored_state = restored.read_bars(series)
        finally:
            restored.close()
        if not restored_state.bit_equal(first_state):
            raise VerifyFailed(detail=_("the restored state differs from the state at the first backup"))
        say(_("6. compared: all {count} restored bars equal the first state bit for bit").format(
            count=len(restored_state)))

        report = verify_repository(repository, read_data=True)
        if not report.ok:
            raise VerifyFailed(detail=_("verify found faults in {backups}").format(
                backups=", ".join(report.broken_backups)))
        say(_("7. verify --read-data: {count} backups sound").format(count=report.backups_checked))
        return QuickstartResult(directory, first.backup_id, second.backup_id, restored_path, len(restored_state))
    finally:
        cache.close()
        repository.close()


def _scope_all():
    from .backup import Scope

    return Scope()


def _import(repository: Repository, cache: BarCache, path: Path, say: Callable[[str], None]) -> None:
    for report in import_files(repository, cache, [path], symbol=SAMPLE_SYMBOL, timeframe=SAMPLE_TIMEFRAME,
                               tz=SAMPLE_ZONE):
        say(_("   {rows} rows read: {new} new, {changed} changed, {unchanged} unchanged").format(
            rows=report.rows_read, new=report.bars_inserted, changed=report.bars_updated,
            unchanged=report.bars_unchanged))


def _write_first_part(path: Path) -> Path:
    """Write the sample without its last bars, its new last bar as it looked while forming.

    The forming bar has the real open, a close halfway to the final close,
    high and low that bound both, and half the final tick volume.
    """
    with SAMPLE_FILE.open(newline="", encoding="utf-8") as source:
        rows = list(csv.reader(source))
    header, body = rows[0], rows[1:-HELD_BACK_BARS]
    date, clock, open_, high, low, close, volume = body[-1]
    forming_close = round((float(open_) + float(close)) / 2, 5)
    body[-1] = [
        date, clock, open_,
        f"{max(float(open_), forming_close):.5f}", f"{min(float(open_), forming_close):.5f}",
        f"{forming_close:.5f}", str(int(volume) // 2),
    ]
    with path.open("w", newline="", encoding="utf-8") as target:
        csv.writer(target, lineterminator="\n").writerows([header, *body])
    return path
