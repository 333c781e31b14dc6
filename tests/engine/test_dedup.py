"""Deduplication and change tracking: unchanged bars cost no chunk, and one changed bar costs one."""

import sqlite3
from pathlib import Path

import pytest

from tvcat.catalog.bars import BarColumns
from tvcat.catalog.repository import Repository
from tvcat.catalog.series import Series, window_start
from tvcat.engine.backup import BackupType, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.importing import import_files
from tvcat.engine.restore import RestoreChoice, restore_backup

EXPORTS = ("CME_MINI_ES1!, 1min.csv", "CME_MINI_ES1!, 1D.csv", "CRYPTO_SOLUSD, 1D.csv")
MINUTE_SERIES = Series("CME_MINI:ES1!", "1")


@pytest.fixture
def exports(data_dir: Path) -> list[Path]:
    return [data_dir / "tradingview" / name for name in EXPORTS]


def window_changes(cache: BarCache) -> set[tuple]:
    return set(cache.connection.execute("SELECT symbol, timeframe, window_start, change_seq FROM window_changes"))


def chunk_rows(repository: Repository, backup_id: str) -> list[tuple]:
    """Return (symbol, timeframe, window start, chunk id) for every chunk of a backup's own manifest."""
    return repository.connection.execute(
        "SELECT symbol, timeframe, window_start, chunk_id FROM backup_chunks WHERE backup_id = ? "
        "ORDER BY symbol, timeframe, window_start, position",
        (backup_id,),
    ).fetchall()


def written_windows(repository: Repository, backup_id: str) -> set[tuple]:
    return {row[:3] for row in chunk_rows(repository, backup_id)}


def new_chunk_ids(repository: Repository, backup_id: str, earlier_id: str) -> set[str]:
    """Return the chunk ids a backup's manifest names that the earlier backup's does not."""
    earlier = {row[3] for row in chunk_rows(repository, earlier_id)}
    return {row[3] for row in chunk_rows(repository, backup_id)} - earlier


def change_one_close(cache: BarCache, series: Series, index: int) -> int:
    """Add 0.25 to the close of the bar at `index` of `series` and return that bar's time."""
    bars = cache.read_bars(series).slice(index, index + 1)
    changed = BarColumns(bars.ts, bars.open, bars.high, bars.low, bars.close + 0.25, bars.volume)
    result = cache.upsert(series, changed)
    assert result.updated == 1
    return int(bars.ts[0])


def test_full_backup_unchanged_writes_no_chunks(repository, cache, exports):
    import_files(repository, cache, exports)
    first = create_backup(repository, cache, BackupType.FULL)
    second = create_backup(repository, cache, BackupType.FULL)

    assert first.chunks_written == first.windows_written
    assert second.chunks_written == 0
    assert second.windows_written == first.windows_written
    # Only the manifest is new: it names the second backup.
    assert second.bytes_written == repository.store.size(second.manifest_id)
    assert chunk_rows(repository, second.backup_id) == chunk_rows(repository, first.backup_id)


def test_full_backup_other_cache_reuses_chunks(tmp_path, repository, cache, exports):
    """Chunk ids depend only on the bars, so a second cache with the same bars adds no chunk."""
    import_files(repository, cache, exports)
    first = create_backup(repository, cache, BackupType.FULL)

    other = BarCache(tmp_path / "other-cache.db")
    try:
        import_files(repository, other, exports)
        second = create_backup(repository, other, BackupType.FULL)
    finally:
        other.close()

    assert second.chunks_written == 0
    assert chunk_rows(repository, second.backup_id) == chunk_rows(repository, first.backup_id)


def test_incremental_one_bar_one_chunk(repository, cache, exports):
    import_files(repository, cache, exports)
    full = create_backup(repository, cache, BackupType.FULL)
    changed_ts = change_one_close(cache, MINUTE_SERIES, 5000)

    incremental = create_backup(repository, cache, BackupType.INCREMENTAL)

    assert incremental.type is BackupType.INCREMENTAL
    assert incremental.parent_id == full.backup_id
    assert incremental.windows_written == 1
    assert incremental.chunks_written == 1
    assert written_windows(repository, incremental.backup_id) == {
        ("CME_MINI:ES1!", "1", window_start("1", changed_ts))
    }
    assert len(new_chunk_ids(repository, incremental.backup_id, full.backup_id)) == 1


def test_unchanged_reimport_tracks_nothing(repository, cache, exports):
    import_files(repository, cache, exports)
    full = create_backup(repository, cache, BackupType.FULL)
    covered_seq = repository.backup(full.backup_id).change_seq
    changes_before = window_changes(cache)

    reports = import_files(repository, cache, exports)

    assert [report.bars_unchanged for report in reports] == [report.rows_read for report in reports]
    assert [report.bars_updated for report in reports] == [0] * len(reports)
    assert window_changes(cache) == changes_before
    assert max(change_seq for *_, change_seq in changes_before) <= covered_seq

    incremental = create_backup(repository, cache, BackupType.INCREMENTAL)

    assert incremental.windows_read == 0
    assert incremental.windows_written == 0
    assert incremental.chunks_written == 0


def test_reimport_negative_zero_tracks_nothing(tmp_path, repository, cache):
    """Re-importing an unchanged file with a -0.0 volume is no change.

    SQLite stores a REAL -0.0 as the integer 0 and reads it back as +0.0, so
    the stored bar can never equal the file's -0.0 bit for bit.
    """
    export = tmp_path / "TEST_ZERO, 1D.csv"
    export.write_text(
        "time,open,high,low,close,Volume\n"
        "1700006400,1.5,2,1,1.25,-0.0\n"
        "1700092800,1.25,1.5,1,1.5,7\n",
        encoding="utf-8",
    )
    import_files(repository, cache, [export])
    create_backup(repository, cache, BackupType.FULL)
    changes_before = window_changes(cache)

    reports = import_files(repository, cache, [export])

    assert reports[0].bars_updated == 0
    assert window_changes(cache) == changes_before


def test_incremental_after_reimport_same_state(tmp_path, repository, cache, exports, bar_rows, cache_path):
    """An incremental that wrote nothing still restores the whole state through its chain."""
    import_files(repository, cache, exports)
    create_backup(repository, cache, BackupType.FULL)
    import_files(repository, cache, exports)
    incremental = create_backup(repository, cache, BackupType.INCREMENTAL)
    cache.close()

    target = tmp_path / "restored.db"
    restore_backup(repository, RestoreChoice(repository.find_backup(incremental.backup_id), "test"), target)

    assert bar_rows(target) == bar_rows(cache_path)


def test_change_tracking_records_edit_window(repository, cache, exports):
    """A change made with plain sqlite3, behind tvcat's back, is tracked and backed up too."""
    import_files(repository, cache, exports)
    full = create_backup(repository, cache, BackupType.FULL)
    series = Series("CRYPTO:SOLUSD", "1D")
    ts = int(cache.read_bars(series).ts[100])
    cache.close()

    connection = sqlite3.connect(cache.path)
    try:
        connection.execute(
            "UPDATE bars SET close = close * 2 WHERE symbol = ? AND timeframe = ? AND ts = ?",
            (series.symbol, series.timeframe, ts),
        )
        connection.commit()
    finally:
        connection.close()

    incremental = create_backup(repository, cache, BackupType.INCREMENTAL)

    assert incremental.parent_id == full.backup_id
    assert incremental.windows_written == 1
    assert incremental.chunks_written == 1
    assert written_windows(repository, incremental.backup_id) == {
        (series.symbol, series.timeframe, window_start(series.timeframe, ts))
    }
