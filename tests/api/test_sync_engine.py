"""DataSyncEngine and SyncTask: tasks in the background, their states, the event log and the errors."""

from datetime import datetime
from pathlib import Path

import anyio
import pytest

from tvcat.api import DataSyncEngine, EngineNotRunning, SyncTask, resolve_settings
from tvcat.engine.sync.tasks import NoRemoteConfigured
from tvcat.errors import InvalidOption, InvalidSymbol, InvalidTimeframe, InvalidTimestamp

pytestmark = pytest.mark.anyio


async def wait_until_idle(engine: DataSyncEngine) -> dict:
    """Poll until no task of the engine is queued or running; return the status."""
    with anyio.fail_after(30):
        while (status := engine.get_sync_status())["active_tasks"]:
            await anyio.sleep(0.02)
    return status


def task_states(repository_path: Path, query_catalog) -> dict[str, str]:
    """Return `status:error kind` of every task in the catalog, the kind from its sync.failed event."""
    return dict(query_catalog(repository_path, (
        "SELECT t.task_id, t.status || ':' || coalesce((SELECT json_extract(e.payload, '$.error_kind') FROM events e "
        "WHERE e.kind = 'sync.failed' AND e.subject = t.task_id), '') FROM sync_tasks t")))


def queued_events(repository_path: Path, query_catalog) -> list[tuple]:
    if not (repository_path / "catalog.db").exists():
        return []
    return query_catalog(repository_path, "SELECT subject FROM events WHERE kind = 'sync.queued'")


async def test_task_completes_in_background(config_dict, export_bars, query_catalog, bar_rows):
    task = SyncTask(task_id="", source_type="primary", target_type="cache", symbols=["BINANCE:BTCUSDT"],
                    timeframes=["60"], priority=1)

    async with DataSyncEngine(config_dict) as engine:
        task_id = await engine.add_sync_task(task)
        status = await wait_until_idle(engine)

    assert task.task_id == task_id
    assert status["completed_tasks"] == 1
    assert status["failed_tasks"] == 0
    assert status["statistics"]["bars_inserted"] == export_bars[("BINANCE:BTCUSDT", "60")]
    assert engine.get_task_status(task_id)["status"] == "completed"
    repository_path = Path(config_dict["backup_config"]["backup_dir"])
    assert query_catalog(repository_path, "SELECT status, priority FROM sync_tasks WHERE task_id = ?",
                         (task_id,)) == [("completed", 1)]
    runners = query_catalog(repository_path, "SELECT json_extract(payload, '$.runner') FROM events "
                            "WHERE kind = 'sync.started' AND subject = ?", (task_id,))
    assert runners == [("api",)]
    assert len(bar_rows(Path(config_dict["sync_config"]["cache_path"]))) == export_bars[("BINANCE:BTCUSDT", "60")]


async def test_every_series_without_selection(config_dict, export_bars):
    async with DataSyncEngine(config_dict) as engine:
        await engine.add_sync_task(SyncTask())
        status = await wait_until_idle(engine)

    assert status["completed_tasks"] == 1
    assert status["statistics"]["bars_inserted"] == sum(export_bars.values())


async def test_missing_series_fails_task(config_dict, query_catalog):
    async with DataSyncEngine(config_dict) as engine:
        task_id = await engine.add_sync_task(SyncTask(symbols=["BINANCE:ETHUSDT"], timeframes=["60"]))
        status = await wait_until_idle(engine)

    assert status["failed_tasks"] == 1
    assert status["statistics"]["last_error_task_id"] == task_id
    assert "BINANCE:ETHUSDT" in status["statistics"]["last_error"]
    assert status["tasks"][0]["error"] == status["statistics"]["last_error"]
    repository_path = Path(config_dict["backup_config"]["backup_dir"])
    assert task_states(repository_path, query_catalog) == {task_id: "failed:SymbolNotFound"}


async def test_cache_to_backup_task(config_dict, filled_cache, query_catalog):
    async with DataSyncEngine(config_dict) as engine:
        task_id = await engine.add_sync_task(SyncTask(source_type="cache", target_type="backup", backup_type="full"))
        status = await wait_until_idle(engine)

    backup_id = engine.get_task_status(task_id)["backup_id"]
    assert status["completed_tasks"] == 1
    assert query_catalog(Path(config_dict["backup_config"]["backup_dir"]),
                         "SELECT type, status FROM backups WHERE backup_id = ?", (backup_id,)) == [("full", "committed")]


async def test_add_before_start_rejected(config_dict):
    engine = DataSyncEngine(config_dict)

    with pytest.raises(EngineNotRunning):
        await engine.add_sync_task(SyncTask())


