"""Backup chains, and what verify and restore do when an object of a chain is missing or damaged."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tvcat.catalog.bars import BarColumns
from tvcat.catalog.chunks import decode_chunk
from tvcat.catalog.repository import BackupRow, Repository
from tvcat.catalog.series import Series, window_start
from tvcat.engine.backup import BackupType, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.importing import import_files
from tvcat.engine.restore import RestoreChoice, restore_backup
from tvcat.engine.verify import verify_repository
from tvcat.errors import EXIT_INTEGRITY, ObjectCorrupted

EXPORTS = ("CME_MINI_ES1!, 1D.csv", "FX_EURUSD, 1D.csv", "CRYPTO_SOLUSD, 1D.csv")
ES = Series("CME_MINI:ES1!", "1D")
EURUSD = Series("FX:EURUSD", "1D")
SOLUSD = Series("CRYPTO:SOLUSD", "1D")
EDITED_INDEX = 100


@pytest.fixture
def exports(data_dir: Path) -> list[Path]:
    return [data_dir / "tradingview" / name for name in EXPORTS]


def set_close(cache: BarCache, series: Series, index: int, close: float) -> int:
    """Set the close of the bar at `index` of `series` and return that bar's time."""
    bar = cache.read_bars(series).slice(index, index + 1)
    cache.upsert(series, BarColumns(bar.ts, bar.open, bar.high, bar.low, bar.close * 0 + close, bar.volume))
    return int(bar.ts[0])


def close_at(cache: BarCache, series: Series, index: int) -> float:
    return float(cache.read_bars(series).close[index])


def backup(repository: Repository, cache: BarCache, backup_type: BackupType, bar_rows) -> tuple[BackupRow, list]:
    """Take a backup and return its row with the cache rows it contains."""
    result = create_backup(repository, cache, backup_type)
    assert result.type is backup_type
    cache.close()
    return repository.backup(result.backup_id), bar_rows(cache.path)


def restore_to(repository: Repository, row: BackupRow, target: Path) -> None:
    restore_backup(repository, RestoreChoice(row, "test"), target)


def manifest_objects(repository: Repository, *rows: BackupRow) -> set[str]:
    """Return the ids of the manifests of `rows` and of every chunk their own manifests name."""
    ids = {row.manifest_id for row in rows}
    for row in rows:
        ids |= {chunk_id for (chunk_id,) in repository.connection.execute(
            "SELECT chunk_id FROM backup_chunks WHERE backup_id = ? AND chunk_id IS NOT NULL", (row.backup_id,))}
    return ids


def window_chunk(repository: Repository, row: BackupRow, series: Series, start: int) -> str:
    """Return the base chunk id of one window in a backup's own manifest."""
    (chunk_id,) = repository.connection.execute(
        "SELECT chunk_id FROM backup_chunks WHERE backup_id = ? AND symbol = ? AND timeframe = ? "
        "AND window_start = ? AND position = 0",
        (row.backup_id, series.symbol, series.timeframe, start),
    ).fetchone()
    return chunk_id


def window_patches(repository: Repository, row: BackupRow, series: Series, start: int) -> list[str]:
    """Return the patch chunk ids of one window in a backup's own manifest, in order."""
    return [chunk_id for (chunk_id,) in repository.connection.execute(
        "SELECT chunk_id FROM backup_chunks WHERE backup_id = ? AND symbol = ? AND timeframe = ? "
        "AND window_start = ? AND position > 0 ORDER BY position",
        (row.backup_id, series.symbol, series.timeframe, start),
    )]


@dataclass
class Chain:
    """Backups full <- incremental and full <- differential <- last, with the cache rows at each."""

    full: BackupRow
    incremental: BackupRow
    differential: BackupRow
    last: BackupRow
    rows: dict[str, list]


