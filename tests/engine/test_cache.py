"""Bar cache behaviour that the backup relies on."""

import sqlite3

import numpy as np

from tvcat.catalog.bars import BarColumns
from tvcat.catalog.series import Series, window_span
from tvcat.engine.backup import BackupType, create_backup
from tvcat.engine.cache import BarCache

SERIES = Series("BINANCE:BTCUSDT", "1")


def _bars(count: int, start: int = 1_700_000_040) -> BarColumns:
    ts = start + 60 * np.arange(count)
    close = np.round(100 + np.cumsum(np.full(count, 0.01)), 2)
    return BarColumns.from_arrays(ts, close, close + 1, close - 1, close, np.ones(count))


def test_stale_window_spans_repaired(cache_path):
    cache = BarCache(cache_path)
    cache.upsert(SERIES, _bars(10))
    old_id = cache.cache_id
    cache.close()
    connection = sqlite3.connect(cache_path)
    connection.execute("UPDATE window_spans SET span = 122880 WHERE timeframe = '1'")
    connection.commit()
    connection.close()

    reopened = BarCache(cache_path)
    span = reopened.connection.execute("SELECT span FROM window_spans WHERE timeframe = '1'").fetchone()[0]
    assert span == window_span("1")
    assert reopened.cache_id != old_id
    reopened.close()


def test_incremental_after_span_repair(repository, cache_path):
    cache = BarCache(cache_path)
    cache.upsert(SERIES, _bars(20_000))
    create_backup(repository, cache, BackupType.FULL)
    cache.close()
    connection = sqlite3.connect(cache_path)
    connection.execute("UPDATE window_spans SET span = 122880 WHERE timeframe = '1'")
    connection.execute("UPDATE bars SET close = close + 1 WHERE ts = (SELECT max(ts) FROM bars)")
    connection.commit()
    connection.close()

    cache = BarCache(cache_path)
    result = create_backup(repository, cache, BackupType.INCREMENTAL)
    state = repository.resolve_state(repository.find_backup(result.backup_id))
    restored_last = max(entry.last_ts for entry in state[SERIES].values())
    assert result.windows_written == 1
    assert restored_last == int(cache.read_bars(SERIES).ts[-1])
    cache.close()
