"""`rebuild_projections` replays the log into the same rows that the live path wrote."""

import random
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tvcat.catalog.bars import BarColumns
from tvcat.catalog.projections import PROJECTION_TABLES, rebuild_projections
from tvcat.catalog.repository import Repository
from tvcat.catalog.series import timeframe_seconds
from tvcat.engine.backup import BackupType, Scope, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.importing import import_files
from tvcat.engine.restore import RestoreChoice, restore_backup
from tvcat.engine.verify import verify_repository
from tvcat.errors import TvcatError

SOURCES = ("CRYPTO_SOLUSD, 1D.csv", "TVC_SILVER, 1W.csv", "BINANCE_BTCUSDT, 1D.csv", "FX_EURUSD, 1D.csv")
EXPECTED_TABLES = {"backups", "backup_series", "backup_chunks", "restores", "verifications"}

import_steps = st.tuples(
    st.just("import"), st.integers(0, len(SOURCES) - 1), st.integers(0, 100), st.integers(0, 100),
)
edit_steps = st.tuples(st.just("edit"), st.integers(0, 2**32 - 1), st.integers(1, 6))
backup_steps = st.tuples(st.just("backup"), st.sampled_from(list(BackupType)), st.booleans())
restore_steps = st.tuples(st.just("restore"), st.integers(0, 1000), st.booleans())
verify_steps = st.tuples(st.just("verify"), st.booleans())
steps_strategy = st.lists(
    st.one_of(import_steps, edit_steps, backup_steps, restore_steps, verify_steps), min_size=3, max_size=12,
)
# Every sequence starts from a cache with bars and one full backup, so that
# even short sequences change projection rows that already exist.
SETUP_STEPS = [("import", 0, 0, 100), ("import", 1, 0, 60), ("backup", BackupType.FULL, False)]


def projection_rows(connection: sqlite3.Connection) -> dict[str, list[tuple]]:
    """Return every row of every projection table, sorted, by table name."""
    tables = sorted(set(PROJECTION_TABLES) | EXPECTED_TABLES)
    return {table: sorted(connection.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in tables}


def import_slice(repository, cache, source: Path, folder: Path, start_percent: int, stop_percent: int) -> None:
    """Import the rows of `source` between two percentages of its length, as a file of the same name."""
    lines = source.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    low, high = sorted((start_percent, stop_percent))
    chosen = rows[len(rows) * low // 100: max(len(rows) * high // 100, len(rows) * low // 100 + 1)]
    folder.mkdir(parents=True)
    export = folder / source.name
    export.write_text("\n".join([header, *chosen]) + "\n", encoding="utf-8")
    import_files(repository, cache, [export])


def edit_bars(cache: BarCache, seed: int, count: int) -> None:
    """Change, blank or append a few bars of one series of the cache."""
    series_list = cache.list_series()
    if not series_list:
        return
    generator = random.Random(seed)
    series = generator.choice(series_list)
    bars = cache.read_bars(series)
    indexes = sorted({generator.randrange(len(bars)) for _ in range(count)})
    edited = bars.take(np.array(indexes))
    close = edited.close * (1 + generator.choice([-1, 1]) * 0.01)
    volume = np.where(np.arange(len(edited)) % 2 == 0, np.nan, edited.volume)
    edited = BarColumns(edited.ts, edited.open, edited.high, edited.low, close, volume)
    if generator.random() < 0.5:
        next_ts = bars.ts[-1:] + timeframe_seconds(series.timeframe)
        appended = BarColumns.from_arrays(next_ts, [1.0], [2.0], [0.5], [1.5], [np.nan])
        cache.upsert(series, appended)
    cache.upsert(series, edited)


def run_step(step: tuple, repository: Repository, cache: BarCache, root: Path, sources: list[Path], index: int):
    kind = step[0]
    if kind == "import":
        _, source, start, stop = step
        import_slice(repository, cache, sources[source], root / f"import-{index}", start, stop)
    elif kind == "edit":
        _, seed, count = step
        edit_bars(cache, seed, count)
    elif kind == "backup":
        _, backup_type, scoped = step
        series_list = cache.list_series()
        scope = Scope.of([series_list[0].symbol], None) if scoped and series_list else Scope()
        try:
            create_backup(repository, cache, backup_type, scope)
        except TvcatError:
            pass  # An empty scope has nothing to back up, and the failure is an event too.
    elif kind == "restore":
        _, pick, scoped = step
        backups = repository.backups()
        if not backups:
            return
        chosen = backups[pick % len(backups)]
        # A scope naming an absent symbol makes the restore fail, which is an event too.
        scope = Scope.of(["NONE:ABSENT"], None) if scoped else Scope()
        try:
            restore_backup(repository, RestoreChoice(chosen, "property test"), root / "side.db", scope)
        except TvcatError:
            pass
    elif kind == "verify":
        verify_repository(repository, read_data=step[1])


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps_strategy)
def test_rebuild_matches_live_projections(tradingview_files, steps):
    sources = [path for path in tradingview_files if path.name in SOURCES]
    sources.sort(key=lambda path: SOURCES.index(path.name))
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        repository = Repository(root / "repo")
        cache = BarCache(root / "cache.db")
        try:
            for index, step in enumerate(SETUP_STEPS + steps):
                run_step(step, repository, cache, root, sources, index)
            cache.close()

            live = projection_rows(repository.connection)
            rebuild_projections(repository.connection, repository.store)
            rebuilt = projection_rows(repository.connection)
        finally:
            cache.close()
            repository.close()

    for table in live:
        assert rebuilt[table] == live[table], f"table {table} differs after rebuild"


def test_rebuild_covers_every_projection():
    assert EXPECTED_TABLES <= set(PROJECTION_TABLES)


def test_rebuild_cli_keeps_rows(cli, repository, cache, tradingview_files):
    import_files(repository, cache, tradingview_files[:3])
    create_backup(repository, cache, BackupType.FULL)
    cache.upsert(*first_bar_changed(cache))
    create_backup(repository, cache, BackupType.INCREMENTAL)
    cache.close()
    verify_repository(repository, read_data=True)
    live = projection_rows(repository.connection)

    result = cli("catalog", "rebuild")

    assert result.returncode == 0, result.stderr
    assert projection_rows(repository.connection) == live
    last_kind = repository.connection.execute("SELECT kind FROM events ORDER BY seq DESC LIMIT 1").fetchone()[0]
    assert last_kind == "catalog.rebuilt"


def first_bar_changed(cache: BarCache):
    series = cache.list_series()[0]
    bar = cache.read_bars(series).slice(0, 1)
    return series, BarColumns(bar.ts, bar.open, bar.high, bar.low, bar.close + 1.0, bar.volume)
