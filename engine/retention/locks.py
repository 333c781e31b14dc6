"""The repository lock: backups share it, prune and garbage collection take it alone.

The lock is an fcntl.flock on `locks/repository.lock` in the repository.
The kernel releases a flock when its process dies, even by SIGKILL, so a
crashed holder never blocks the next run. Each holder also writes a record
`locks/<pid>@<host>.json` saying who holds the lock, of which kind and
since when. An exclusive holder finds the records whose process is gone,
removes them and appends `lock.stale_cleared` for each, so the log shows
the crash.
"""

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from ...catalog import events as ev
from ...catalog.repository import Repository
from ...errors import TvcatError
from ...i18n import N_, _

LOCK_DIRECTORY = "locks"
LOCK_FILE = "repository.lock"
POLL_SECONDS = 0.2


class RepositoryLocked(TvcatError):
    template = N_(
        "the repository is in use by {holders}: waited {seconds:g} s. Try again when it has finished"
    )


def _holder() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


@contextmanager
def repository_lock(repository: Repository, kind: str, exclusive: bool, wait_seconds: float = 60.0) -> Iterator[None]:
    """Hold the repository lock, shared for `kind` 'backup', exclusive for 'prune'.

    Raises RepositoryLocked, naming the holders, when it is not free within `wait_seconds`.
    """
    directory = repository.path / LOCK_DIRECTORY
    directory.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    record = directory / f"{_holder()}.json"
    try:
        _acquire(descriptor, exclusive, wait_seconds, directory)
        if exclusive:
            clear_stale_records(repository, directory)
        record.write_text(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "kind": kind,
            "since": datetime.now(timezone.utc).isoformat(),
        }), encoding="utf-8")
        try:
            yield
        finally:
            record.unlink(missing_ok=True)
    finally:
        os.close(descriptor)


def _acquire(descriptor: int, exclusive: bool, wait_seconds: float, directory: Path) -> None:
    operation = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(descriptor, operation)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holders = ", ".join(_describe(path) for path in sorted(directory.glob("*.json"))) or _("another process")
                raise RepositoryLocked(holders=holders, seconds=wait_seconds) from None
            time.sleep(POLL_SECONDS)


def _describe(path: Path) -> str:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return f"{record['kind']} {path.stem} since {record['since']}"
    except (OSError, ValueError, KeyError):
        return path.stem


def clear_stale_records(repository: Repository, directory: Path) -> list[str]:
    """Remove the records of holders that are gone and record each; call only with the lock held alone.

    With the exclusive lock held, no other process holds it, so every
    record left belongs to a process that stopped without removing it.
    """
    cleared = []
    for path in sorted(directory.glob("*.json")):
        if path.stem == _holder():
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
        repository.record(ev.StaleLockCleared(
            holder=path.stem, lock_kind=str(record.get("kind", "unknown")), since=str(record.get("since", "")),
        ))
        path.unlink(missing_ok=True)
        cleared.append(path.stem)
    return cleared