@pytest.fixture
def chain(repository, cache, exports, bar_rows) -> Chain:
    import_files(repository, cache, exports)
    original = close_at(cache, ES, EDITED_INDEX)
    rows = {}

    full, rows["full"] = backup(repository, cache, BackupType.FULL, bar_rows)
    set_close(cache, ES, EDITED_INDEX, original + 0.25)
    incremental, rows["incremental"] = backup(repository, cache, BackupType.INCREMENTAL, bar_rows)
    # The differential changes the same bar again, so the incremental's patch is its own.
    set_close(cache, ES, EDITED_INDEX, original + 0.5)
    set_close(cache, EURUSD, 10, 1.5)
    differential, rows["differential"] = backup(repository, cache, BackupType.DIFFERENTIAL, bar_rows)
    set_close(cache, SOLUSD, 20, 99.5)
    last, rows["last"] = backup(repository, cache, BackupType.INCREMENTAL, bar_rows)
    return Chain(full, incremental, differential, last, rows)


def test_chain_members(repository, chain):
    def member_ids(row: BackupRow) -> list[str]:
        return [member.backup_id for member in repository.chain(row)]

    assert member_ids(chain.full) == [chain.full.backup_id]
    assert member_ids(chain.incremental) == [chain.full.backup_id, chain.incremental.backup_id]
    assert member_ids(chain.differential) == [chain.full.backup_id, chain.differential.backup_id]
    assert member_ids(chain.last) == [chain.full.backup_id, chain.differential.backup_id, chain.last.backup_id]
    assert chain.differential.parent_id == chain.full.backup_id
    assert chain.last.base_full_id == chain.full.backup_id


def test_chain_view_matches_repository(repository, chain):
    rows = repository.connection.execute(
        "SELECT member_id FROM backup_chain WHERE backup_id = ? ORDER BY depth DESC", (chain.last.backup_id,)
    ).fetchall()
    assert [member_id for (member_id,) in rows] == [member.backup_id for member in repository.chain(chain.last)]


def test_every_backup_restores_its_state(tmp_path, repository, chain, bar_rows):
    for name in ("full", "incremental", "differential", "last"):
        target = tmp_path / f"{name}.db"
        restore_to(repository, getattr(chain, name), target)
        assert bar_rows(target) == chain.rows[name], name


def test_differential_restores_with_full_only(tmp_path, repository, chain, bar_rows):
    needed = manifest_objects(repository, chain.full, chain.differential)
    removed = [object_id for object_id in repository.store.list_ids() if object_id not in needed]
    for object_id in removed:
        repository.store.path(object_id).unlink()

    assert chain.incremental.manifest_id in removed
    target = tmp_path / "differential.db"
    restore_to(repository, chain.differential, target)
    assert bar_rows(target) == chain.rows["differential"]

    report = verify_repository(repository, read_data=True)
    assert report.broken_backups == sorted([chain.incremental.backup_id, chain.last.backup_id])
    assert report.newest_sound_backup == chain.differential.backup_id


def test_incremental_needs_its_parent_manifest(tmp_path, repository, chain, cli):
    repository.store.path(chain.differential.manifest_id).unlink()

    report = verify_repository(repository)
    assert report.broken_backups == sorted([chain.differential.backup_id, chain.last.backup_id])
    assert report.newest_sound_backup == chain.incremental.backup_id

    target = tmp_path / "last.db"
    result = cli("restore", chain.last.backup_id, "--target-db", target)
    assert result.returncode == EXIT_INTEGRITY, result.stderr
    assert not target.exists()


@dataclass
class SharedChunk:
    """Four backups, three of which need the first full's chunk of one window.

    Those three are the first full, an incremental patched on top of that
    chunk, and a full taken after the edit was reverted. The second full
    stores the edited window as a new chunk.
    """

    first_full: BackupRow
    patched: BackupRow
    second_full: BackupRow
    reverted_full: BackupRow
    chunk_id: str


@pytest.fixture
def shared_chunk(repository, cache, exports, bar_rows) -> SharedChunk:
    import_files(repository, cache, [exports[0]])
    original = close_at(cache, ES, EDITED_INDEX)
    first_full, _ = backup(repository, cache, BackupType.FULL, bar_rows)

    edited_ts = set_close(cache, ES, EDITED_INDEX, original + 0.25)
    patched, _ = backup(repository, cache, BackupType.INCREMENTAL, bar_rows)
    second_full, _ = backup(repository, cache, BackupType.FULL, bar_rows)
    set_close(cache, ES, EDITED_INDEX, original)
    reverted_full, _ = backup(repository, cache, BackupType.FULL, bar_rows)

    start = window_start(ES.timeframe, edited_ts)
    chunk_id = window_chunk(repository, first_full, ES, start)
    # The scenario depends on these facts of deduplication and patching.
    assert window_chunk(repository, patched, ES, start) == chunk_id
    assert len(window_patches(repository, patched, ES, start)) == 1
    assert window_chunk(repository, second_full, ES, start) != chunk_id
    assert window_chunk(repository, reverted_full, ES, start) == chunk_id
    return SharedChunk(first_full, patched, second_full, reverted_full, chunk_id)


