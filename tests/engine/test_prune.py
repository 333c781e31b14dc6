"""Prune and garbage collection on real repositories: what is deleted, what is kept, locks and faults."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tvcat.catalog import events as ev
from tvcat.catalog.bars import BarColumns
from tvcat.catalog.series import Series
from tvcat.engine.backup import BackupType, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.importers import read_bar_file
from tvcat.engine.retention.gc import live_object_ids
from tvcat.engine.retention.locks import RepositoryLocked, repository_lock
from tvcat.engine.retention.policy import Policy
from tvcat.engine.retention.prune import prune
from tvcat.engine.verify import verify_repository

SAMPLE = Path(__file__).resolve().parents[2] / "engine" / "sample_data" / "EURUSD60.csv"
SERIES = Series("FX:EURUSD", "60")


@pytest.fixture
def history(repository, cache_path):
    """Three backups of a growing cache: full, incremental, full."""
    bars = read_bar_file(SAMPLE, symbol=SERIES.symbol, timeframe=SERIES.timeframe, tz="UTC").bars
    ids = []
    for stop, backup_type in ((1000, BackupType.FULL), (2000, BackupType.INCREMENTAL), (3728, BackupType.FULL)):
        cache = BarCache(cache_path)
        cache.upsert(SERIES, bars.slice(0, stop))
        ids.append(create_backup(repository, cache, backup_type).backup_id)
    return ids


def object_files(repository) -> set[str]:
    return set(repository.store.list_ids())


def events_of(repository, kind: str) -> list:
    return [record.decode() for record in ev.iter_events(repository.connection) if record.kind == kind]


def test_prune_deletes_only_unreferenced(repository, history):
    before = object_files(repository)

    result = prune(repository, Policy(keep_last=1), grace_seconds=0)

    assert [decision.backup_id for decision in result.forgotten] == history[:2]
    assert object_files(repository) == live_object_ids(repository)
    assert object_files(repository) < before
    assert result.collected.bytes_freed == result.reclaim.total_bytes
    assert verify_repository(repository, read_data=True).ok


def test_prune_keeps_chain_of_kept(repository, history):
    result = prune(repository, Policy(keep_last=2), grace_seconds=0)

    decisions = {decision.backup_id: decision for decision in result.decisions}
    assert decisions[history[1]].keep
    assert decisions[history[0]].keep
    assert decisions[history[0]].rule == "needed-by"
    assert decisions[history[0]].needed_by == history[1]
    assert verify_repository(repository, read_data=True).ok


def test_dry_run_changes_nothing(repository, history):
    catalog_before = (repository.path / "catalog.db").read_bytes()
    objects_before = object_files(repository)

    result = prune(repository, Policy(keep_last=1), dry_run=True, grace_seconds=0)

    assert len(result.forgotten) == 2
    assert result.collected is None
    assert (repository.path / "catalog.db").read_bytes() == catalog_before
    assert object_files(repository) == objects_before


def test_dry_run_matches_real_decisions(repository, history):
    planned = prune(repository, Policy(keep_last=1), dry_run=True, grace_seconds=0)
    done = prune(repository, Policy(keep_last=1), grace_seconds=0)

    assert planned.decisions == done.decisions
    [event] = events_of(repository, "retention.decided")
    assert [(d.backup_id, d.keep, d.rule) for d in event.decisions] == [
        (d.backup_id, d.keep, d.rule) for d in done.decisions]


def test_grace_period_keeps_young_objects(repository, history):
    result = prune(repository, Policy(keep_last=1), grace_seconds=3600)

    assert result.collected.objects_deleted == 0
    assert result.collected.objects_in_grace == result.reclaim.objects


def test_forgotten_backups_leave_restore_choices(repository, history):
    prune(repository, Policy(keep_last=1), grace_seconds=0)

    assert [backup.backup_id for backup in repository.backups()] == history[2:]
    rows = repository.connection.execute("SELECT backup_id, rule FROM why_forgotten ORDER BY backup_id").fetchall()
    assert rows == [(history[0], "no-rule"), (history[1], "no-rule")]


def test_running_backup_blocks_prune(repository, history):
    with repository_lock(repository, "backup", exclusive=False):
        with pytest.raises(RepositoryLocked) as caught:
            prune(repository, Policy(keep_last=1), grace_seconds=0, lock_wait_seconds=0.3)

    assert "backup" in str(caught.value)
    assert events_of(repository, "retention.decided") == []


def test_stale_lock_record_cleared(repository, history):
    record = repository.path / "locks" / "999999999@elsewhere.json"
    record.parent.mkdir(exist_ok=True)
    record.write_text(json.dumps({"pid": 999999999, "kind": "backup", "since": "2026-01-01T00:00:00+00:00"}))

    prune(repository, Policy(keep_last=3), grace_seconds=0)

    assert not record.exists()
    [cleared] = events_of(repository, "lock.stale_cleared")
    assert cleared.holder == "999999999@elsewhere"
    assert cleared.lock_kind == "backup"


def test_killed_backup_lock_does_not_block(repository, history, cache_path):
    script = (
        "import os, sys\n"
        "from tvcat.catalog.repository import Repository\n"
        "from tvcat.engine.retention.locks import repository_lock\n"
        "repository = Repository(sys.argv[1])\n"
        "with repository_lock(repository, 'backup', exclusive=False):\n"
        "    print('locked', flush=True)\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    process = subprocess.run([sys.executable, "-c", script, str(repository.path)], capture_output=True, text=True,
                             timeout=60)

    result = prune(repository, Policy(keep_last=1), grace_seconds=0, lock_wait_seconds=5)

    assert process.stdout == "locked\n"
    assert process.returncode == -9
    assert len(result.forgotten) == 2
    assert len(events_of(repository, "lock.stale_cleared")) == 1


def test_enospc_backup_fails_cleanly(repository, cache_path, history, monkeypatch):
    cache = BarCache(cache_path)
    bars = cache.read_bars(SERIES).slice(0, 10)
    cache.upsert(SERIES, BarColumns(bars.ts, bars.open + 1, bars.high + 1, bars.low + 1, bars.close + 1, bars.volume))
    real_write = os.write

    def full_disk(descriptor, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # Injected at the write call, so this runs where no filesystem can be mounted;
    # test_full_filesystem_backup_fails_cleanly fills a real tmpfs.
    monkeypatch.setattr("tvcat.catalog.objects.os.write", full_disk)
    with pytest.raises(OSError) as caught:
        create_backup(repository, cache, BackupType.FULL)
    monkeypatch.setattr("tvcat.catalog.objects.os.write", real_write)

    assert caught.value.errno == errno.ENOSPC
    [failed] = events_of(repository, "backup.failed")
    assert "No space left on device" in failed.error
    assert not list(repository.store.root.rglob("*.tmp"))
    again = create_backup(repository, BarCache(cache_path), BackupType.INCREMENTAL)
    assert again.backup_id
    assert verify_repository(repository, read_data=True).ok


def test_parallel_backup_and_prune(repository, cache_path, history, clean_environ):
    environment = {**clean_environ, "TVCAT_REPO": str(repository.path), "TVCAT_CACHE": str(cache_path),
                   "TVCAT_LANG": "en", "TVCAT_BACKUP_CONFIG__VERIFICATION__VERIFY_AFTER_BACKUP": "no"}
    commands = [["backup", "--type", "incremental"], ["prune", "--keep-last", "2", "--grace-seconds", "0"],
                ["backup", "--type", "full"], ["prune", "--keep-last", "1", "--grace-seconds", "0"],
                ["backup", "--type", "differential"], ["prune", "--keep-last", "3", "--grace-seconds", "0"]] * 2
    processes = [subprocess.Popen([sys.executable, "-m", "tvcat.cli.main", *command], env=environment,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for command in commands]
    errors = [process.communicate(timeout=300)[1] for process in processes]

    assert [process.returncode for process in processes] == [0] * len(commands), errors
    report = verify_repository(repository, read_data=True)
    assert report.ok, report.faults
    assert object_files(repository) >= live_object_ids(repository)


@pytest.fixture
def small_filesystem(tmp_path):
    """A 4 MB tmpfs mounted for the test; skipped where the machine does not let the test mount one."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); test_enospc_backup_fails_cleanly "
                    "injects ENOSPC instead")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_full_filesystem_backup_fails_cleanly(small_filesystem, cache_path, tradingview_files):
    from tvcat.catalog.repository import Repository

    files = sorted(tradingview_files, key=lambda path: path.stat().st_size)
    cache = BarCache(cache_path)
    imported = read_bar_file(files[0])
    cache.upsert(Series(imported.symbol, imported.timeframe), imported.bars)
    repository = Repository(small_filesystem / "repo")
    create_backup(repository, cache, BackupType.FULL)
    cache = BarCache(cache_path)
    for path in files[1:]:
        imported = read_bar_file(path)
        cache.upsert(Series(imported.symbol, imported.timeframe), imported.bars)
    cache.close()
    filler = small_filesystem / "filler"
    free = os.statvfs(small_filesystem).f_bavail * os.statvfs(small_filesystem).f_frsize
    with open(filler, "wb") as file:
        file.write(b"\0" * (free - 160 * 1024))

    with pytest.raises(OSError) as caught:
        create_backup(repository, BarCache(cache_path), BackupType.FULL)
    failed = events_of(repository, "backup.failed")
    leftovers = list(repository.store.root.rglob("*.tmp"))
    filler.unlink()
    again = create_backup(repository, BarCache(cache_path), BackupType.FULL)
    report = verify_repository(repository, read_data=True)
    repository.close()

    assert caught.value.errno == errno.ENOSPC
    assert len(failed) == 1
    assert leftovers == []
    assert again.bar_count > 0
    assert report.ok


