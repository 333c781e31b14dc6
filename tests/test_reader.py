"""tvcat.reader: bars as of a time or a backup, read straight from the object store."""

import fcntl
import hashlib
import json
import os
import shutil
import struct
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pytest

from tvcat.catalog.bars import VALUE_COLUMNS
from tvcat.catalog.events import parse_time
from tvcat.catalog.repository import BackupRow, Repository
from tvcat.catalog.series import Series
from tvcat.engine.backup import BackupType, Scope, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.importing import import_files
from tvcat.errors import (
    AmbiguousBackupId,
    BackupNotFound,
    DatabaseUnavailable,
    InvalidOption,
    InvalidSymbol,
    InvalidTimeframe,
    InvalidTimestamp,
    NoBackupAtTime,
    NotFound,
    ObjectMissing,
    RepositoryNotFound,
)
from tvcat.reader import BAR_SCHEMA, BackupInfo, DataFrameLibraryMissing, RepositoryLockUnavailable, open_repository

SYMBOL = "FX:EURUSD"
SECOND_SYMBOL = "FXCM:EURUSD"
TIMEFRAME = "60"
NEW_ROWS = 20
# The sample is a MetaTrader export: Date,Time,Open,High,Low,Close,Volume.
CLOSE_COLUMN = 5
SHANGHAI = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class History:
    """Three backups of the bundled sample and the cache rows of SYMBOL at the first two.

    A is a full backup of SYMBOL without its last rows. B is incremental:
    SYMBOL with the new rows and A's last bar revised, plus SECOND_SYMBOL.
    C is a full backup limited to SECOND_SYMBOL.
    """

    repo_path: Path
    cache_path: Path
    backup_a: BackupRow
    backup_b: BackupRow
    backup_c: BackupRow
    rows_a: list[tuple]
    rows_b: list[tuple]
    cli: Callable


def write_sample_part(sample: Path, target: Path, keep: int | None, revised_row: int | None) -> Path:
    """Copy the sample's first `keep` rows (all if None), raising the close of row `revised_row` (0-based)."""
    lines = sample.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    rows = rows if keep is None else rows[:keep]
    if revised_row is not None:
        cells = rows[revised_row].split(",")
        cells[CLOSE_COLUMN] = repr(float(cells[CLOSE_COLUMN]) + 0.25)
        rows[revised_row] = ",".join(cells)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return target


def series_rows(rows: list[tuple], symbol: str, timeframe: str) -> list[tuple]:
    """Keep the cache rows, as bar_rows gives them, of one series."""
    return [row for row in rows if row[0] == ("str", symbol) and row[1] == ("str", timeframe)]


@pytest.fixture(scope="module")
def history(tmp_path_factory, sample_import_arguments, cli_factory, bar_rows) -> History:
    root = tmp_path_factory.mktemp("reader")
    sample = Path(sample_import_arguments[0])
    row_count = len(sample.read_text(encoding="utf-8").splitlines()) - 1
    first_part = write_sample_part(sample, root / "first" / sample.name, row_count - NEW_ROWS, None)
    # The bar that was the last one of the first part is revised, as when it was still open.
    second_part = write_sample_part(sample, root / "second" / sample.name, None, row_count - NEW_ROWS - 1)

    repo_path, cache_path = root / "repo", root / "cache.db"
    repository = Repository(repo_path)
    cache = BarCache(cache_path)
    try:
        import_files(repository, cache, [first_part], symbol=SYMBOL, timeframe=TIMEFRAME, tz="UTC")
        backup_a = create_backup(repository, cache, BackupType.FULL)
        cache.close()
        rows_a = series_rows(bar_rows(cache_path), SYMBOL, TIMEFRAME)

        import_files(repository, cache, [second_part], symbol=SYMBOL, timeframe=TIMEFRAME, tz="UTC")
        import_files(repository, cache, [sample], symbol=SECOND_SYMBOL, timeframe=TIMEFRAME, tz="UTC")
        backup_b = create_backup(repository, cache, BackupType.INCREMENTAL)
        cache.close()
        rows_b = series_rows(bar_rows(cache_path), SYMBOL, TIMEFRAME)

        backup_c = create_backup(repository, cache, BackupType.FULL, Scope.of([SECOND_SYMBOL], None))
        rows = [repository.backup(result.backup_id) for result in (backup_a, backup_b, backup_c)]
    finally:
        cache.close()
        repository.close()

    assert backup_b.type is BackupType.INCREMENTAL
    assert len(rows_b) == len(rows_a) + NEW_ROWS
    assert rows_b[:len(rows_a) - 1] == rows_a[:-1]
    assert rows_b[len(rows_a) - 1] != rows_a[-1]
    return History(repo_path, cache_path, *rows, rows_a, rows_b, cli_factory(repo_path, cache_path, root / "xdg-data"))


