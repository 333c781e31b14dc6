"""DataBackupManager: create, describe and restore backups, and the errors of each."""

import sqlite3
from pathlib import Path

import anyio
import pytest

from tvcat.api import BackupType, DataBackupManager
from tvcat.errors import (
    BackupNotFound,
    CacheNotFound,
    ConfirmationRequired,
    InvalidOption,
    InvalidSymbol,
    InvalidTimeframe,
    NothingToBackUp,
    RepositoryNotFound,
)

pytestmark = pytest.mark.anyio


def change_bars(cache_path: Path, symbol: str) -> None:
    """Change the close of every bar of `symbol` in the cache, as a damaged or wrong import would."""
    connection = sqlite3.connect(cache_path)
    try:
        connection.execute("UPDATE bars SET close = close + 1 WHERE symbol = ?", (symbol,))
        connection.commit()
    finally:
        connection.close()


async def test_create_backup_info(config_dict, filled_cache, export_bars):
    manager = DataBackupManager(config_dict)

    backup_id = await manager.create_backup(BackupType.FULL, symbols=["BINANCE:BTCUSDT"], timeframes=["60"])
    info = manager.get_backup_info(backup_id)

    assert info["backup_id"] == backup_id
    assert info["backup_type"] == "full"
    assert info["status"] == "committed"
    assert info["symbols"] == ["BINANCE:BTCUSDT"]
    assert info["timeframes"] == ["60"]
    assert info["bar_count"] == export_bars[("BINANCE:BTCUSDT", "60")]
    assert info["size_bytes"] > 0
    assert info["created_at"] <= info["committed_at"]
    assert manager.get_backup_info(info["guide_id"])["backup_id"] == backup_id
    assert manager.get_backup_info(backup_id[:22])["backup_id"] == backup_id


async def test_listing_totals(config_dict, filled_cache):
    manager = DataBackupManager(config_dict)
    first = await manager.create_backup("full")
    change_bars(filled_cache, "CRYPTO:SOLUSD")
    second = await manager.create_backup("INCREMENTAL")

    listing = manager.get_backup_info()

    records = listing["backup_records"]
    assert [(record["backup_id"], record["backup_type"]) for record in records] == [
        (first, "full"), (second, "incremental")]
    assert records[1]["parent_id"] == first
    assert listing["total_backups"] == 2
    assert listing["total_size_bytes"] == records[0]["size_bytes"] + records[1]["size_bytes"]


async def test_listing_without_repository(config_dict):
    listing = DataBackupManager(config_dict).get_backup_info()

    assert listing == {"backup_records": [], "total_backups": 0, "total_size_bytes": 0}
    assert not Path(config_dict["backup_config"]["backup_dir"]).exists()


async def test_restore_replaces_backup_series(config_dict, filled_cache, bar_rows):
    manager = DataBackupManager(config_dict)
    backup_id = await manager.create_backup(BackupType.FULL, symbols=["BINANCE:BTCUSDT"])
    bars_at_backup = bar_rows(filled_cache)
    change_bars(filled_cache, "BINANCE:BTCUSDT")
    assert bar_rows(filled_cache) != bars_at_backup

    assert await manager.restore_backup(backup_id) is True

    # BTCUSDT is back as it was; SOLUSD, outside the backup, was kept.
    assert bar_rows(filled_cache) == bars_at_backup


async def test_restore_to_new_database(config_dict, filled_cache, bar_rows, tmp_path):
    manager = DataBackupManager(config_dict)
    backup_id = await manager.create_backup(BackupType.SNAPSHOT)
    target = tmp_path / "restored" / "copy.db"

    assert await manager.restore_backup(backup_id, target_db=target, force=False) is True

    assert bar_rows(target) == bar_rows(filled_cache)


