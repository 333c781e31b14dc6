"""The self-test's round trip: back up the bundled sample and restore it, in a temporary directory.

It imports the sample with its last day held back and its last bar still
forming, as the quickstart does, and takes a full backup. It then imports
the whole sample with some older bars revised, which adds the held-back
bars and changes the forming bar and the revised ones, and takes an
incremental backup. Both backups are restored into new databases and
compared bit for bit with the bars the cache held when each was taken.
Last, every chunk is decoded and re-hashed as `verify --read-data` does.
"""

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ...catalog.bars import BarColumns
from ...catalog.repository import Repository
from ...catalog.series import Series
from ...errors import VerifyFailed
from ...i18n import _
from ..backup import BackupType, create_backup
from ..cache import BarCache
from ..quickstart import (
    SAMPLE_SYMBOL,
    SAMPLE_TIMEFRAME,
    import_sample,
    read_restored_bars,
    read_sample_rows,
    restore_at,
    verify_all_data,
    write_first_part,
    write_sample_rows,
)
from ..restore import RestoreChoice, restore_backup
from .check import CheckFailed, Outcome, Setup, passed

# Every REVISION_STRIDE-th bar of the sample gets a revised close in the second import.
REVISION_STRIDE = 500
TEMPORARY_PREFIX = "tvcat-test-"


@dataclass(frozen=True)
class RoundTripCounts:
    full_backup_bars: int
    bars_added: int
    bars_changed: int
    latest_backup_bars: int


def check_round_trip(setup: Setup) -> Outcome:
    """Run the round trip in a temporary directory, which is removed afterwards, and report the counts and time.

    Raises VerifyFailed when a restore differs from the imported bars or a
    chunk fails verification, and CheckFailed when a step did not do what
    the round trip needs. The user's setup is not used.
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=TEMPORARY_PREFIX) as directory:
        counts = _run_round_trip(Path(directory))
    seconds = time.monotonic() - started
    return passed(_(
        "full backup of {full} bars, then an incremental backup of {added} new and {changed} changed bars; "
        "the restore at the full backup's time and the restore of the latest backup ({latest} bars) both equal "
        "the imported bars bit for bit; verify --read-data found no fault; {seconds:.1f} s"
    ).format(full=counts.full_backup_bars, added=counts.bars_added, changed=counts.bars_changed,
             latest=counts.latest_backup_bars, seconds=seconds))


def _run_round_trip(directory: Path) -> RoundTripCounts:
    repository = Repository(directory / "repo")
    cache = BarCache(directory / "cache.db")
    series = Series(SAMPLE_SYMBOL, SAMPLE_TIMEFRAME)
    try:
        import_sample(repository, cache, write_first_part(directory / "first-part.csv"))
        full = create_backup(repository, cache, BackupType.FULL)
        full_state = cache.read_bars(series)

        revision = import_sample(repository, cache, _write_revised_sample(directory / "revised.csv"))
        latest = create_backup(repository, cache, BackupType.INCREMENTAL)
        latest_state = cache.read_bars(series)
        if latest.type is not BackupType.INCREMENTAL:
            raise CheckFailed(detail=_("the second backup was taken as {type}, not as incremental").format(
                type=latest.type.value))

        committed_at = repository.backup(full.backup_id).committed_at
        choice = restore_at(repository, committed_at, directory / "restored-at-full.db")
        if choice.backup.backup_id != full.backup_id:
            raise VerifyFailed(detail=_("restore --at {at} chose backup {chosen} instead of {expected}").format(
                at=committed_at, chosen=choice.backup.backup_id, expected=full.backup_id))
        _compare(read_restored_bars(directory / "restored-at-full.db", series), full_state, full.backup_id)

        latest_choice = RestoreChoice(repository.backup(latest.backup_id), _("the latest backup"))
        restore_backup(repository, latest_choice, directory / "restored-latest.db")
        _compare(read_restored_bars(directory / "restored-latest.db", series), latest_state, latest.backup_id)

        verify_all_data(repository)
    finally:
        cache.close()
        repository.close()
    return RoundTripCounts(len(full_state), revision.bars_inserted, revision.bars_updated, len(latest_state))


def _compare(restored: BarColumns, imported: BarColumns, backup_id: str) -> None:
    if not restored.bit_equal(imported):
        raise VerifyFailed(detail=_(
            "the restore of backup {backup_id} differs from the bars imported before it: {restored} bars restored, "
            "{imported} imported"
        ).format(backup_id=backup_id, restored=len(restored), imported=len(imported)))


def _write_revised_sample(path: Path) -> Path:
    """Write the whole sample with the close of every REVISION_STRIDE-th bar set to its open.

    The open lies between the low and the high, so a revised bar stays valid.
    A bar whose close already equals its open stays unchanged.
    """
    rows = read_sample_rows()
    header = rows[0]
    open_column, close_column = header.index("Open"), header.index("Close")
    for row in rows[REVISION_STRIDE::REVISION_STRIDE]:
        row[close_column] = row[open_column]
    return write_sample_rows(path, rows)
