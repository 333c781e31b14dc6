"""Every command line of the original user guide, run with `tvcat` in place of its script.

The lines are read from the guide at test time, in the guide's order, and
run against one repository whose primary source is a folder of real
TradingView exports. The guide's system starts with a filled cache, so the
test first syncs the exports into the cache. Only placeholders change: the guide's example backup
id becomes the id of a real backup in the guide's form, and example paths
become files of the test.
"""

import json
import os
import pty
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[1] / "../shared/seed/user-guide.zh-CN.md"
SCRIPT = "python tradingview/sync_backup_cli.py"
EXPORTS = ("BINANCE_BTCUSDT, 60.csv", "BINANCE_BTCUSDT, 1D.csv")


def guide_command_lines() -> list[str]:
    """Each line of the guide that runs the script, with continuations joined and spaces collapsed."""
    text = GUIDE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = []
    for line in text.splitlines():
        found = re.search(r"(?:nohup )?python tradingview/sync_backup_cli\.py[^`]*", line)
        if found:
            lines.append(" ".join(found.group(0).split()))
    return lines


@pytest.fixture
def site(tmp_path, data_dir, clean_environ):
    exports = tmp_path / "exports"
    exports.mkdir()
    for name in EXPORTS:
        (exports / name).write_bytes((data_dir / "tradingview" / name).read_bytes())
    config = tmp_path / "tvcat.yaml"
    config.write_text(
        f"backup_config: {{backup_dir: '{tmp_path / 'repo'}'}}\n"
        f"sync_config: {{cache_path: '{tmp_path / 'cache.db'}', primary: 'csv:{exports}'}}\n"
        "schedule_config: {backup_schedules: {snapshot_backup: {cron: '0 * * * *'}}}\n",
        encoding="utf-8",
    )
    environment = {**clean_environ, "TVCAT_CONFIG": str(config), "TVCAT_LANG": "en",
                   "XDG_DATA_HOME": str(tmp_path / "xdg-data"), "XDG_CONFIG_HOME": str(tmp_path / "xdg-config")}
    return tmp_path, config, environment


def run(arguments: list[str], environment: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tvcat.cli.main", *arguments], env=environment, cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)


def run_at_terminal(arguments: list[str], environment: dict, cwd: Path, answer: str) -> tuple[int, str]:
    """Run with a pseudo-terminal as stdin, as a user at a shell does, and type `answer`."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "tvcat.cli.main", *arguments], env=environment, cwd=cwd,
                               stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    os.close(terminal)
    os.write(controller, answer.encode())
    output, _ = process.communicate(timeout=300)
    os.close(controller)
    return process.returncode, output


def run_daemon_briefly(command: str, environment: dict, cwd: Path, repo: Path) -> int:
    """Start the daemon as the guide's line does, wait for its start event, and stop it with SIGTERM."""
    process = subprocess.Popen(["/bin/sh", "-c", f"exec {command}"], env=environment, cwd=cwd,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _daemon_started(repo, process.pid):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def _daemon_started(repo: Path, pid: int) -> bool:
    try:
        connection = sqlite3.connect(f"file:{repo / 'catalog.db'}?mode=ro", uri=True)
        try:
            rows = connection.execute("SELECT subject FROM events WHERE kind = 'daemon.started'").fetchall()
        finally:
            connection.close()
    except sqlite3.Error:
        return False
    return any(subject.startswith(f"{pid}@") for (subject,) in rows)


def guide_id_of_first_full(environment: dict, cwd: Path) -> str:
    listed = run(["list", "backups", "--json"], environment, cwd)
    return next(backup["guide_id"] for backup in json.loads(listed.stdout) if backup["type"] == "full")


def test_every_guide_command_line_runs(site):
    if not GUIDE.is_file():
        pytest.skip(f"the user guide is not at {GUIDE}")
    tmp_path, config, environment = site
    lines = guide_command_lines()
    assert len(lines) >= 30
    filled = run(["sync", "--source", "primary", "--target", "cache"], environment, tmp_path)
    assert filled.returncode == 0, filled.stderr

    for line in lines:
        command = line.replace(SCRIPT, f"{sys.executable} -m tvcat.cli.main")
        arguments = line.removeprefix("nohup ").split(" > ")[0].split()[2:]
        if "backup_full_1699123456" in arguments or "<previous_backup_id>" in arguments:
            guide_id = guide_id_of_first_full(environment, tmp_path)
            arguments = [guide_id if argument in ("backup_full_1699123456", "<previous_backup_id>") else argument
                         for argument in arguments]
        arguments = [str(tmp_path / "target.db") if argument == "/path/to/target.db" else argument
                     for argument in arguments]
        arguments = [str(config) if argument == "/path/to/config.yaml" else argument for argument in arguments]

        if arguments[-1] == "daemon" or arguments[-2:] == ["daemon", "--verbose"]:
            shell_line = command.replace(" &", "") if line.startswith("nohup") else \
                " ".join([sys.executable, "-m", "tvcat.cli.main", *arguments])
            code = run_daemon_briefly(shell_line, environment, tmp_path, tmp_path / "repo")
            assert code == 0, line
            continue
        if arguments[0] == "restore" and "--force" not in arguments and "--target-db" not in arguments:
            code, output = run_at_terminal(arguments, environment, tmp_path, "y\n")
            assert code == 0, f"{line}\n{output}"
            assert "Replace it?" in output
            continue

        result = run(arguments, environment, tmp_path)
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"

    assert (tmp_path / "target.db").is_file()
    assert (tmp_path / "sync_backup.log").is_file()