@pytest.mark.parametrize("task,error", [
    (SyncTask(symbols=["BTCUSDT"]), InvalidSymbol),
    (SyncTask(symbols="BINANCE:BTCUSDT,ETH"), InvalidSymbol),
    (SyncTask(timeframes=["15x"]), InvalidTimeframe),
    (SyncTask(priority=0), InvalidOption),
    (SyncTask(backup_type="weekly"), InvalidOption),
    (SyncTask(since="yesterday"), InvalidTimestamp),
    (SyncTask(source_type="ftp:somewhere"), InvalidOption),
    (SyncTask(source_type="cache", target_type="primary"), InvalidOption),
    (SyncTask(source_type="cache", target_type="remote"), NoRemoteConfigured),
], ids=["symbol", "symbol-in-list", "timeframe", "priority", "backup-type", "since", "source", "direction",
        "remote"])
async def test_invalid_task_not_queued(config_dict, query_catalog, task, error):
    async with DataSyncEngine(config_dict) as engine:
        with pytest.raises(error):
            await engine.add_sync_task(task)

    assert engine.get_sync_status()["statistics"]["total_tasks"] == 0
    assert task.task_id == ""
    assert queued_events(Path(config_dict["backup_config"]["backup_dir"]), query_catalog) == []


async def test_reused_task_id_rejected(config_dict):
    async with DataSyncEngine(config_dict) as engine:
        await engine.add_sync_task(SyncTask(task_id="nightly-1", symbols=["BINANCE:BTCUSDT"], timeframes=["60"]))
        with pytest.raises(InvalidOption):
            await engine.add_sync_task(SyncTask(task_id="nightly-1"))
        await wait_until_idle(engine)

    # A second engine on the same repository finds the id in the event log.
    async with DataSyncEngine(config_dict) as engine:
        with pytest.raises(InvalidOption):
            await engine.add_sync_task(SyncTask(task_id="nightly-1"))


async def test_stop_cancels_queued_waits_running(config_dict, query_catalog):
    # Free disk can never reach this limit, so the first task waits for resources for
    # max_wait_seconds and then fails, while the second waits for the only slot.
    config_dict["sync_config"]["max_concurrent_tasks"] = 1
    config_dict["sync_config"]["resource_limits"] = {
        "min_free_disk_gb": 1e12, "max_memory_percent": None, "max_wait_seconds": 1}
    engine = DataSyncEngine(config_dict)
    await engine.start_sync_engine()
    first = await engine.add_sync_task(SyncTask(symbols=["BINANCE:BTCUSDT"], timeframes=["60"]))
    second = await engine.add_sync_task(SyncTask(symbols=["BINANCE:BTCUSDT"], timeframes=["60"]))
    await anyio.sleep(0.2)
    waiting = engine.get_sync_status()

    await engine.stop_sync_engine()

    assert (waiting["running_tasks"], waiting["queued_tasks"], waiting["active_tasks"]) == (1, 1, 2)
    status = engine.get_sync_status()
    assert status["is_running"] is False
    assert (status["failed_tasks"], status["cancelled_tasks"], status["active_tasks"]) == (1, 1, 0)
    states = task_states(Path(config_dict["backup_config"]["backup_dir"]), query_catalog)
    assert states == {first: "failed:ResourcesExhausted", second: "cancelled:"}


async def test_engine_restarts_after_stop(config_dict):
    engine = DataSyncEngine(config_dict)
    await engine.start_sync_engine()
    await engine.stop_sync_engine()
    await engine.stop_sync_engine()

    await engine.start_sync_engine()
    await engine.add_sync_task(SyncTask(symbols=["BINANCE:BTCUSDT"], timeframes=["60"]))
    status = await wait_until_idle(engine)
    await engine.stop_sync_engine()

    assert status["completed_tasks"] == 1


def test_sync_task_converts_guide_fields(config_dict, exports):
    config_dict["debug_config"] = {"dry_run": True}
    config = resolve_settings(config_dict).config
    task = SyncTask(task_id="", source_type="primary", target_type="cache", symbols="BINANCE:BTCUSDT, BINANCE:ETHUSDT",
                    timeframes=[15, "1h"], priority="low", since=datetime(2024, 1, 22))

    converted = task.to_engine_task(config)

    assert converted.source == f"csv:{exports.resolve()}"
    assert converted.target == "cache"
    assert converted.symbols == ["BINANCE:BTCUSDT", "BINANCE:ETHUSDT"]
    assert converted.timeframes == ["15", "60"]
    assert converted.priority == 3
    assert converted.since == 1_705_881_600
    assert converted.dry_run is True
    assert converted.task_id
    assert task.task_id == ""
