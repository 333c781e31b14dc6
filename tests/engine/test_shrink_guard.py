"""The backup guard against a cache that lost data since the backups before it."""

import pytest

from tvcat.engine.backup import BackupType, Scope, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.importing import import_files
from tvcat.engine.restore import RestoreChoice, restore_backup
from tvcat.engine.shrink_guard import CacheShrank


@pytest.fixture
def two_series(repository, cache_path, tradingview_files):
    silver = next(path for path in tradingview_files if path.name == "TVC_SILVER, 1W.csv")
    gold = next(path for path in tradingview_files if path.name == "COMEX_GOLD, 1D.csv")
    cache = BarCache(cache_path)
    import_files(repository, cache, [silver, gold])
    backup = create_backup(repository, cache, BackupType.FULL)
    return cache, backup


def test_missing_series_stops_backup(repository, two_series):
    cache, backup = two_series
    cache.connection.execute("DELETE FROM bars WHERE symbol = 'COMEX:GOLD'")
    events_before = repository.connection.execute("SELECT count(*) FROM events").fetchone()[0]

    with pytest.raises(CacheShrank) as raised:
        create_backup(repository, cache, BackupType.INCREMENTAL)

    assert "COMEX:GOLD 1D is missing" in str(raised.value)
    assert backup.backup_id in str(raised.value)
    assert repository.connection.execute("SELECT count(*) FROM events").fetchone()[0] == events_before


def test_lost_newest_bars_stop_backup(repository, two_series):
    cache, _ = two_series
    cache.connection.execute(
        "DELETE FROM bars WHERE symbol = 'TVC:SILVER' AND ts > (SELECT max(ts) - 86400 * 30 FROM bars "
        "WHERE symbol = 'TVC:SILVER')")

    with pytest.raises(CacheShrank, match="TVC:SILVER 1W now ends at"):
        create_backup(repository, cache, BackupType.SNAPSHOT)


def test_allow_shrink_then_later_backups_pass(repository, two_series):
    cache, _ = two_series
    cache.connection.execute("DELETE FROM bars WHERE symbol = 'COMEX:GOLD'")

    create_backup(repository, cache, BackupType.INCREMENTAL, allow_shrink=True)
    create_backup(repository, cache, BackupType.INCREMENTAL)


def test_narrow_scope_checks_only_its_series(repository, two_series):
    cache, _ = two_series
    cache.connection.execute("DELETE FROM bars WHERE symbol = 'COMEX:GOLD'")

    create_backup(repository, cache, BackupType.FULL, Scope.of(["TVC:SILVER"], None))


def test_restore_into_cache_is_intended(repository, cache_path, tradingview_files):
    silver = next(path for path in tradingview_files if path.name == "TVC_SILVER, 1W.csv")
    gold = next(path for path in tradingview_files if path.name == "COMEX_GOLD, 1D.csv")
    cache = BarCache(cache_path)
    import_files(repository, cache, [silver])
    first = create_backup(repository, cache, BackupType.FULL)
    import_files(repository, cache, [gold])
    create_backup(repository, cache, BackupType.INCREMENTAL)
    cache.close()

    restore_backup(repository, RestoreChoice(repository.backup(first.backup_id), "test"), cache_path)
    cache = BarCache(cache_path)
    result = create_backup(repository, cache, BackupType.INCREMENTAL)
    cache.close()

    assert result.series_count == 1