def cell_bits(value):
    """Return a cell as conftest's bar_rows does: a float as its eight IEEE 754 bytes."""
    if isinstance(value, float):
        return ("real", struct.pack("<d", value))
    return (type(value).__name__, value)


def table_rows(table: pa.Table, symbol: str, timeframe: str) -> list[tuple]:
    """Return a reader table as cache rows in the form of bar_rows, for a bit-for-bit comparison."""
    columns = [table["ts"].cast(pa.int64()).to_pylist(), *(table[name].to_pylist() for name in VALUE_COLUMNS)]
    return [tuple(cell_bits(cell) for cell in (symbol, timeframe, *row)) for row in zip(*columns)]


def bar_times(table: pa.Table) -> list[int]:
    return table["ts"].cast(pa.int64()).to_pylist()


def committed(row: BackupRow) -> datetime:
    return parse_time(row.committed_at)


def test_read_equals_restore_at_each_backup(tmp_path, history, bar_rows):
    with open_repository(history.repo_path) as repository:
        for name, backup, cached in (("a", history.backup_a, history.rows_a), ("b", history.backup_b, history.rows_b)):
            target = tmp_path / f"{name}.db"
            restored = history.cli("restore", "--at", backup.committed_at, "--target-db", target)
            assert restored.returncode == 0, restored.stderr

            table = repository.read(SYMBOL, TIMEFRAME, at=backup.committed_at)
            assert table.schema == BAR_SCHEMA
            assert table_rows(table, SYMBOL, TIMEFRAME) == series_rows(bar_rows(target), SYMBOL, TIMEFRAME)
            assert table_rows(table, SYMBOL, TIMEFRAME) == cached


def test_read_between_backups(history):
    middle = committed(history.backup_a) + (committed(history.backup_b) - committed(history.backup_a)) / 2

    with open_repository(history.repo_path) as repository:
        in_shanghai = repository.read(SYMBOL, TIMEFRAME, at=middle.astimezone(SHANGHAI).isoformat())
        as_datetime = repository.read(SYMBOL, TIMEFRAME, at=middle)
        as_naive = repository.read(SYMBOL, TIMEFRAME, at=middle.replace(tzinfo=None))
        as_unix = repository.read(SYMBOL, TIMEFRAME, at=middle.timestamp())

    assert table_rows(in_shanghai, SYMBOL, TIMEFRAME) == history.rows_a
    assert as_datetime.equals(in_shanghai)
    assert as_naive.equals(in_shanghai)
    assert as_unix.equals(in_shanghai)


def test_read_default_skips_other_scope(history):
    """C is newer but limited to SECOND_SYMBOL, so SYMBOL comes from B."""
    with open_repository(history.repo_path) as repository:
        latest = repository.read(SYMBOL, TIMEFRAME)
        second = repository.read(SECOND_SYMBOL, "1h")

    assert table_rows(latest, SYMBOL, TIMEFRAME) == history.rows_b
    assert second.num_rows == len(history.rows_b)


def test_read_backup_id_prefix(history):
    prefix = history.backup_a.backup_id.split("-")[0]
    with open_repository(history.repo_path) as repository:
        by_prefix = repository.read(SYMBOL, TIMEFRAME, backup_id=prefix)
        by_id = repository.read(SYMBOL, TIMEFRAME, backup_id=history.backup_b.backup_id)

    assert table_rows(by_prefix, SYMBOL, TIMEFRAME) == history.rows_a
    assert table_rows(by_id, SYMBOL, TIMEFRAME) == history.rows_b


