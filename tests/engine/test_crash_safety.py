"""A backup killed with SIGKILL at any moment leaves a repository that verifies and takes the next backup."""

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tvcat.catalog.bars import BarColumns
from tvcat.catalog.repository import Repository
from tvcat.catalog.series import Series, window_span
from tvcat.engine.backup import BackupType, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.restore import RestoreChoice, restore_backup
from tvcat.engine.verify import verify_repository

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX only")

SERIES_COUNT = 6
BARS_PER_SERIES = 50_000
KILL_ROUNDS = 12
# Fixed so that a failure can be replayed with the same kill delays.
KILL_SEED = 20_241_204

# The child opens everything first, reports "ready", waits for a line on
# stdin and then backs up, so that the kill delays fall inside the backup.
BACKUP_SCRIPT = """
import sys
from tvcat.catalog.repository import Repository
from tvcat.engine.backup import BackupType, create_backup
from tvcat.engine.cache import BarCache

repository = Repository(sys.argv[1])
cache = BarCache(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
create_backup(repository, cache, BackupType.FULL)
print("committed", flush=True)
"""


def minute_bars(generator: np.random.Generator, count: int, price: float) -> BarColumns:
    """Return one-minute bars of a random walk with two-decimal prices and positive volumes."""
    start = 1_700_000_000 - 1_700_000_000 % 60
    ts = start + 60 * np.arange(count, dtype=np.int64)
    close = np.round(price * np.exp(np.cumsum(generator.normal(0, 2e-4, count))), 2)
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.round(np.maximum(open_, close) + generator.exponential(0.05, count), 2)
    low = np.round(np.minimum(open_, close) - generator.exponential(0.05, count), 2)
    volume = np.round(generator.lognormal(3, 1, count), 3)
    return BarColumns.from_arrays(ts, open_, high, low, close, volume)


def touch_every_window(cache: BarCache) -> None:
    """Raise one close in every window by 0.01, so that the next full backup writes new chunks.

    The bars are gap-free, so the first bar of each window opens at a
    multiple of the window span, and the first window starts at the first bar.
    """
    cache.connection.execute(
        "UPDATE bars SET close = close + 0.01 WHERE ts % ? = 0 OR ts = (SELECT min(ts) FROM bars)",
        (window_span("1"),),
    )


def start_backup(repo_path: Path, cache_path: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", BACKUP_SCRIPT, str(repo_path), str(cache_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout.readline() == "ready\n"
    return process


def test_backup_survives_sigkill(tmp_path, bar_rows):
    repo_path, cache_path = tmp_path / "repo", tmp_path / "cache.db"
    generator = np.random.default_rng(KILL_SEED)
    cache = BarCache(cache_path)
    repository = Repository(repo_path)
    try:
        for number in range(SERIES_COUNT):
            cache.upsert(Series(f"TEST:CRASH{number}", "1"), minute_bars(generator, BARS_PER_SERIES, 50.0 * (number + 1)))
        cache.close()

        # One uninterrupted run gives the span the kill delays are drawn from.
        process = start_backup(repo_path, cache_path)
        began = time.monotonic()
        stdout, stderr = process.communicate("go\n", timeout=120)
        duration = time.monotonic() - began
        assert process.returncode == 0, stderr

        delays = random.Random(KILL_SEED)
        killed = 0
        for round_number in range(KILL_ROUNDS):
            touch_every_window(cache)
            cache.close()

            process = start_backup(repo_path, cache_path)
            process.stdin.write("go\n")
            process.stdin.flush()
            time.sleep(delays.uniform(0, duration))
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=120)
            killed += process.returncode == -signal.SIGKILL

            report = verify_repository(repository, read_data=True)
            assert report.faults == [], f"round {round_number}"
            assert report.broken_backups == [], f"round {round_number}"

            # Alternate types, so that both a new chain and one built on the killed run's
            # parent follow a crash.
            after_type = BackupType.INCREMENTAL if round_number % 2 else BackupType.FULL
            after = create_backup(repository, cache, after_type)
            assert after.backup_id == repository.backups()[-1].backup_id, f"round {round_number}"

        # Most kills must land while the backup runs, or the test proves little.
        assert killed >= KILL_ROUNDS // 2

        started = repository.backups(status="started")
        committed = repository.backups()
        assert len(committed) >= KILL_ROUNDS + 1
        assert len(started) <= killed

        cache.close()
        target = tmp_path / "restored.db"
        restore_backup(repository, RestoreChoice(committed[-1], "crash test"), target)
        assert bar_rows(target) == bar_rows(cache_path)
    finally:
        cache.close()
        repository.close()
