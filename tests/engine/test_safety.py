"""Cases where a user's mistake or a damaged file must not lose or misreport data."""

import shutil
import sqlite3

import numpy as np
import pytest

from tvcat.catalog.bars import BarColumns
from tvcat.catalog.series import Series
from tvcat.engine.backup import BackupType, Scope, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.quickstart import run_quickstart
from tvcat.engine.restore import read_state_bars
from tvcat.engine.verify import verify_repository
from tvcat.errors import InvalidOption

EURUSD = Series("FX:EURUSD", "60")
SILVER = Series("TVC:SILVER", "1W")


def _bars(count: int, start: int, price: float) -> BarColumns:
    ts = start + 3600 * np.arange(count)
    close = np.round(price + 0.0001 * np.arange(count), 5)
    return BarColumns.from_arrays(ts, close, close + 0.001, close - 0.001, close, np.ones(count))


def _fill(cache_path) -> None:
    cache = BarCache(cache_path)
    cache.upsert(EURUSD, _bars(500, 1_600_002_000, 1.1))
    cache.upsert(SILVER, _bars(50, 1_600_002_000, 20.0))
    cache.close()


def _close_of(cache_path, series: Series, ts: int) -> float:
    connection = sqlite3.connect(cache_path)
    try:
        return connection.execute(
            "SELECT close FROM bars WHERE symbol = ? AND timeframe = ? AND ts = ?",
            (series.symbol, series.timeframe, ts),
        ).fetchone()[0]
    finally:
        connection.close()


def _edit_close(cache_path, series: Series, ts: int, close: float) -> None:
    connection = sqlite3.connect(cache_path)
    connection.execute(
        "UPDATE bars SET close = ? WHERE symbol = ? AND timeframe = ? AND ts = ?",
        (close, series.symbol, series.timeframe, ts),
    )
    connection.commit()
    connection.close()