def test_read_range_inclusive_exclusive(history):
    with open_repository(history.repo_path) as repository:
        times = bar_times(repository.read(SYMBOL, TIMEFRAME))
        first, stop = times[100], times[200]
        cases = {
            "unix": (first, stop),
            "text": (str(first), str(stop)),
            "iso": (datetime.fromtimestamp(first, SHANGHAI).isoformat(), datetime.fromtimestamp(stop, timezone.utc).isoformat()),
            "numpy": (np.int64(first), np.int64(stop)),
        }
        for name, (start, end) in cases.items():
            selected = bar_times(repository.read(SYMBOL, TIMEFRAME, start=start, end=end))
            assert selected == times[100:200], name

        half_past = bar_times(repository.read(SYMBOL, TIMEFRAME, start=first + 0.5, end=stop + 0.5))
        only_start = bar_times(repository.read(SYMBOL, TIMEFRAME, start=first))
        only_end = bar_times(repository.read(SYMBOL, TIMEFRAME, end=stop))

    assert half_past == times[101:201]
    assert only_start == times[100:]
    assert only_end == times[:200]


def test_read_empty_ranges(history):
    with open_repository(history.repo_path) as repository:
        times = bar_times(repository.read(SYMBOL, TIMEFRAME))
        same = repository.read(SYMBOL, TIMEFRAME, start=times[5], end=times[5])
        after_last = repository.read(SYMBOL, TIMEFRAME, start=times[-1] + 1)
        before_first = repository.read(SYMBOL, TIMEFRAME, end=times[0])
        inside_gap = repository.read(SYMBOL, TIMEFRAME, start=times[0] + 1, end=times[1])

    for table in (same, after_last, before_first, inside_gap):
        assert table.num_rows == 0
        assert table.schema == BAR_SCHEMA


def test_read_range_across_windows(history):
    repository = Repository(history.repo_path, create=False)
    try:
        windows = repository.resolve_state(history.backup_b)[Series(SYMBOL, TIMEFRAME)]
    finally:
        repository.close()
    assert len(windows) >= 2
    boundary = sorted(windows)[1]
    # Three days each side, because the boundary may fall on a weekend without FX bars.
    start, end = boundary - 3 * 86_400, boundary + 3 * 86_400

    with open_repository(history.repo_path) as reader:
        times = bar_times(reader.read(SYMBOL, TIMEFRAME))
        across = bar_times(reader.read(SYMBOL, TIMEFRAME, start=start, end=end))
        from_boundary = bar_times(reader.read(SYMBOL, TIMEFRAME, start=boundary))

    assert across == [ts for ts in times if start <= ts < end]
    assert min(across) < boundary <= max(across)
    assert from_boundary == [ts for ts in times if ts >= boundary]


def test_read_skips_windows_outside_range(tmp_path, history):
    """With the first window's chunks deleted, a range in the second window still reads."""
    copy = tmp_path / "repo"
    shutil.copytree(history.repo_path, copy)
    repository = Repository(copy, create=False)
    try:
        windows = repository.resolve_state(history.backup_b)[Series(SYMBOL, TIMEFRAME)]
        first_start, second_start = sorted(windows)[:2]
        for object_id in windows[first_start].object_ids():
            assert object_id not in windows[second_start].object_ids()
            repository.store.path(object_id).unlink()
    finally:
        repository.close()

    with open_repository(copy) as reader:
        second_window = reader.read(SYMBOL, TIMEFRAME, backup_id=history.backup_b.backup_id, start=second_start)
        with pytest.raises(ObjectMissing):
            reader.read(SYMBOL, TIMEFRAME, backup_id=history.backup_b.backup_id)

    assert second_window.num_rows == windows[second_start].bar_count


def test_series_as_of_time(history):
    with open_repository(history.repo_path) as repository:
        at_a = repository.series(at=history.backup_a.committed_at)
        at_b = repository.series(at=committed(history.backup_b))
        now = repository.series()
        of_c = repository.series(backup_id=history.backup_c.backup_id)

    assert at_a == [(SYMBOL, TIMEFRAME)]
    assert at_b == [(SYMBOL, TIMEFRAME), (SECOND_SYMBOL, TIMEFRAME)]
    # C contains only SECOND_SYMBOL, but SYMBOL is outside its scope and stays as B has it.
    assert now == [(SYMBOL, TIMEFRAME), (SECOND_SYMBOL, TIMEFRAME)]
    assert of_c == [(SECOND_SYMBOL, TIMEFRAME)]


