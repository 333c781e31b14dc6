"""`tvcat cat`: the bars of one series as CSV, JSON lines or Parquet, equal to what the reader returns."""

import csv
import io
import json
import os
import pty
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tvcat.catalog.bars import VALUE_COLUMNS
from tvcat.catalog.events import parse_time
from tvcat.catalog.repository import Repository
from tvcat.catalog.series import Series
from tvcat.errors import EXIT_INTEGRITY, EXIT_INVALID_INPUT, EXIT_NO_BACKUP_AT_TIME, EXIT_NOT_FOUND
from tvcat.reader import open_repository

SYMBOL = "FX:EURUSD"
TIMEFRAME = "60"
NEW_ROWS = 20


@dataclass(frozen=True)
class CatRepository:
    """A repository with backups A (the sample without its last rows) and B (the whole sample)."""

    repo_path: Path
    cache_path: Path
    backup_a: dict
    backup_b: dict
    cli: Callable
    environment: dict[str, str]


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory, sample_import_arguments, cli_factory, clean_environ) -> CatRepository:
    root = tmp_path_factory.mktemp("cat")
    sample = Path(sample_import_arguments[0])
    lines = sample.read_text(encoding="utf-8").splitlines()
    shortened = root / "first" / sample.name
    shortened.parent.mkdir()
    shortened.write_text("\n".join(lines[:-NEW_ROWS]) + "\n", encoding="utf-8")

    repo_path, cache_path = root / "repo", root / "cache.db"
    cli = cli_factory(repo_path, cache_path, root / "xdg-data")
    for source, backup_type in ((shortened, "full"), (sample, "incremental")):
        imported = cli("import", source, *sample_import_arguments[1:])
        assert imported.returncode == 0, imported.stderr
        backed = cli("backup", "--type", backup_type)
        assert backed.returncode == 0, backed.stderr
    listed = cli("list", "backups", "--json")
    assert listed.returncode == 0, listed.stderr
    backup_a, backup_b = json.loads(listed.stdout)

    environment = {**clean_environ, "TVCAT_REPO": str(repo_path), "TVCAT_CACHE": str(cache_path),
                   "TVCAT_LANG": "en", "XDG_DATA_HOME": str(root / "xdg-data")}
    return CatRepository(repo_path, cache_path, backup_a, backup_b, cli, environment)


def read_table(repo_path: Path, **arguments) -> pa.Table:
    with open_repository(repo_path) as repository:
        return repository.read(SYMBOL, TIMEFRAME, **arguments)


def bits(value: float | None):
    return None if value is None else struct.pack("<d", value)


def table_values(table: pa.Table) -> list[tuple]:
    """Return (ISO time, value bits...) per bar, the form both text outputs are compared in."""
    times = [moment.strftime("%Y-%m-%dT%H:%M:%SZ") for moment in table["ts"].to_pylist()]
    columns = [[bits(value) for value in table[name].to_pylist()] for name in VALUE_COLUMNS]
    return list(zip(times, *columns))


def csv_values(text: str) -> list[tuple]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["time", "open", "high", "low", "close", "volume"]
    return [(row[0], *(bits(float(cell)) if cell else None for cell in row[1:])) for row in rows[1:]]


def json_values(text: str) -> list[tuple]:
    objects = [json.loads(line) for line in text.splitlines()]
    for item in objects:
        assert list(item) == ["time", *VALUE_COLUMNS]
    return [(item["time"], *(bits(item[name]) for name in VALUE_COLUMNS)) for item in objects]


def test_cat_csv_equals_read(backed_up):
    result = backed_up.cli("cat", SYMBOL, TIMEFRAME)

    assert result.returncode == 0, result.stderr
    assert backed_up.backup_b["backup_id"] in result.stderr
    expected = table_values(read_table(backed_up.repo_path))
    assert len(expected) == backed_up.backup_b["bar_count"]
    assert csv_values(result.stdout) == expected


def test_cat_json_lines_equal_read(backed_up):
    result = backed_up.cli("cat", SYMBOL, "1h", "--format", "json")

    assert result.returncode == 0, result.stderr
    assert json_values(result.stdout) == table_values(read_table(backed_up.repo_path))