def test_incremental_after_older_cache_copy(repository, cache_path, tmp_path):
    _fill(cache_path)
    cache = BarCache(cache_path)
    create_backup(repository, cache, BackupType.FULL)
    cache.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cache.close()
    shutil.copy(cache_path, tmp_path / "old.db")
    for step in range(3):
        _edit_close(cache_path, SILVER, 1_600_002_000, 30.0 + step)
        cache = BarCache(cache_path)
        create_backup(repository, cache, BackupType.INCREMENTAL)
        cache.close()

    for suffix in ("-wal", "-shm"):
        (tmp_path / f"cache.db{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "old.db", cache_path)
    _edit_close(cache_path, EURUSD, 1_600_002_000, 99.0)
    cache = BarCache(cache_path)
    result = create_backup(repository, cache, BackupType.INCREMENTAL)
    cache.close()

    state = repository.resolve_state(repository.find_backup(result.backup_id))
    eurusd = next(read_state_bars(repository, state, EURUSD))
    silver = next(read_state_bars(repository, state, SILVER))
    assert eurusd.close[0] == 99.0
    assert silver.close[0] == _close_of(cache_path, SILVER, 1_600_002_000)


def test_restore_into_repository_rejected(cli, cache_path, repo_path):
    _fill(cache_path)
    assert cli("backup", "--type", "full").returncode == 0

    backup_id = cli("list", "backups", "--json").stdout.split('"backup_id": "')[1].split('"')[0]
    result = cli("restore", backup_id, "--target-db", repo_path / "catalog.db", "--force")
    listed = cli("list", "backups", "--json")

    assert result.returncode != 0
    assert "inside the repository" in result.stderr
    assert '"type": "full"' in listed.stdout


def test_cache_inside_repository_rejected(cli_factory, tmp_path, repo_path):
    run = cli_factory(repo_path, repo_path / "catalog.db", tmp_path / "xdg")
    assert run("status").returncode == 0
    result = run("import", tmp_path / "missing.csv")
    assert result.returncode == 3
    assert "inside the repository" in result.stderr


def test_scoped_restore_keeps_other_series(cli, cache_path, repo_path):
    _fill(cache_path)
    assert cli("backup", "--type", "full").returncode == 0
    _edit_close(cache_path, EURUSD, 1_600_002_000, 5.0)
    _edit_close(cache_path, SILVER, 1_600_002_000, 42.0)

    backup_id = cli("list", "backups", "--json").stdout.split('"backup_id": "')[1].split('"')[0]
    result = cli("restore", backup_id, "--symbols", "FX:EURUSD", "--force")
    assert result.returncode == 0, result.stderr
    assert _close_of(cache_path, EURUSD, 1_600_002_000) == 1.1
    assert _close_of(cache_path, SILVER, 1_600_002_000) == 42.0


def test_quickstart_rejects_used_directory(tmp_path):
    (tmp_path / "cache.db").write_bytes(b"mine")

    with pytest.raises(InvalidOption):
        run_quickstart(tmp_path, lambda message: None)
    assert (tmp_path / "cache.db").read_bytes() == b"mine"


def test_restore_at_names_skipped_backup(cli, cache_path):
    _fill(cache_path)
    assert cli("backup", "--type", "full").returncode == 0
    assert cli("backup", "--type", "full", "--symbols", "FX:EURUSD").returncode == 0

    now = cli("list", "backups", "--json").stdout
    last_committed = now.rsplit('"committed_at": "', 1)[1].split('"')[0]
    result = cli("restore", "--at", last_committed, "--target-db", cache_path.parent / "r.db")

    assert result.returncode == 0, result.stderr
    assert "skipped newer backups" in result.stdout + result.stderr


def test_swapped_manifest_detected(cli, cache_path, repo_path):
    _fill(cache_path)
    assert cli("backup", "--type", "full").returncode == 0
    _edit_close(cache_path, EURUSD, 1_600_002_000, 5.0)
    assert cli("backup", "--type", "full").returncode == 0
    connection = sqlite3.connect(repo_path / "catalog.db")
    first, last = connection.execute("SELECT manifest_id, backup_id FROM backups ORDER BY backup_id").fetchall()
    connection.execute("UPDATE backups SET manifest_id = ? WHERE backup_id = ?", (first[0], last[1]))
    connection.commit()
    connection.close()

    verify = cli("verify")
    restore = cli("restore", last[1], "--target-db", cache_path.parent / "r.db")

    assert verify.returncode == 6
    assert restore.returncode == 6
    assert "belongs to" in restore.stderr
    assert not (cache_path.parent / "r.db").exists()


def test_rebuild_refuses_damaged_log(cli, cache_path, repo_path):
    _fill(cache_path)
    assert cli("backup", "--type", "full").returncode == 0
    connection = sqlite3.connect(repo_path / "catalog.db")
    connection.execute("DROP TRIGGER events_reject_update")
    connection.execute("UPDATE events SET payload = replace(payload, 'full', 'fuzz') WHERE kind = 'backup.started'")
    connection.commit()
    connection.close()

    result = cli("catalog", "rebuild")

    assert result.returncode == 6
    assert "refusing to rebuild" in result.stderr


def test_full_backup_repairs_damaged_chunk(repository, cache_path):
    _fill(cache_path)
    cache = BarCache(cache_path)
    first = create_backup(repository, cache, BackupType.FULL, Scope())
    chunk_id = repository.connection.execute(
        "SELECT chunk_id FROM backup_chunks WHERE backup_id = ? LIMIT 1", (first.backup_id,)
    ).fetchone()[0]
    path = repository.store.path(chunk_id)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    second = create_backup(repository, cache, BackupType.FULL)
    cache.close()

    assert second.objects_repaired == 1
    report = verify_repository(repository, second.backup_id, read_data=True)
    assert report.ok


def test_repository_path_is_file(cli_factory, tmp_path):
    blocker = tmp_path / "repo-file"
    blocker.write_text("not a directory")
    run = cli_factory(blocker, tmp_path / "cache.db", tmp_path / "xdg")

    result = run("import", tmp_path / "missing.csv")

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "cannot open the database" in result.stderr


def test_import_files_disagreeing_rejected(cli, tmp_path, cache_path):
    first = tmp_path / "BINANCE_BTCUSDT, 60.csv"
    second = tmp_path / "BINANCE_BTCUSDT, 60 (1).csv"
    first.write_text("time,open,high,low,close\n1714521600,1,2,0.5,1.5\n1714525200,1,2,0.5,1.5\n", encoding="utf-8")
    second.write_text("time,open,high,low,close\n1714525200,1,2,0.5,1.6\n1714528800,1,2,0.5,1.5\n", encoding="utf-8")

    result = cli("import", first, second)

    assert result.returncode == 3
    assert "different values" in result.stderr
    assert "1714525200" in result.stderr
    assert not cache_path.exists() or sqlite3.connect(cache_path).execute("SELECT count(*) FROM bars").fetchone()[0] == 0


def test_import_files_agreeing_merged(cli, tmp_path, cache_path):
    first = tmp_path / "BINANCE_BTCUSDT, 60.csv"
    second = tmp_path / "BINANCE_BTCUSDT, 60 (1).csv"
    first.write_text("time,open,high,low,close\n1714521600,1,2,0.5,1.5\n1714525200,1,2,0.5,1.5\n", encoding="utf-8")
    second.write_text("time,open,high,low,close\n1714525200,1,2,0.5,1.5\n1714528800,1,2,0.5,1.5\n", encoding="utf-8")

    result = cli("import", first, second)

    assert result.returncode == 0, result.stderr
    connection = sqlite3.connect(cache_path)
    assert connection.execute("SELECT count(*) FROM bars").fetchone()[0] == 3
    connection.close()