def test_verify_names_backups_needing_chunk(repository, shared_chunk):
    repository.store.path(shared_chunk.chunk_id).unlink()
    expected = sorted([
        shared_chunk.first_full.backup_id, shared_chunk.patched.backup_id, shared_chunk.reverted_full.backup_id,
    ])

    report = verify_repository(repository)

    assert report.broken_backups == expected
    assert report.newest_sound_backup == shared_chunk.second_full.backup_id
    assert len(report.faults) == 1
    assert report.faults[0].problem == "missing"
    assert report.faults[0].object_id == shared_chunk.chunk_id
    assert report.faults[0].backups == expected
    assert report.faults[0].series == [str(ES)]


def test_verify_cli_missing_chunk_exit_code(repository, shared_chunk, cli):
    repository.store.path(shared_chunk.chunk_id).unlink()

    result = cli("verify")

    assert result.returncode == EXIT_INTEGRITY, result.stderr
    assert shared_chunk.chunk_id in result.stdout
    for broken in (shared_chunk.first_full, shared_chunk.patched, shared_chunk.reverted_full):
        assert broken.backup_id in result.stderr
    assert f"restore {shared_chunk.second_full.backup_id} instead" in result.stderr


def test_verify_one_backup_checks_its_chain(repository, shared_chunk, cli):
    repository.store.path(shared_chunk.chunk_id).unlink()

    sound = cli("verify", shared_chunk.second_full.backup_id)
    broken = cli("verify", shared_chunk.patched.backup_id)

    assert sound.returncode == 0, sound.stderr
    assert "checked 1 backup" in sound.stdout
    assert broken.returncode == EXIT_INTEGRITY, broken.stderr
    assert shared_chunk.patched.backup_id in broken.stderr
    assert shared_chunk.first_full.backup_id not in broken.stderr


def test_restore_missing_chunk_keeps_target(tmp_path, repository, shared_chunk, cli):
    target = tmp_path / "existing.db"
    restore_to(repository, shared_chunk.second_full, target)
    before = target.read_bytes()
    repository.store.path(shared_chunk.chunk_id).unlink()

    failed = cli("restore", shared_chunk.patched.backup_id, "--target-db", target, "--force")

    assert failed.returncode == EXIT_INTEGRITY, failed.stderr
    assert shared_chunk.chunk_id in failed.stderr
    assert target.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []

    sound = cli("restore", shared_chunk.second_full.backup_id, "--target-db", tmp_path / "sound.db")
    assert sound.returncode == 0, sound.stderr


def invert_middle(data: bytes) -> bytes:
    """Invert eight bytes in the middle of the payload that follows the 16-byte object header."""
    middle = 16 + (len(data) - 16) // 2
    return data[:middle] + bytes(byte ^ 0xFF for byte in data[middle:middle + 8]) + data[middle + 8:]


