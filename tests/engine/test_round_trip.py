"""Import every real TradingView export, back it up, restore it and compare bit for bit."""

import json
import random
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tvcat.catalog.bars import VALUE_COLUMNS, BarColumns
from tvcat.catalog.repository import Repository
from tvcat.catalog.series import Series, timeframe_seconds, window_span, window_start
from tvcat.engine.backup import BackupType, Scope, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.importing import import_files
from tvcat.engine.restore import RestoreChoice, restore_backup
from tvcat.engine.verify import verify_repository
from tvcat.errors import NothingToBackUp


def count_nulls(path: Path) -> int:
    """Return the number of NULL value cells in the bars of a cache."""
    connection = sqlite3.connect(path)
    try:
        condition = " + ".join(f"({name} IS NULL)" for name in VALUE_COLUMNS)
        return connection.execute(f"SELECT sum({condition}) FROM bars").fetchone()[0]
    finally:
        connection.close()


def test_round_trip_every_real_file(tmp_path, repository, cache, cache_path, tradingview_files, bar_rows):
    import_files(repository, cache, tradingview_files)
    series_list = cache.list_series()
    result = create_backup(repository, cache, BackupType.FULL)
    cache.close()

    target = tmp_path / "restored.db"
    choice = RestoreChoice(repository.find_backup(result.backup_id), "round trip test")
    restored_result = restore_backup(repository, choice, target)

    assert len(series_list) == len(tradingview_files)
    assert restored_result.series_count == len(series_list)
    assert restored_result.bar_count == result.bar_count

    restored = BarCache(target, create=False)
    try:
        assert restored.list_series() == series_list
        for series in series_list:
            assert restored.read_bars(series).bit_equal(cache.read_bars(series)), f"bars of {series} differ"
    finally:
        restored.close()
        cache.close()

    source_rows = bar_rows(cache_path)
    assert len(source_rows) == result.bar_count
    assert bar_rows(target) == source_rows


def test_round_trip_keeps_nulls(tmp_path, repository, cache, cache_path, tradingview_files):
    """The real files contain close-only series and NaN volumes, so NULLs must survive."""
    import_files(repository, cache, tradingview_files)
    result = create_backup(repository, cache, BackupType.FULL)
    cache.close()
    target = tmp_path / "restored.db"
    restore_backup(repository, RestoreChoice(repository.find_backup(result.backup_id), "test"), target)

    source_nulls = count_nulls(cache_path)
    assert source_nulls > 0
    assert count_nulls(target) == source_nulls


def test_restored_cache_tracks_changes(tmp_path, repository, cache, tradingview_files):
    import_files(repository, cache, tradingview_files[:2])
    source_cache_id = cache.cache_id
    result = create_backup(repository, cache, BackupType.FULL)
    cache.close()
    target = tmp_path / "restored.db"
    restore_backup(repository, RestoreChoice(repository.find_backup(result.backup_id), "test"), target)

    connection = sqlite3.connect(target)
    try:
        triggers = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        cache_id = connection.execute("SELECT cache_id FROM cache_meta").fetchone()[0]
        journal_mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        connection.close()

    assert {"bars_track_insert", "bars_track_update", "bars_track_delete"} <= triggers
    assert cache_id != source_cache_id
    assert journal_mode == "wal"


def test_round_trip_through_cli(tmp_path, cli, cache_path, tradingview_files, bar_rows):
    imported = cli("import", *tradingview_files)
    assert imported.returncode == 0, imported.stderr

    backed_up = cli("backup", "--type", "full", "--json")
    assert backed_up.returncode == 0, backed_up.stderr
    backup_id = json.loads(backed_up.stdout)["backup_id"]

    target = tmp_path / "restored.db"
    restored = cli("restore", backup_id, "--target-db", target)
    assert restored.returncode == 0, restored.stderr

    source_rows = bar_rows(cache_path)
    assert len(source_rows) == json.loads(backed_up.stdout)["bar_count"]
    assert bar_rows(target) == source_rows