def test_backups_listing(history):
    with open_repository(history.repo_path) as repository:
        backups = repository.backups()

    assert [backup.backup_id for backup in backups] == [
        history.backup_a.backup_id, history.backup_b.backup_id, history.backup_c.backup_id]
    first = backups[0]
    assert isinstance(first, BackupInfo)
    assert first.type == "full"
    assert first.status == "committed"
    assert first.parent_id is None
    assert first.committed_at == committed(history.backup_a)
    assert first.committed_at.tzinfo is not None
    assert first.bar_count == len(history.rows_a)
    assert first.series_count == 1
    assert first.bytes_written == history.backup_a.bytes_written
    assert backups[1].parent_id == history.backup_a.backup_id


def test_backups_all_lists_forgotten(tmp_path, history, cli_factory):
    repo_copy, cache_copy = tmp_path / "repo", tmp_path / "cache.db"
    shutil.copytree(history.repo_path, repo_copy)
    shutil.copy(history.cache_path, cache_copy)
    cli = cli_factory(repo_copy, cache_copy, tmp_path / "xdg-data")
    assert cli("backup", "--type", "full").returncode == 0
    forgot = cli("forget", "--keep-last", "1")
    assert forgot.returncode == 0, forgot.stderr

    with open_repository(repo_copy) as repository:
        committed_ids = [backup.backup_id for backup in repository.backups()]
        every = {backup.backup_id: backup.status for backup in repository.backups(all=True)}

    assert len(committed_ids) == 1
    assert every[committed_ids[0]] == "committed"
    assert every[history.backup_a.backup_id] == "forgotten"
    assert every[history.backup_b.backup_id] == "forgotten"


@pytest.mark.parametrize("form", ["iso", "datetime", "unix"])
def test_read_future_time(history, form):
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    at = {"iso": tomorrow.isoformat(), "datetime": tomorrow, "unix": tomorrow.timestamp()}[form]
    with open_repository(history.repo_path) as repository, pytest.raises(NoBackupAtTime) as raised:
        repository.read(SYMBOL, TIMEFRAME, at=at)

    assert "future" in str(raised.value)
    assert history.backup_b.backup_id in str(raised.value)


def test_read_before_first_backup(history):
    just_before = committed(history.backup_a) - timedelta(microseconds=1)
    with open_repository(history.repo_path) as repository:
        with pytest.raises(NoBackupAtTime) as raised:
            repository.read(SYMBOL, TIMEFRAME, at=just_before)
        with pytest.raises(NoBackupAtTime) as raised_by_series:
            repository.series(at=just_before)

    assert history.backup_a.backup_id in str(raised.value)
    assert history.backup_a.backup_id in str(raised_by_series.value)


def test_read_series_missing_from_backup(history):
    with open_repository(history.repo_path) as repository, pytest.raises(NotFound) as raised:
        repository.read(SECOND_SYMBOL, TIMEFRAME, at=history.backup_a.committed_at)

    message = str(raised.value)
    assert f"{SECOND_SYMBOL} {TIMEFRAME}" in message
    assert history.backup_a.backup_id in message
    assert f"{SYMBOL} {TIMEFRAME}" in message


def test_read_series_never_backed_up(history):
    with open_repository(history.repo_path) as repository, pytest.raises(NotFound) as raised:
        repository.read("BINANCE:BTCUSDT", "1D")

    assert "BINANCE:BTCUSDT 1D" in str(raised.value)


@pytest.mark.parametrize("at", ["yesterday", "2024-13-01T00:00:00Z", "", "99999999999999999", True, [2024]],
                         ids=["word", "month-13", "empty", "after-year-9999", "bool", "list"])
def test_read_invalid_time(history, at):
    with open_repository(history.repo_path) as repository, pytest.raises(InvalidTimestamp) as raised:
        repository.read(SYMBOL, TIMEFRAME, at=at)

    assert repr(str(at)) in str(raised.value) or repr(at) in str(raised.value)


def test_read_invalid_range_bound(history):
    with open_repository(history.repo_path) as repository:
        with pytest.raises(InvalidTimestamp) as raised:
            repository.read(SYMBOL, TIMEFRAME, start="not a time")
        with pytest.raises(InvalidOption) as reversed_range:
            repository.read(SYMBOL, TIMEFRAME, start="2019-03-02", end="2019-03-01")

    assert "'not a time'" in str(raised.value)
    assert "2019-03-02T00:00:00Z" in str(reversed_range.value)


