"""The Python examples of the user guide, run against a temporary repository with real bars.

Each example is read from the guide when the test runs, and only its import
line changes: `from tradingview.data_sync_backup import` becomes
`from tvcat import`. Two more adaptations are stated where they happen:

- The quick demo syncs and backs up BINANCE:BTCUSDT at timeframe 15, but the
  real exports have BTCUSDT only at 60 and 1D, so its `['15']` becomes `['60']`.
- The programmatic sync example uses `asyncio` without importing it (the
  guide imported it in an earlier example), so it runs with `asyncio` defined.

The working directory is the test's tmp_path, so the guide's relative paths
(`data/backups`, `tradingview/sync_backup_config.yaml`) resolve to temporary
files there, and the configuration example reads and writes
`tmp_path/tradingview/sync_backup_config.yaml` with its text unchanged.
"""

import ast
import asyncio
import re
from pathlib import Path

import pytest
import yaml

from tvcat.catalog.repository import Repository

GUIDE = (Path(__file__).resolve().parents[2] / "../shared/seed/user-guide.zh-CN.md").resolve()
GUIDE_IMPORT = "from tradingview.data_sync_backup import"


def guide_text() -> str:
    if not GUIDE.is_file():
        pytest.skip(f"the user guide is not at {GUIDE}")
    return GUIDE.read_text(encoding="utf-8")


def guide_block(heading: str, language: str = "python") -> str:
    """Return the first code block of `language` under the guide's heading `heading`."""
    text = guide_text()
    assert heading in text, f"heading {heading!r} not found in {GUIDE}"
    section = text.split(heading, 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None, f"no {language} block under {heading!r}"
    return match[1]


def with_tvcat_import(block: str) -> str:
    assert block.count(GUIDE_IMPORT) == 1, block
    return block.replace(GUIDE_IMPORT, "from tvcat import")


def printed_value(output: str, label: str) -> str:
    """Return the text after `label` on the line of the output that starts with it."""
    match = re.search(rf"^{re.escape(label)}(.*)$", output, flags=re.MULTILINE)
    assert match is not None, f"no line starting with {label!r} in:\n{output}"
    return match[1].strip()


def test_quick_demo(config_file, config_dict, exports, filled_cache, capsys, query_catalog):
    block = with_tvcat_import(guide_block("### Python API 快速使用"))
    assert block.count("timeframes=['15']") == 2
    block = block.replace("timeframes=['15']", "timeframes=['60']")

    exec(compile(block, "quick_demo", "exec"), {"__name__": "guide_example"})

    output = capsys.readouterr().out
    repository_path = Path(config_dict["backup_config"]["backup_dir"])
    backup_id = printed_value(output, "备份创建成功:")
    backup = query_catalog(repository_path, "SELECT type, status, symbols, timeframes FROM backups WHERE backup_id = ?",
                           (backup_id,))
    assert backup == [("full", "committed", '["BINANCE:BTCUSDT"]', '["60"]')]

    task_id = printed_value(output, "同步任务启动:")
    task = query_catalog(repository_path, "SELECT status, source, target FROM sync_tasks WHERE task_id = ?",
                         (task_id,))
    assert task == [("completed", f"csv:{exports.resolve()}", "cache")]

    status = ast.literal_eval(printed_value(output, "系统状态:"))
    assert status["sync_engine"]["completed_tasks"] == 1
    assert status["sync_engine"]["active_tasks"] == 0
    assert status["sync_engine"]["failed_tasks"] == 0
    assert status["sync_engine"]["statistics"]["last_error"] is None
    assert status["backup_manager"]["total_backups"] == 1
    assert status["backup_manager"]["total_size_mb"] > 0


def test_programmatic_sync(config_file, config_dict, capsys, query_catalog, bar_rows, export_bars):
    block = with_tvcat_import(guide_block("### 编程式同步"))
    namespace = {"__name__": "guide_example", "asyncio": asyncio}
    exec(compile(block, "custom_sync_example", "exec"), namespace)

    asyncio.run(namespace["custom_sync_example"]())

    output = capsys.readouterr().out
    task_id = printed_value(output, "同步任务已添加:")
    active_counts = re.findall(r"^活跃任务: (\d+)$", output, flags=re.MULTILINE)
    assert active_counts[-1] == "0"
    repository_path = Path(config_dict["backup_config"]["backup_dir"])
    task = query_catalog(repository_path, "SELECT status, symbols, timeframes FROM sync_tasks WHERE task_id = ?",
                         (task_id,))
    assert task == [("completed", '["BINANCE:BTCUSDT", "BINANCE:ETHUSDT"]', '["5", "15", "60"]')]
    # Of the six series requested, the exports contain only BTCUSDT 60; the others are noted as missing.
    notes = query_catalog(repository_path, "SELECT json_extract(payload, '$.notes') FROM events "
                          "WHERE kind = 'sync.completed' AND subject = ?", (task_id,))[0][0]
    assert "BINANCE:ETHUSDT" in notes
    rows = bar_rows(Path(config_dict["sync_config"]["cache_path"]))
    assert {(row[0][1], row[1][1]) for row in rows} == {("BINANCE:BTCUSDT", "60")}
    assert len(rows) == export_bars[("BINANCE:BTCUSDT", "60")]


def test_backup_management(config_file, config_dict, filled_cache, capsys, bar_rows, environment):
    bars_before = bar_rows(filled_cache)
    block = with_tvcat_import(guide_block("### 备份管理"))
    namespace = {"__name__": "guide_example"}
    exec(compile(block, "backup_management_example", "exec"), namespace)

    asyncio.run(namespace["backup_management_example"]())

    output = capsys.readouterr().out
    backup_id = printed_value(output, "备份创建成功:")
    assert printed_value(output, "备份恢复:") == "成功"
    assert float(printed_value(output, "备份大小:").removesuffix("MB").strip()) >= 0
    assert printed_value(output, "备份:") == f"{backup_id} - full"

    # The example's backup_dir is relative, so the repository is under the working directory.
    repository = Repository(environment / "data" / "backups", create=False)
    try:
        backup = repository.backup(backup_id)
        restores = repository.connection.execute(
            "SELECT json_extract(payload, '$.backup_id'), json_extract(payload, '$.target') FROM events "
            "WHERE kind = 'restore.completed'").fetchall()
    finally:
        repository.close()
    assert backup.status == "committed"
    assert backup.symbols == ["BINANCE:BTCUSDT"]
    assert backup.timeframes == ["15", "60"]
    assert restores == [(backup_id, str(filled_cache))]
    # The backup selected BTCUSDT only; SOLUSD stays, and every bar is as before, bit for bit.
    assert bar_rows(filled_cache) == bars_before


def test_dynamic_config_update(environment, capsys):
    config_path = environment / "tradingview" / "sync_backup_config.yaml"
    config_path.parent.mkdir()
    # The guide's own configuration file, from its section on the main configuration file.
    config_path.write_text(guide_block("### 主配置文件结构", language="yaml"), encoding="utf-8")
    block = with_tvcat_import(guide_block("### 动态配置更新"))
    namespace = {"__name__": "guide_example"}
    exec(compile(block, "update_config_example", "exec"), namespace)

    asyncio.run(namespace["update_config_example"]())

    assert capsys.readouterr().out.strip() == "配置已更新并应用"
    saved = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    assert saved["sync_config"]["sync_interval"] == 180
    assert saved["backup_config"]["max_backup_files"] == 50
    # start() created the repository that the file's relative backup_dir names, and the default cache.
    assert (environment / "data" / "backups" / "catalog.db").is_file()
    assert (environment / "xdg-data" / "tvcat" / "cache.db").is_file()