def test_old_view_replaced_on_open(repo_path):
    from tvcat.catalog.repository import Repository

    old = Repository(repo_path)
    old.connection.execute("DROP VIEW backup_timeline")
    old.connection.execute("CREATE VIEW backup_timeline AS SELECT backup_id, NULL AS forgotten_at FROM backups")
    old.close()

    reopened = Repository(repo_path)
    [sql] = reopened.connection.execute("SELECT sql FROM sqlite_master WHERE name = 'backup_timeline'").fetchone()
    reopened.close()

    assert "forgotten_backups" in sql


def test_dry_run_needs_no_lock(repository, history):
    with repository_lock(repository, "backup", exclusive=False):
        result = prune(repository, Policy(keep_last=1), dry_run=True, grace_seconds=0, lock_wait_seconds=0.3)

    assert len(result.forgotten) == 2


def test_restore_of_forgotten_backup_rejected(repository, history, tmp_path):
    from tvcat.engine.restore import RestoreChoice, restore_backup
    from tvcat.errors import NotFound

    choice = RestoreChoice(repository.backup(history[0]), "test")
    prune(repository, Policy(keep_last=1), grace_seconds=0)

    with pytest.raises(NotFound) as caught:
        restore_backup(repository, choice, tmp_path / "restored.db")

    assert "was forgotten by a prune" in str(caught.value)
    assert not (tmp_path / "restored.db").exists()


def test_cleanup_skipped_while_locked(repository, history):
    import msgspec

    from tvcat.engine.config import default_config
    from tvcat.engine.retention.auto_cleanup import cleanup_before_backup

    defaults = default_config()
    cleanup = msgspec.structs.replace(defaults.backup_config.auto_cleanup, enabled=True, min_free_disk_gb=1e6)
    config = msgspec.structs.replace(defaults, backup_config=msgspec.structs.replace(
        defaults.backup_config, auto_cleanup=cleanup))

    with repository_lock(repository, "backup", exclusive=False):
        skipped = cleanup_before_backup(repository, config)

    assert skipped is None
    assert events_of(repository, "retention.decided") == []


def test_nan_grace_rejected(repository, history):
    with pytest.raises(ValueError):
        prune(repository, Policy(keep_last=1), grace_seconds=float("nan"))