def test_read_argument_errors(history):
    with open_repository(history.repo_path) as repository:
        with pytest.raises(InvalidOption):
            repository.read(SYMBOL, TIMEFRAME, at=history.backup_a.committed_at, backup_id=history.backup_a.backup_id)
        with pytest.raises(InvalidSymbol):
            repository.read("EURUSD", TIMEFRAME)
        with pytest.raises(InvalidTimeframe):
            repository.read(SYMBOL, "7x")
        with pytest.raises(AmbiguousBackupId):
            repository.read(SYMBOL, TIMEFRAME, backup_id="2")
        with pytest.raises(BackupNotFound):
            repository.read(SYMBOL, TIMEFRAME, backup_id="19700101T")


def test_open_missing_repository(tmp_path):
    with pytest.raises(RepositoryNotFound):
        open_repository(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RepositoryNotFound):
        open_repository(empty)

    assert not (tmp_path / "absent").exists()
    assert list(empty.iterdir()) == []


def test_open_invalid_catalog(tmp_path):
    (tmp_path / "catalog.db").write_bytes(b"not an SQLite database, only some text" * 100)

    with pytest.raises(DatabaseUnavailable) as raised:
        open_repository(tmp_path)

    assert str(tmp_path / "catalog.db") in str(raised.value)


def test_read_lock_unavailable(tmp_path, history):
    """A `locks` path that is a file replaces a locks directory that cannot be written."""
    copy = tmp_path / "repo"
    shutil.copytree(history.repo_path, copy)
    shutil.rmtree(copy / "locks", ignore_errors=True)
    (copy / "locks").write_text("", encoding="utf-8")

    with open_repository(copy) as repository, pytest.raises(RepositoryLockUnavailable) as raised:
        repository.read(SYMBOL, TIMEFRAME)

    assert str(copy) in str(raised.value)
    assert "locks directory" in str(raised.value)


def test_reading_leaves_catalog_unchanged(history):
    def catalog_digest() -> str:
        files = sorted(history.repo_path.glob("catalog.db*"))
        return hashlib.sha256(b"".join(path.name.encode() + path.read_bytes() for path in files)).hexdigest()

    before = catalog_digest()
    with open_repository(history.repo_path) as repository:
        repository.backups()
        repository.series()
        repository.read(SYMBOL, TIMEFRAME, at=history.backup_a.committed_at)

    assert catalog_digest() == before


def test_stream_holds_shared_lock(history):
    locks = history.repo_path / "locks"
    with open_repository(history.repo_path) as repository:
        with repository.stream(SYMBOL, TIMEFRAME) as bars:
            descriptor = os.open(locks / "repository.lock", os.O_RDWR)
            try:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.flock(descriptor, fcntl.LOCK_UN)
                records = [json.loads(path.read_text(encoding="utf-8")) for path in locks.glob("*.json")]
                first_batch = next(bars)
            finally:
                os.close(descriptor)

        descriptor = os.open(locks / "repository.lock", os.O_RDWR)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(descriptor)

    assert [record["kind"] for record in records] == ["read"]
    assert first_batch.num_rows > 0
    assert list(locks.glob("*.json")) == []


def test_stream_closed_after_block(history):
    with open_repository(history.repo_path) as repository:
        with repository.stream(SYMBOL, TIMEFRAME) as bars:
            pass
        with pytest.raises(ValueError):
            next(bars)


def test_read_pandas(history):
    pandas = pytest.importorskip("pandas")
    with open_repository(history.repo_path) as repository:
        table = repository.read(SYMBOL, TIMEFRAME)
        frame = repository.read_pandas(SYMBOL, TIMEFRAME, start="2019-03-01", end="2019-04-01")

    assert isinstance(frame, pandas.DataFrame)
    assert frame.index.name == "ts"
    assert str(frame.index.tz) == "UTC"
    assert list(frame.columns) == list(VALUE_COLUMNS)
    expected = table.filter(pa.compute.and_(
        pa.compute.greater_equal(table["ts"], pa.scalar(datetime(2019, 3, 1, tzinfo=timezone.utc), BAR_SCHEMA.field("ts").type)),
        pa.compute.less(table["ts"], pa.scalar(datetime(2019, 4, 1, tzinfo=timezone.utc), BAR_SCHEMA.field("ts").type)),
    ))
    assert len(frame) == expected.num_rows > 0
    assert frame["close"].tolist() == expected["close"].to_pylist()
    assert [int(moment.timestamp()) for moment in frame.index] == bar_times(expected)


