"""Prune on random real histories: every kept backup still restores bit for bit, and no object it needs is gone."""

import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tvcat.catalog.bars import BarColumns
from tvcat.catalog.repository import Repository
from tvcat.catalog.series import Series
from tvcat.engine.backup import BackupType, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.importers import read_bar_file
from tvcat.engine.restore import RestoreChoice, restore_backup
from tvcat.engine.retention.gc import live_object_ids
from tvcat.engine.retention.policy import Policy
from tvcat.engine.retention.prune import prune

SAMPLE = Path(__file__).resolve().parents[2] / "engine" / "sample_data" / "EURUSD60.csv"
SERIES = Series("FX:EURUSD", "60")
BARS = read_bar_file(SAMPLE, symbol=SERIES.symbol, timeframe=SERIES.timeframe, tz="UTC").bars

steps = st.lists(
    st.tuples(st.sampled_from(list(BackupType)), st.integers(1, 400), st.booleans()), min_size=2, max_size=5,
)
policies = st.builds(
    Policy, keep_last=st.integers(0, 3), keep_daily=st.integers(0, 1),
    max_backup_files=st.one_of(st.none(), st.integers(1, 3)),
)


def revised(bars: BarColumns, index: int) -> BarColumns:
    close = bars.close.copy()
    close[index] += 0.0001
    high = bars.high.copy()
    high[index] = max(high[index], close[index])
    return BarColumns(bars.ts, bars.open, high, bars.low, close, bars.volume)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps, policy=policies)
def test_kept_backups_restore_after_prune(tmp_path_factory, history, policy):
    work = tmp_path_factory.mktemp("history")
    repository = Repository(work / "repo")
    expected: dict[str, BarColumns] = {}
    stop = 500
    current = BARS.slice(0, stop)
    try:
        for backup_type, grow, revise in history:
            stop = min(stop + grow, len(BARS))
            current = BARS.slice(0, stop) if not revise else revised(BARS.slice(0, stop), stop // 2)
            cache = BarCache(work / "cache.db")
            cache.upsert(SERIES, current)
            result = create_backup(repository, cache, backup_type)
            expected[result.backup_id] = current

        pruned = prune(repository, policy, grace_seconds=0)
        kept = [decision.backup_id for decision in pruned.decisions if decision.keep]

        present = set(repository.store.list_ids())
        assert live_object_ids(repository) <= present
        for backup_id in kept:
            target = work / f"restored-{backup_id}.db"
            restore_backup(repository, RestoreChoice(repository.backup(backup_id), "test"), target)
            restored = BarCache(target)
            try:
                assert restored.read_bars(SERIES).bit_equal(expected[backup_id]), backup_id
            finally:
                restored.close()
    finally:
        repository.close()
        shutil.rmtree(work, ignore_errors=True)
