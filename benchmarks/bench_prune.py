"""Measure retention decisions and garbage collection on a large synthetic repository.

Run with `python benchmarks/bench_prune.py [--backups 10000] [--objects 1000000]`.

The repository is built directly in the projection tables (`backups`,
`backup_chunks`) and the object directory, not through the event log, so
that building it takes minutes instead of hours. Decisions and collection
read only those tables and files. Every backup references `--refs` objects,
consecutive backups share most of them, and each object file is 64 bytes.
Steps:

1. the decisions of a restic-like policy (keep-last 10, daily 7, weekly 4,
   monthly 12, yearly 3) over all backups, as a pure function,
2. a full prune: decisions, the retention.decided event, and garbage
   collection of the objects only forgotten backups referenced.

It reports seconds, objects deleted per second, peak RSS, and the share of
collection time spent per object file listed, and writes the figures to
benchmarks/results/prune-<UTC time>.json.
"""

import argparse
import json
import os
import platform
import resource
import secrets
import sqlite3
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tvcat.catalog import events as ev
from tvcat.catalog.repository import Repository
from tvcat.engine.retention.decide import decide
from tvcat.engine.retention.policy import Policy
from tvcat.engine.retention.prune import committed_backups, prune

POLICY = Policy(keep_last=10, keep_daily=7, keep_weekly=4, keep_monthly=12, keep_yearly=3)
START = datetime(2020, 1, 1, tzinfo=timezone.utc)


def build(root: Path, backups: int, objects: int, refs: int) -> Repository:
    """Create the repository: `backups` full backups, one every few hours, over a pool of `objects` ids."""
    repository = Repository(root)
    pool = [secrets.token_hex(32) for _ in range(objects)]
    step = max(1, (objects - refs) // max(backups - 1, 1))
    connection: sqlite3.Connection = repository.connection
    connection.execute("BEGIN")
    for index in range(backups):
        committed = START + timedelta(hours=7 * index)
        backup_id = f"{committed.strftime('%Y%m%dT%H%M%S.%fZ')}-full-{index:05d}"
        first = min(index * step, objects - refs)
        manifest = pool[first]
        connection.execute(
            "INSERT INTO backups (backup_id, type, status, started_at, committed_at, manifest_id, bytes_written) "
            "VALUES (?, 'full', 'committed', ?, ?, ?, ?)",
            (backup_id, ev.format_time(committed), ev.format_time(committed), manifest, 64 * step),
        )
        connection.executemany(
            "INSERT INTO backup_chunks (backup_id, symbol, timeframe, window_start, position, chunk_id, bar_count) "
            "VALUES (?, 'BENCH:X', '1', ?, 0, ?, 1)",
            [(backup_id, offset, pool[first + offset]) for offset in range(1, refs)],
        )
    connection.execute("COMMIT")

    old = time.time() - 7 * 86400
    for object_id in pool:
        path = repository.store.path(object_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as file:
            file.write(b"\0" * 64)
        os.utime(path, (old, old))
    return repository


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backups", type=int, default=10_000)
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--refs", type=int, default=200, help="objects referenced by each backup")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tvcat-bench-prune-") as directory:
        started = time.perf_counter()
        repository = build(Path(directory) / "repo", arguments.backups, arguments.objects, arguments.refs)
        built = time.perf_counter() - started

        backups = committed_backups(repository)
        started = time.perf_counter()
        decisions = decide(backups, POLICY, datetime.now(timezone.utc))
        decision_seconds = time.perf_counter() - started

        started = time.perf_counter()
        result = prune(repository, POLICY, grace_seconds=0)
        prune_seconds = time.perf_counter() - started
        repository.close()

    collected = result.collected
    figures = {
        "machine": platform.platform(), "python": platform.python_version(),
        "backups": arguments.backups, "objects": arguments.objects, "refs_per_backup": arguments.refs,
        "build_seconds": built, "decision_seconds": decision_seconds,
        "kept": sum(decision.keep for decision in decisions), "prune_seconds": prune_seconds,
        "collection_seconds": collected.duration_seconds, "objects_deleted": collected.objects_deleted,
        "objects_live": collected.objects_live, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(f"{arguments.backups} backups, {arguments.objects} objects: decisions {decision_seconds:.3f} s "
          f"(target < 1 s: {'met' if decision_seconds < 1 else 'missed'}); prune {prune_seconds:.2f} s, of which "
          f"collection {collected.duration_seconds:.2f} s for {collected.objects_deleted} objects deleted "
          f"and {collected.objects_live} live; peak RSS {figures['peak_rss_mb']:.0f} MB")
    output = Path(__file__).resolve().parent / "results"
    output.mkdir(exist_ok=True)
    name = f"prune-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    (output / name).write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
