"""`tvcat restore --at`: the state at a time is the latest backup committed at or before it."""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest

from tvcat.catalog.events import parse_time
from tvcat.catalog.repository import BackupRow, Repository
from tvcat.engine.backup import BackupType, Scope, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.importing import import_files
from tvcat.errors import EXIT_INVALID_INPUT, EXIT_NO_BACKUP_AT_TIME

EXPORT_NAME = "CME_MINI_ES1!, 60.csv"
NEW_ROWS = 20
SHANGHAI = timezone(timedelta(hours=8))


def iso_shanghai(moment: datetime) -> str:
    """Format a time as ISO 8601 at +08:00 with microseconds, e.g. 2024-05-01T08:00:00.123456+08:00."""
    return moment.astimezone(SHANGHAI).isoformat(timespec="microseconds")


def unix_text(moment: datetime) -> str:
    """Format a time as Unix seconds with six decimals, computed without float rounding."""
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    whole = delta.days * 86_400 + delta.seconds
    return f"{whole}.{delta.microseconds:06d}"


@dataclass(frozen=True)
class History:
    """Two backups of one series and the cache rows at each, as bar_rows gives them."""

    backup_a: BackupRow
    backup_b: BackupRow
    rows_a: list[tuple]
    rows_b: list[tuple]
    repo_path: Path
    cli: Callable


@pytest.fixture(scope="module")
def history(tmp_path_factory, data_dir, cli_factory, bar_rows) -> History:
    """Take backup A of a real export without its last rows, then B with them and A's last bar revised."""
    root = tmp_path_factory.mktemp("point-in-time")
    lines = (data_dir / "tradingview" / EXPORT_NAME).read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    first_part = root / "first" / EXPORT_NAME
    first_part.parent.mkdir()
    first_part.write_text("\n".join([header, *rows[:-NEW_ROWS]]) + "\n", encoding="utf-8")

    # The second export has the new rows and a revised close for the bar
    # that was the last one of the first export, as when a bar was still open.
    revised_index = len(rows) - NEW_ROWS - 1
    cells = rows[revised_index].split(",")
    cells[4] = repr(float(cells[4]) + 0.25)
    revised_rows = list(rows)
    revised_rows[revised_index] = ",".join(cells)
    second_part = root / "second" / EXPORT_NAME
    second_part.parent.mkdir()
    second_part.write_text("\n".join([header, *revised_rows]) + "\n", encoding="utf-8")

    repo_path, cache_path = root / "repo", root / "cache.db"
    repository = Repository(repo_path)
    cache = BarCache(cache_path)
    try:
        import_files(repository, cache, [first_part])
        backup_a = create_backup(repository, cache, BackupType.FULL)
        cache.close()
        rows_a = bar_rows(cache_path)

        reports = import_files(repository, cache, [second_part])
        backup_b = create_backup(repository, cache, BackupType.INCREMENTAL)
        cache.close()
        rows_b = bar_rows(cache_path)
        row_a, row_b = repository.backup(backup_a.backup_id), repository.backup(backup_b.backup_id)
    finally:
        cache.close()
        repository.close()

    assert reports[0].bars_inserted == NEW_ROWS
    assert reports[0].bars_updated == 1
    assert backup_b.type is BackupType.INCREMENTAL
    assert rows_a != rows_b
    return History(row_a, row_b, rows_a, rows_b, repo_path, cli_factory(repo_path, cache_path, root / "xdg-data"))


def committed(row: BackupRow) -> datetime:
    return parse_time(row.committed_at)


def test_restore_at_between_backups(tmp_path, history, bar_rows):
    start_a, start_b = committed(history.backup_a), committed(history.backup_b)
    middle = start_a + (start_b - start_a) / 2
    assert start_a < middle < start_b

    target = tmp_path / "between.db"
    result = history.cli("restore", "--at", iso_shanghai(middle), "--target-db", target)

    assert result.returncode == 0, result.stderr
    assert history.backup_a.backup_id in result.stdout
    assert bar_rows(target) == history.rows_a


