"""`tvcat sync`, `list tasks`, `tasks cancel` and `gaps` as a user runs them, on the real exports."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest



@pytest.fixture
def exports(tmp_path, tradingview_files) -> Path:
    """A copy of the real TradingView exports, so a test may change them."""
    directory = tmp_path / "exports"
    directory.mkdir()
    for path in tradingview_files:
        shutil.copy2(path, directory / path.name)
    return directory


def bar_count(cache_path: Path) -> int:
    connection = sqlite3.connect(cache_path)
    try:
        return connection.execute("SELECT count(*) FROM bars").fetchone()[0]
    finally:
        connection.close()


def bar_count_while_written(cache_path: Path) -> int:
    """Return the bars committed so far, or 0 while the writer has not created the table yet."""
    try:
        return bar_count(cache_path)
    except sqlite3.OperationalError:
        return 0


def test_sync_csv_directory(cli, exports, cache_path):
    result = cli("sync", "--source", f"csv:{exports}", "--target", "cache", "--json")

    assert result.returncode == 0, result.stderr
    completed = json.loads(result.stdout)
    by_series = {(s["symbol"], s["timeframe"]): s for s in completed["series"]}
    assert by_series[("CME_MINI:ES1!", "1D")]["bars_inserted"] == 7037
    assert by_series[("TVC:SILVER", "1W")]["bars_inserted"] == 300
    assert bar_count(cache_path) == sum(s["bars_inserted"] for s in completed["series"])


def test_sync_skips_missing_series_with_note(cli, exports):
    some = cli("sync", "--source", f"csv:{exports}", "--target", "cache", "--symbols",
               "BINANCE:BTCUSDT,BINANCE:ETHUSDT", "--timeframes", "15,60", "--json")
    none = cli("sync", "--source", f"csv:{exports}", "--target", "cache", "--symbols", "BINANCE:ETHUSDT",
               "--timeframes", "15,60")

    assert some.returncode == 0, some.stderr
    completed = json.loads(some.stdout)
    assert [(s["symbol"], s["timeframe"]) for s in completed["series"]] == [("BINANCE:BTCUSDT", "60")]
    assert len(completed["notes"]) == 3
    assert "has no series BINANCE:ETHUSDT 60" in completed["notes"][-1]
    assert none.returncode == 4
    assert "has no series BINANCE:ETHUSDT 15" in none.stderr


def test_sync_skips_unchanged_files(cli, exports):
    assert cli("sync", "--source", f"csv:{exports}", "--target", "cache").returncode == 0
    silver = exports / "TVC_SILVER, 1W.csv"
    lines = silver.read_text(encoding="utf-8").splitlines()
    time_text, close, volume = lines[-1].split(",")
    lines[-1] = f"{time_text},{float(close) + 1},{volume}"
    silver.write_text("\n".join(lines), encoding="utf-8")

    result = cli("sync", "--source", f"csv:{exports}", "--target", "cache", "--json")

    assert result.returncode == 0, result.stderr
    completed = json.loads(result.stdout)
    fetched = {(s["symbol"], s["timeframe"]): s["bars_fetched"] for s in completed["series"]}
    assert fetched[("TVC:SILVER", "1W")] == 3
    assert fetched[("CME_MINI:ES1!", "1D")] == 0
    [silver_result] = [s for s in completed["series"] if s["symbol"] == "TVC:SILVER"]
    assert silver_result["bars_revised"] == 1


def test_sync_bad_row_names_place(cli, exports, cache_path):
    corn = exports / "CBOT_CORN, 1D.csv"
    lines = corn.read_text(encoding="utf-8").splitlines()
    fields = lines[10].split(",")
    fields[4] = "abc"
    lines[10] = ",".join(fields)
    corn.write_text("\n".join(lines), encoding="utf-8")

    result = cli("sync", "--source", f"csv:{exports}", "--target", "cache", "--symbols", "CBOT:CORN")

    assert result.returncode == 3
    assert "CBOT_CORN, 1D.csv" in result.stderr
    assert "line 11" in result.stderr
    assert "'abc'" in result.stderr
    assert not cache_path.exists() or bar_count(cache_path) == 0


def test_list_and_cancel_tasks(cli, exports):
    assert cli("sync", "--source", f"csv:{exports}", "--target", "cache", "--symbols", "TVC:SILVER").returncode == 0

    listed = cli("list", "tasks", "--json")
    cancel_none = cli("tasks", "cancel", "--all")
    cancel_done = cli("tasks", "cancel", json.loads(listed.stdout)[0]["task_id"])

    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["status"] == "completed"
    assert row["symbols"] == ["TVC:SILVER"]
    assert row["bars_inserted"] == 300
    assert cancel_none.returncode == 0
    assert "cancelled 0 task(s)" in cancel_none.stdout
    assert cancel_done.returncode == 3
    assert "only a queued or interrupted task can be cancelled" in cancel_done.stderr


def test_sync_backup_round_trip(cli, exports, tmp_path, bar_rows):
    source = f"csv:{exports}"
    assert cli("sync", "--source", source, "--target", "cache", "--symbols", "TVC:SILVER").returncode == 0
    backed_up = cli("sync", "--source", "cache", "--target", "backup", "--type", "full")
    restored = cli("--cache", tmp_path / "restored.db", "sync", "--source", "backup", "--target", "cache")

    assert backed_up.returncode == 0, backed_up.stderr
    assert restored.returncode == 0, restored.stderr
    assert bar_rows(tmp_path / "restored.db") == bar_rows(tmp_path / "cache.db")


def test_sync_to_remote_rejected(cli, repo_path):
    result = cli("sync", "--source", "cache", "--target", "remote")

    assert result.returncode == 1
    assert "no remote is configured" in result.stderr
    assert not repo_path.exists()


@pytest.mark.parametrize(("source", "fragment"), [
    ("nosuch", "unknown source 'nosuch'"),
    ("csv:/nonexistent/exports", "the directory /nonexistent/exports of the source"),
])
def test_bad_source_leaves_nothing(cli, repo_path, cache_path, source, fragment):
    result = cli("sync", "--source", source, "--target", "cache")

    assert result.returncode == 3
    assert fragment in result.stderr
    assert not repo_path.exists()
    assert not cache_path.exists()


def test_sigkill_then_rerun_matches(cli_factory, exports, tmp_path, bar_rows, clean_environ):
    reference = cli_factory(tmp_path / "ref-repo", tmp_path / "ref.db", tmp_path / "ref-data")
    assert reference("sync", "--source", f"csv:{exports}", "--target", "cache").returncode == 0
    total = bar_count(tmp_path / "ref.db")

    environment = {
        **clean_environ, "TVCAT_REPO": str(tmp_path / "repo"), "TVCAT_CACHE": str(tmp_path / "cache.db"),
        "TVCAT_LANG": "en", "XDG_DATA_HOME": str(tmp_path), "TVCAT_SYNC_CONFIG__BATCH_SIZE": "20",
    }
    process = subprocess.Popen([sys.executable, "-m", "tvcat.cli.main", "sync", "--source", f"csv:{exports}",
                                "--target", "cache"], env=environment, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if (tmp_path / "cache.db").exists() and 0 < bar_count_while_written(tmp_path / "cache.db") < total // 2:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the sync finished before it could be killed"

    rerun = cli_factory(tmp_path / "repo", tmp_path / "cache.db", tmp_path)
    again = rerun("sync", "--source", f"csv:{exports}", "--target", "cache")
    tasks = json.loads(rerun("list", "tasks", "--json").stdout)

    assert again.returncode == 0, again.stderr
    assert bar_rows(tmp_path / "cache.db") == bar_rows(tmp_path / "ref.db")
    assert [task["status"] for task in tasks] == ["completed", "interrupted"]


def test_sigint_stops_sync_between_batches(tmp_path, tradingview_files, clean_environ, cli_factory):
    minute_file = next(path for path in tradingview_files if path.name == "CME_MINI_ES1!, 1min.csv")
    header, *rows = minute_file.read_text(encoding="utf-8").splitlines()
    span = 60 * (int(rows[-1].split(",")[0]) - int(rows[0].split(",")[0]) + 60) // 60
    exports = tmp_path / "big"
    exports.mkdir()
    with open(exports / "TEST_BIG, 1.csv", "w", encoding="utf-8") as big:
        big.write(header + "\n")
        for copy in range(15):
            for row in rows:
                time_text, rest = row.split(",", 1)
                big.write(f"{int(time_text) + copy * span},{rest}\n")

    environment = {
        **clean_environ, "TVCAT_REPO": str(tmp_path / "repo"), "TVCAT_CACHE": str(tmp_path / "cache.db"),
        "TVCAT_LANG": "en", "XDG_DATA_HOME": str(tmp_path),
    }
    process = subprocess.Popen([sys.executable, "-m", "tvcat.cli.main", "sync", "--source", f"csv:{exports}",
                                "--target", "cache"], env=environment, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (tmp_path / "cache.db").exists() and bar_count_while_written(tmp_path / "cache.db") > 0:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    _output, errors = process.communicate(timeout=60)
    stopped_after = time.monotonic() - signalled

    tasks = json.loads(cli_factory(tmp_path / "repo", tmp_path / "cache.db", tmp_path)("list", "tasks", "--json").stdout)
    assert process.returncode == 130, errors
    assert stopped_after < 5
    assert bar_count(tmp_path / "cache.db") < 15 * len(rows)
    assert [task["status"] for task in tasks] == ["interrupted"]


def test_disk_pressure_prunes_before_backup(cli, exports, repo_path):
    assert cli("sync", "--source", f"csv:{exports}", "--target", "cache", "--symbols", "TVC:SILVER").returncode == 0
    for _ in range(3):
        assert cli("backup", "--type", "full").returncode == 0
    pressure = {
        "TVCAT_BACKUP_CONFIG__AUTO_CLEANUP__ENABLED": "true",
        "TVCAT_BACKUP_CONFIG__AUTO_CLEANUP__MIN_FREE_DISK_GB": "1000000",
        "TVCAT_BACKUP_CONFIG__AUTO_CLEANUP__RETENTION_POLICY__KEEP_LATEST": "1",
        "TVCAT_BACKUP_CONFIG__AUTO_CLEANUP__RETENTION_POLICY__KEEP_DAILY": "0",
    }

    result = cli("backup", "--type", "full", env=pressure)

    assert result.returncode == 0, result.stderr
    assert "cleanup before the backup: free disk under the repository" in result.stdout
    connection = sqlite3.connect(repo_path / "catalog.db")
    try:
        reasons = connection.execute(
            "SELECT json_extract(payload, '$.reason') FROM events WHERE kind = 'retention.decided'").fetchall()
        statuses = connection.execute("SELECT status, count(*) FROM backups GROUP BY status").fetchall()
    finally:
        connection.close()
    assert reasons == [("disk-pressure",)]
    assert dict(statuses) == {"committed": 2, "forgotten": 2}