def test_read_polars(history):
    polars = pytest.importorskip("polars")
    with open_repository(history.repo_path) as repository:
        table = repository.read(SYMBOL, TIMEFRAME)
        frame = repository.read_polars(SYMBOL, TIMEFRAME)

    assert isinstance(frame, polars.DataFrame)
    assert frame.columns == ["ts", *VALUE_COLUMNS]
    assert frame["close"].to_list() == table["close"].to_pylist()
    assert [int(moment.timestamp()) for moment in frame["ts"].to_list()] == bar_times(table)


@pytest.mark.parametrize("library", ["pandas", "polars"])
def test_dataframe_library_missing(history, monkeypatch, library):
    # A None entry in sys.modules makes `import` raise ImportError, as if the package were absent.
    monkeypatch.setitem(sys.modules, library, None)
    with open_repository(history.repo_path) as repository, pytest.raises(DataFrameLibraryMissing) as raised:
        getattr(repository, f"read_{library}")(SYMBOL, TIMEFRAME)

    assert isinstance(raised.value, ImportError)
    assert library in str(raised.value)
    assert "pip install 'tvcat[dataframe]'" in str(raised.value)


# Real exports with no volume, close-only bars, weekly bars and one-minute bars over several windows.
REAL_EXPORTS = ("FX_EURUSD, 1D.csv", "CRYPTO_SOLUSD, 1D.csv", "TVC_SILVER, 1W.csv", "CME_MINI_ES1!, 1min.csv")


def test_read_real_exports_equal_restore(tmp_path, tradingview_files, cli_factory, bar_rows):
    """Every series of real exports at two backups, NULL values included, equals its restore."""
    exports = [path for path in tradingview_files if path.name in REAL_EXPORTS]
    assert len(exports) == len(REAL_EXPORTS)
    repo_path, cache_path = tmp_path / "repo", tmp_path / "cache.db"
    shortened = []
    for path in exports:
        lines = path.read_text(encoding="utf-8").splitlines()
        copy = tmp_path / "shortened" / path.name
        copy.parent.mkdir(exist_ok=True)
        copy.write_text("\n".join(lines[:-10]) + "\n", encoding="utf-8")
        shortened.append(copy)
    writer, cache = Repository(repo_path), BarCache(cache_path)
    try:
        for files, backup_type in ((shortened, BackupType.FULL), (exports, BackupType.INCREMENTAL)):
            import_files(writer, cache, files)
            create_backup(writer, cache, backup_type)
    finally:
        cache.close()
        writer.close()

    cli = cli_factory(repo_path, cache_path, tmp_path / "xdg-data")
    null_volumes = null_opens = 0
    with open_repository(repo_path) as repository:
        backups = repository.backups()
        assert len(backups) == 2
        for backup in backups:
            at = backup.committed_at.isoformat()
            target = tmp_path / f"{backup.type}.db"
            restored = cli("restore", "--at", at, "--target-db", target)
            assert restored.returncode == 0, restored.stderr
            rows = bar_rows(target)

            listed = repository.series(at=at)
            assert len(listed) == len(exports)
            for symbol, timeframe in listed:
                table = repository.read(symbol, timeframe, at=at)
                assert table_rows(table, symbol, timeframe) == series_rows(rows, symbol, timeframe), (symbol, timeframe)
                null_volumes += table["volume"].null_count
                null_opens += table["open"].null_count

    assert null_volumes > 0
    assert null_opens > 0


def test_read_bounds_as_date_and_datetime64(history):
    with open_repository(history.repo_path) as repository:
        by_text = repository.read(SYMBOL, TIMEFRAME, start="2019-03-01T00:00:00Z", end="2019-03-05T00:00:00Z")
        by_date = repository.read(SYMBOL, TIMEFRAME, start=date(2019, 3, 1), end=date(2019, 3, 5))
        by_numpy = repository.read(SYMBOL, TIMEFRAME, start=np.datetime64("2019-03-01"),
                                   end=np.datetime64("2019-03-05T00:00"))

    assert by_text.num_rows > 0
    assert by_date.equals(by_text)
    assert by_numpy.equals(by_text)


def test_read_after_close_says_so(history):
    from tvcat.reader import RepositoryClosed

    with open_repository(history.repo_path) as repository:
        pass

    with pytest.raises(RepositoryClosed, match="was closed"):
        repository.read(SYMBOL, TIMEFRAME)
    repository.close()