def test_restore_at_after_last_backup(tmp_path, history, bar_rows):
    target = tmp_path / "after.db"
    after_b = committed(history.backup_b) + timedelta(microseconds=1)
    result = history.cli("restore", "--at", unix_text(after_b), "--target-db", target)

    assert result.returncode == 0, result.stderr
    assert history.backup_b.backup_id in result.stdout
    assert bar_rows(target) == history.rows_b


def test_restore_at_exact_commit_times(tmp_path, history, bar_rows):
    at_a = history.cli("restore", "--at", iso_shanghai(committed(history.backup_a)), "--target-db", tmp_path / "a.db")
    at_b = history.cli("restore", "--at", history.backup_b.committed_at, "--target-db", tmp_path / "b.db")

    assert at_a.returncode == 0, at_a.stderr
    assert at_b.returncode == 0, at_b.stderr
    assert bar_rows(tmp_path / "a.db") == history.rows_a
    assert bar_rows(tmp_path / "b.db") == history.rows_b


@pytest.mark.parametrize("form", ["iso", "unix"])
def test_restore_at_before_first_backup(tmp_path, history, form):
    just_before = committed(history.backup_a) - timedelta(microseconds=1)
    text = iso_shanghai(just_before) if form == "iso" else unix_text(just_before)
    target = tmp_path / "before.db"
    result = history.cli("restore", "--at", text, "--target-db", target)

    assert result.returncode == EXIT_NO_BACKUP_AT_TIME, result.stderr
    assert history.backup_a.backup_id in result.stderr
    assert not target.exists()


@pytest.mark.parametrize("form", ["iso", "unix"])
def test_restore_at_future_time(tmp_path, history, form):
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    text = iso_shanghai(tomorrow) if form == "iso" else unix_text(tomorrow)
    target = tmp_path / "future.db"
    result = history.cli("restore", "--at", text, "--target-db", target)

    assert result.returncode == EXIT_NO_BACKUP_AT_TIME, result.stderr
    assert history.backup_b.backup_id in result.stderr
    assert not target.exists()


@pytest.mark.parametrize("text", [
    "99999999999999999",
    "-99999999999999",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
], ids=["unix-after-year-9999", "unix-before-year-1", "iso-after-year-9999-utc", "iso-before-year-1-utc"])
def test_restore_at_out_of_range_time(tmp_path, history, text):
    """A time that datetime cannot hold in UTC is invalid input or no backup, never a crash."""
    target = tmp_path / "out-of-range.db"
    result = history.cli("restore", "--at", text, "--target-db", target)

    assert result.returncode in (EXIT_INVALID_INPUT, EXIT_NO_BACKUP_AT_TIME), result.stderr
    assert "Traceback" not in result.stderr
    assert not target.exists()


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01T00:00:00Z", "1e9", ""])
def test_restore_at_invalid_time(tmp_path, history, text):
    result = history.cli("restore", "--at", text, "--target-db", tmp_path / "invalid.db")

    assert result.returncode == EXIT_INVALID_INPUT, result.stderr
    assert "Unix seconds" in result.stderr


def test_restore_at_records_requested_time(tmp_path, history):
    text = iso_shanghai(committed(history.backup_b))
    result = history.cli("restore", "--at", text, "--target-db", tmp_path / "recorded.db")
    assert result.returncode == 0, result.stderr

    repository = Repository(history.repo_path, create=False)
    try:
        row = repository.connection.execute(
            "SELECT status, backup_id, requested_at FROM restores ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    finally:
        repository.close()
    assert row == ("completed", history.backup_b.backup_id, text)


def test_restore_at_skips_partial_backup(tmp_path, cli, repository, cache, data_dir, bar_rows, cache_path):
    """A backup of one symbol does not contain the whole cache, so --at without a scope skips it."""
    exports = [data_dir / "tradingview" / name for name in ("CRYPTO_SOLUSD, 1D.csv", "TVC_SILVER, 1W.csv")]
    import_files(repository, cache, exports)
    full = create_backup(repository, cache, BackupType.FULL)
    create_backup(repository, cache, BackupType.FULL, Scope.of(["TVC:SILVER"], None))
    cache.close()

    target = tmp_path / "now.db"
    result = cli("restore", "--at", repository.last_event_time(), "--target-db", target)

    assert result.returncode == 0, result.stderr
    assert full.backup_id in result.stdout
    assert bar_rows(target) == bar_rows(cache_path)