def test_cat_parquet_file_equals_read(tmp_path, backed_up):
    target = tmp_path / "bars.parquet"
    result = backed_up.cli("cat", SYMBOL, TIMEFRAME, "--format", "parquet", "--output", target)

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    written = pq.read_table(target)
    expected = read_table(backed_up.repo_path)
    # Parquet has no unit of seconds, so pyarrow stores the times in milliseconds.
    assert written.cast(expected.schema).equals(expected)
    assert [path.name for path in tmp_path.iterdir()] == ["bars.parquet"]


def test_cat_parquet_to_pipe(backed_up):
    result = subprocess.run(
        [sys.executable, "-m", "tvcat.cli.main", "cat", SYMBOL, TIMEFRAME, "--format", "parquet",
         "--from", "2019-03-01", "--to", "2019-04-01"],
        env=backed_up.environment, stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
    )

    assert result.returncode == 0, result.stderr
    written = pq.read_table(io.BytesIO(result.stdout))
    expected = read_table(backed_up.repo_path, start="2019-03-01", end="2019-04-01")
    assert expected.num_rows > 0
    assert written.cast(expected.schema).equals(expected)


def test_cat_parquet_terminal_rejected(backed_up):
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tvcat.cli.main", "cat", SYMBOL, TIMEFRAME, "--format", "parquet"],
            env=backed_up.environment, stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.PIPE,
            timeout=120,
        )
    finally:
        os.close(terminal)
        os.close(controller)

    assert result.returncode == EXIT_INVALID_INPUT
    assert b"--output FILE" in result.stderr


def test_cat_range_bounds(backed_up):
    times = read_table(backed_up.repo_path)["ts"].to_pylist()
    first, stop = times[10], times[20]
    result = backed_up.cli("cat", SYMBOL, TIMEFRAME, "--from", first.isoformat(), "--to", int(stop.timestamp()))

    assert result.returncode == 0, result.stderr
    assert csv_values(result.stdout) == table_values(read_table(backed_up.repo_path, start=first, end=stop))
    written_times = [row[0] for row in csv_values(result.stdout)]
    assert written_times[0] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(written_times) == 10


def test_cat_naive_time_note(backed_up):
    result = backed_up.cli("cat", SYMBOL, TIMEFRAME, "--from", "2019-03-01", "--to", "2019-03-02T00:00:00Z")

    assert result.returncode == 0, result.stderr
    assert "note: 2019-03-01 has no offset and is read as UTC" in result.stderr
    assert "2019-03-02T00:00:00Z has no offset" not in result.stderr


def test_cat_empty_range(backed_up):
    as_csv = backed_up.cli("cat", SYMBOL, TIMEFRAME, "--from", "2019-03-01", "--to", "2019-03-01")
    as_json = backed_up.cli("cat", SYMBOL, TIMEFRAME, "--from", "2030-01-01", "--format", "json")

    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout == "time,open,high,low,close,volume\n"
    assert as_json.returncode == 0, as_json.stderr
    assert as_json.stdout == ""


def test_cat_at_between_backups(backed_up):
    committed_a, committed_b = parse_time(backed_up.backup_a["committed_at"]), parse_time(backed_up.backup_b["committed_at"])
    middle = committed_a + (committed_b - committed_a) / 2
    by_time = backed_up.cli("cat", SYMBOL, TIMEFRAME, "--at", middle.isoformat())
    by_prefix = backed_up.cli("cat", SYMBOL, TIMEFRAME, "--backup", backed_up.backup_a["backup_id"].split("-")[0])

    assert by_time.returncode == 0, by_time.stderr
    assert by_prefix.returncode == 0, by_prefix.stderr
    expected = table_values(read_table(backed_up.repo_path, backup_id=backed_up.backup_a["backup_id"]))
    assert len(expected) == backed_up.backup_a["bar_count"]
    assert csv_values(by_time.stdout) == expected
    assert csv_values(by_prefix.stdout) == expected