DAMAGE = {
    "flipped-payload": invert_middle,
    "flipped-magic": lambda data: bytes([data[0] ^ 0x01]) + data[1:],
    "truncated-half": lambda data: data[: len(data) // 2],
    "truncated-to-header": lambda data: data[:16],
    "truncated-last-byte": lambda data: data[:-1],
    "empty": lambda data: b"",
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_verify_read_data_finds_damage(repository, shared_chunk, cli, damage):
    path = repository.store.path(shared_chunk.chunk_id)
    path.write_bytes(damage(path.read_bytes()))
    expected = sorted([
        shared_chunk.first_full.backup_id, shared_chunk.patched.backup_id, shared_chunk.reverted_full.backup_id,
    ])

    report = verify_repository(repository, read_data=True)

    assert [fault.problem for fault in report.faults] == ["corrupted"]
    assert report.faults[0].object_id == shared_chunk.chunk_id
    assert report.broken_backups == expected
    assert report.newest_sound_backup == shared_chunk.second_full.backup_id

    result = cli("verify", "--read-data")
    assert result.returncode == EXIT_INTEGRITY, result.stderr
    assert "Traceback" not in result.stderr
    assert "corrupted" in result.stdout


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_restore_damaged_chunk_keeps_target(tmp_path, repository, shared_chunk, cli, damage):
    target = tmp_path / "existing.db"
    restore_to(repository, shared_chunk.second_full, target)
    before = target.read_bytes()
    path = repository.store.path(shared_chunk.chunk_id)
    path.write_bytes(damage(path.read_bytes()))

    result = cli("restore", shared_chunk.patched.backup_id, "--target-db", target, "--force")

    assert result.returncode == EXIT_INTEGRITY, result.stderr
    assert "Traceback" not in result.stderr
    assert target.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []


def test_verify_damaged_patch_breaks_one(repository, shared_chunk):
    patch_ids = repository.connection.execute(
        "SELECT chunk_id FROM backup_chunks WHERE backup_id = ? AND position > 0",
        (shared_chunk.patched.backup_id,),
    ).fetchall()
    assert len(patch_ids) == 1
    path = repository.store.path(patch_ids[0][0])
    path.write_bytes(invert_middle(path.read_bytes()))

    report = verify_repository(repository, read_data=True)

    assert report.broken_backups == [shared_chunk.patched.backup_id]


def test_verify_damaged_manifest_breaks_chain(repository, chain, cli, tmp_path):
    path = repository.store.path(chain.full.manifest_id)
    path.write_bytes(invert_middle(path.read_bytes()))

    report = verify_repository(repository)

    assert report.broken_backups == sorted(
        row.backup_id for row in (chain.full, chain.incremental, chain.differential, chain.last)
    )
    assert report.newest_sound_backup is None
    assert "unreadable-manifest" in [fault.problem for fault in report.faults]

    result = cli("restore", chain.last.backup_id, "--target-db", tmp_path / "never.db")
    assert result.returncode == EXIT_INTEGRITY, result.stderr
    assert not (tmp_path / "never.db").exists()


def test_decode_never_returns_wrong_bars(repository, shared_chunk):
    """Every one-byte change and truncation of a chunk is rejected or decodes to the same bars.

    Some bits of a zstd frame do not change its output, so a damaged file may
    still contain the right bars. decode_chunk proves them by their hash.
    """
    chunk_id = shared_chunk.chunk_id
    data = repository.store.get(chunk_id)
    expected = decode_chunk(chunk_id, data)
    assert len(expected) > 1000
    damaged = [data[:length] for length in range(len(data))]
    for position in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            changed = bytearray(data)
            changed[position] ^= mask
            damaged.append(bytes(changed))

    wrong = []
    for candidate in damaged:
        try:
            bars = decode_chunk(chunk_id, candidate)
        except ObjectCorrupted:
            continue
        if not bars.bit_equal(expected):
            wrong.append(candidate)
    assert wrong == []


def test_snapshot_restores_alone(tmp_path, repository, cache, chain, bar_rows):
    set_close(cache, EURUSD, 20, 1.25)
    snapshot, rows = backup(repository, cache, BackupType.SNAPSHOT, bar_rows)
    assert [member.backup_id for member in repository.chain(snapshot)] == [snapshot.backup_id]

    needed = manifest_objects(repository, snapshot)
    for object_id in list(repository.store.list_ids()):
        if object_id not in needed:
            repository.store.path(object_id).unlink()

    target = tmp_path / "snapshot.db"
    restore_to(repository, snapshot, target)
    assert bar_rows(target) == rows


def test_incremental_after_restore_into_cache(tmp_path, repository, chain, cli, cache_path, bar_rows):
    """A restored cache has a new identity, so the next incremental compares every window with its parent."""
    restored = cli("restore", chain.full.backup_id, "--force")
    assert restored.returncode == 0, restored.stderr
    assert bar_rows(cache_path) == chain.rows["full"]

    result = cli("backup", "--type", "incremental", "--json")
    assert result.returncode == 0, result.stderr
    after = repository.backup(json.loads(result.stdout)["backup_id"])
    assert after.parent_id == chain.last.backup_id

    target = tmp_path / "after.db"
    restore_to(repository, after, target)
    assert bar_rows(target) == chain.rows["full"]
