"""DataSyncBackupController: start and stop, sync_data, manual backups, the system status and the lazy imports."""

import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import tvcat
from tvcat.api import DataSyncBackupController, EngineNotRunning
from tvcat.errors import InvalidOption

pytestmark = pytest.mark.anyio


async def wait_until_idle(controller: DataSyncBackupController) -> dict:
    with anyio.fail_after(30):
        while (status := controller.get_system_status())["sync_engine"]["active_tasks"]:
            await anyio.sleep(0.02)
    return status


async def test_sync_then_backup_status(config_dict, export_bars):
    async with DataSyncBackupController(config_dict) as controller:
        task_id = await controller.sync_data("primary", "cache", symbols=["BINANCE:BTCUSDT"], timeframes=["60"],
                                             priority="high")
        await wait_until_idle(controller)
        backup_id = await controller.create_manual_backup("full")
        failed_id = await controller.sync_data("primary", "cache", ["BINANCE:ETHUSDT"], ["60"])
        status = await wait_until_idle(controller)

    assert controller.get_system_status()["is_running"] is False
    sync = status["sync_engine"]
    assert (sync["completed_tasks"], sync["failed_tasks"], sync["active_tasks"]) == (1, 1, 0)
    assert sync["statistics"]["last_error_task_id"] == failed_id
    assert "BINANCE:ETHUSDT" in sync["statistics"]["last_error"]
    assert [task["task_id"] for task in sync["tasks"]] == [task_id, failed_id]
    assert sync["tasks"][0]["priority"] == 1
    backups = status["backup_manager"]
    assert backups["total_backups"] == 1
    assert backups["backups_by_type"]["full"]["last_backup_id"] == backup_id
    assert backups["total_size_mb"] == backups["total_size_bytes"] / 1024 / 1024
    assert status["repository"]["last_failure"]["subject"] == failed_id
    assert status["cache"]["bar_count"] == export_bars[("BINANCE:BTCUSDT", "60")]


async def test_status_before_start(config_dict):
    status = DataSyncBackupController(config_dict).get_system_status()

    assert status["is_running"] is False
    assert status["sync_engine"]["active_tasks"] == 0
    assert status["backup_manager"]["total_backups"] == 0
    assert status["repository"]["exists"] is False
    assert status["cache"]["exists"] is False


async def test_start_creates_storage(config_dict):
    controller = DataSyncBackupController(config_dict)

    await controller.start()
    await controller.stop()

    assert (Path(config_dict["backup_config"]["backup_dir"]) / "catalog.db").is_file()
    assert Path(config_dict["sync_config"]["cache_path"]).is_file()


async def test_sync_before_start_rejected(config_dict):
    with pytest.raises(EngineNotRunning) as raised:
        await DataSyncBackupController(config_dict).sync_data("primary", "cache")

    assert isinstance(raised.value, tvcat.TvcatError)


async def test_unknown_sync_option_rejected(config_dict):
    async with DataSyncBackupController(config_dict) as controller:
        with pytest.raises(InvalidOption) as raised:
            await controller.sync_data("primary", "cache", wait=True)

    assert "wait" in str(raised.value)
    assert "closed_only" in str(raised.value)


def test_cli_import_skips_api(environment, tmp_path):
    # Run the CLI's `status` in a fresh interpreter, then report whether the API was imported.
    code = (
        "import sys\n"
        "import tvcat.cli.main\n"
        "try:\n"
        "    tvcat.cli.main.main(['status'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('tvcat.api' in sys.modules)\n"
        "from tvcat import DataSyncEngine\n"
        "print('tvcat.api' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["False", "True"]


def test_unknown_lazy_name():
    with pytest.raises(AttributeError):
        tvcat.DataSyncBackupControler