@pytest.mark.parametrize("arguments, exit_code, message", [
    (["--at", "2999-01-01T00:00:00Z"], EXIT_NO_BACKUP_AT_TIME, "is in the future"),
    (["--at", "2000-01-01T00:00:00Z"], EXIT_NO_BACKUP_AT_TIME, "no backup existed at 2000-01-01"),
    (["--at", "yesterday"], EXIT_INVALID_INPUT, "invalid time 'yesterday'"),
    (["--to", "soon"], EXIT_INVALID_INPUT, "invalid time 'soon'"),
    (["--at", "2024-01-01T00:00:00Z", "--backup", "2024"], EXIT_INVALID_INPUT, "--at TIME or --backup ID"),
    (["--backup", "19700101T"], EXIT_NOT_FOUND, "backup '19700101T' not found"),
    (["--from", "2019-03-02", "--to", "2019-03-01"], EXIT_INVALID_INPUT, "is after its end"),
    (["--format", "xml"], 2, "Invalid value for '--format'"),
], ids=["future", "before-first", "bad-at", "bad-to", "at-and-backup", "unknown-backup", "reversed", "bad-format"])
def test_cat_error_exit_codes(backed_up, arguments, exit_code, message):
    result = backed_up.cli("cat", SYMBOL, TIMEFRAME, *arguments)

    assert result.returncode == exit_code, result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_cat_unknown_series(backed_up):
    result = backed_up.cli("cat", "FXCM:EURUSD", TIMEFRAME, "--backup", backed_up.backup_b["backup_id"])

    assert result.returncode == EXIT_NOT_FOUND, result.stderr
    assert "FXCM:EURUSD 60" in result.stderr
    assert backed_up.backup_b["backup_id"] in result.stderr
    assert f"{SYMBOL} {TIMEFRAME}" in result.stderr
    assert result.stdout == ""


def test_cat_missing_repository(tmp_path, backed_up):
    absent = tmp_path / "absent"
    result = backed_up.cli("cat", SYMBOL, TIMEFRAME, env={"TVCAT_REPO": str(absent)})

    assert result.returncode == EXIT_NOT_FOUND, result.stderr
    assert f"no repository at {absent}" in result.stderr
    assert not absent.exists()


def test_cat_closed_pipe_exits_quietly(backed_up):
    process = subprocess.Popen(
        [sys.executable, "-m", "tvcat.cli.main", "cat", SYMBOL, TIMEFRAME],
        env=backed_up.environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert process.stdout.readline() == b"time,open,high,low,close,volume\n"
    process.stdout.close()
    stderr = process.stderr.read().decode()
    process.stderr.close()

    # The whole series is far more than a pipe buffer, so the writer meets the closed pipe.
    assert process.wait(timeout=120) == 0, stderr
    assert "Traceback" not in stderr
    assert "error" not in stderr


def test_cat_corrupted_chunk_keeps_output(tmp_path, backed_up, cli_factory):
    """A damaged chunk is an integrity error, and --output is left as it was."""
    repo_copy = tmp_path / "repo"
    shutil.copytree(backed_up.repo_path, repo_copy)
    repository = Repository(repo_copy, create=False)
    try:
        state = repository.resolve_state(repository.backup(backed_up.backup_b["backup_id"]))
        windows = state[Series(SYMBOL, TIMEFRAME)]
        damaged = repository.store.path(windows[max(windows)].chunk_id)
    finally:
        repository.close()
    damaged.write_bytes(damaged.read_bytes()[:-8] + bytes(8))

    output = tmp_path / "out" / "bars.csv"
    output.parent.mkdir()
    output.write_text("old\n", encoding="utf-8")
    cli = cli_factory(repo_copy, tmp_path / "cache.db", tmp_path / "xdg-data")
    result = cli("cat", SYMBOL, TIMEFRAME, "--output", output)

    assert result.returncode == EXIT_INTEGRITY, result.stderr
    assert "is corrupted" in result.stderr
    assert output.read_text(encoding="utf-8") == "old\n"
    assert [path.name for path in output.parent.iterdir()] == ["bars.csv"]


def test_cat_unwritable_output(tmp_path, backed_up):
    result = backed_up.cli("cat", SYMBOL, TIMEFRAME, "--output", tmp_path / "absent" / "bars.csv")

    assert result.returncode == 1, result.stderr
    assert f"writing the bars to {tmp_path / 'absent' / 'bars.csv'} failed" in result.stderr
    assert "Traceback" not in result.stderr