# Random histories: every committed backup must restore to exactly the cache
# rows (of its scope) at the moment it was taken, whatever chain, patches and
# emptied windows lie behind it.
HISTORY_EXPORTS = ("CME_MINI_ES1!, 1D.csv", "CRYPTO_SOLUSD, 1D.csv", "TVC_SILVER, 1W.csv")

change_steps = st.tuples(
    st.sampled_from(["edit", "blank", "append", "delete", "delete-window"]), st.integers(0, 2**32 - 1),
    st.integers(1, 40),
)
history_backup_steps = st.tuples(st.just("backup"), st.sampled_from(list(BackupType)), st.booleans())
history_strategy = st.lists(st.one_of(change_steps, history_backup_steps), min_size=2, max_size=10)


def change_cache(cache: BarCache, kind: str, seed: int, count: int) -> None:
    """Edit, blank, append or delete bars of one series, through tvcat or through plain SQL."""
    generator = random.Random(seed)
    series = generator.choice(cache.list_series())
    bars = cache.read_bars(series)
    indexes = np.array(sorted({generator.randrange(len(bars)) for _ in range(count)}))
    chosen = bars.take(indexes)

    if kind == "edit":
        factor = 1 + generator.choice([-1, 1]) * generator.choice([1e-9, 0.01, 0.5])
        cache.upsert(series, BarColumns(chosen.ts, chosen.open, chosen.high, chosen.low, chosen.close * factor,
                                        chosen.volume))
    elif kind == "blank":
        blank = np.full(len(chosen), np.nan)
        cache.upsert(series, BarColumns(chosen.ts, blank, chosen.high, chosen.low, chosen.close, blank))
    elif kind == "append":
        step = timeframe_seconds(series.timeframe)
        ts = bars.ts[-1] + step * np.arange(1, count + 1)
        values = [generator.uniform(1, 100) for _ in range(count)]
        cache.upsert(series, BarColumns.from_arrays(ts, values, values, values, values, [np.nan] * count))
    elif kind == "delete":
        cache.connection.executemany(
            "DELETE FROM bars WHERE symbol = ? AND timeframe = ? AND ts = ?",
            [(series.symbol, series.timeframe, int(ts)) for ts in chosen.ts],
        )
    elif kind == "delete-window":
        start = window_start(series.timeframe, int(chosen.ts[0]))
        cache.connection.execute(
            "DELETE FROM bars WHERE symbol = ? AND timeframe = ? AND ts >= ? AND ts < ?",
            (series.symbol, series.timeframe, start, start + window_span(series.timeframe)),
        )


def scoped_rows(rows: list[tuple], scope: Scope) -> list[tuple]:
    """Keep the bar rows (as bar_rows gives them) whose series is in `scope`."""
    return [row for row in rows if scope.contains(Series(row[0][1], row[1][1]))]


@settings(max_examples=10, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=history_strategy)
def test_round_trip_random_history(tradingview_files, bar_rows, steps):
    exports = [path for path in tradingview_files if path.name in HISTORY_EXPORTS]
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        repository = Repository(root / "repo")
        cache = BarCache(root / "cache.db")
        expected: dict[str, list[tuple]] = {}
        try:
            import_files(repository, cache, exports)
            for kind, *arguments in [("backup", BackupType.FULL, False), *steps]:
                if kind != "backup":
                    change_cache(cache, kind, *arguments)
                    continue
                backup_type, scoped = arguments
                scope = Scope.of(["CRYPTO:SOLUSD"], None) if scoped else Scope()
                try:
                    # The history deletes bars on purpose, which the shrink guard would stop.
                    result = create_backup(repository, cache, backup_type, scope, allow_shrink=True)
                except NothingToBackUp:
                    continue
                cache.close()
                expected[result.backup_id] = scoped_rows(bar_rows(cache.path), scope)

            for backup_id, rows in expected.items():
                target = root / f"{backup_id}.db"
                if not rows:
                    continue
                restore_backup(repository, RestoreChoice(repository.find_backup(backup_id), "test"), target)
                assert bar_rows(target) == rows, f"backup {backup_id} restores other bars"
            assert verify_repository(repository, read_data=True).faults == []
        finally:
            cache.close()
            repository.close()