async def test_restore_limited_by_symbols(config_dict, filled_cache, bar_rows):
    manager = DataBackupManager(config_dict)
    backup_id = await manager.create_backup(BackupType.FULL)
    bars_at_backup = bar_rows(filled_cache)
    change_bars(filled_cache, "BINANCE:BTCUSDT")
    change_bars(filled_cache, "CRYPTO:SOLUSD")
    changed = bar_rows(filled_cache)

    await manager.restore_backup(backup_id, symbols=["CRYPTO:SOLUSD"])

    restored = bar_rows(filled_cache)
    assert [row for row in restored if row[0][1] == "CRYPTO:SOLUSD"] == [
        row for row in bars_at_backup if row[0][1] == "CRYPTO:SOLUSD"]
    assert [row for row in restored if row[0][1] == "BINANCE:BTCUSDT"] == [
        row for row in changed if row[0][1] == "BINANCE:BTCUSDT"]


async def test_restore_without_force_rejected(config_dict, filled_cache, bar_rows):
    manager = DataBackupManager(config_dict)
    backup_id = await manager.create_backup(BackupType.FULL)
    change_bars(filled_cache, "CRYPTO:SOLUSD")
    changed = bar_rows(filled_cache)

    with pytest.raises(ConfirmationRequired) as raised:
        await manager.restore_backup(backup_id, force=False)

    assert "force=True" in str(raised.value)
    assert raised.value.exit_code == 7
    assert bar_rows(filled_cache) == changed


async def test_unknown_backup_id(config_dict, filled_cache):
    manager = DataBackupManager(config_dict)
    await manager.create_backup(BackupType.FULL)

    with pytest.raises(BackupNotFound) as info_error:
        manager.get_backup_info("20990101T000000")
    with pytest.raises(BackupNotFound) as restore_error:
        await manager.restore_backup("20990101T000000")

    assert info_error.value.exit_code == 4
    assert "20990101T000000" in str(restore_error.value)


async def test_missing_repository(config_dict):
    manager = DataBackupManager(config_dict)

    with pytest.raises(RepositoryNotFound):
        manager.get_backup_info("20990101T000000")
    with pytest.raises(RepositoryNotFound):
        await manager.restore_backup("20990101T000000")


@pytest.mark.parametrize("arguments,error", [
    (("weekly",), InvalidOption),
    ((BackupType.FULL, ["BTCUSDT"]), InvalidSymbol),
    ((BackupType.FULL, ["BINANCE:BTCUSDT"], ["15x"]), InvalidTimeframe),
    ((BackupType.FULL, ["BINANCE:ETHUSDT"]), NothingToBackUp),
], ids=["type", "symbol", "timeframe", "no-bars"])
async def test_invalid_backup_rejected(config_dict, filled_cache, arguments, error):
    manager = DataBackupManager(config_dict)

    with pytest.raises(error):
        await manager.create_backup(*arguments)

    assert manager.get_backup_info()["total_backups"] == 0


async def test_backup_without_cache(config_dict):
    with pytest.raises(CacheNotFound):
        await DataBackupManager(config_dict).create_backup(BackupType.FULL)


async def test_dry_run_rejected(config_dict, filled_cache):
    config_dict["debug_config"] = {"dry_run": True}
    manager = DataBackupManager(config_dict)

    with pytest.raises(InvalidOption) as raised:
        await manager.create_backup(BackupType.FULL)

    assert "dry_run" in str(raised.value)
    assert manager.get_backup_info()["total_backups"] == 0


async def test_cache_inside_repository_rejected(config_dict, filled_cache):
    config_dict["sync_config"]["cache_path"] = str(Path(config_dict["backup_config"]["backup_dir"]) / "cache.db")

    with pytest.raises(InvalidOption) as raised:
        await DataBackupManager(config_dict).create_backup(BackupType.FULL)

    assert "inside the repository" in str(raised.value)


async def test_backup_leaves_event_loop_free(config_dict, filled_cache):
    # The backup runs on a worker thread, so another task keeps getting turns while it runs.
    manager = DataBackupManager(config_dict)
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await anyio.sleep(0)

    async with anyio.create_task_group() as group:
        group.start_soon(count_turns)
        await manager.create_backup(BackupType.FULL)
        group.cancel_scope.cancel()

    assert turns > 10
