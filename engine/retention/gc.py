"""Garbage collection: delete the objects that no backup still in the catalog references.

Two guards keep a running backup safe. First, the caller holds the
repository lock alone, and every backup holds it shared while it runs, so
no backup runs during a collection. Second, an unreferenced object or
temporary file younger than the grace period is kept, which protects the
files of a process that does not take the lock, such as an older tvcat.
"""

import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass

from ...catalog import events as ev
from ...catalog.objects import is_object_id
from ...catalog.repository import Repository

logger = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 3600.0
# Committed backups and the objects they reference; manifests are objects too.
_REFERENCES = (
    "SELECT c.backup_id, c.chunk_id FROM backup_chunks AS c JOIN backups AS b ON b.backup_id = c.backup_id "
    "WHERE b.status = 'committed' AND c.chunk_id IS NOT NULL "
    "UNION ALL SELECT backup_id, manifest_id FROM backups WHERE status = 'committed' AND manifest_id IS NOT NULL"
)


@dataclass
class Reclaim:
    """The bytes that forgetting some backups frees: per backup alone, and in total."""

    alone_bytes: dict[str, int]
    total_bytes: int
    objects: int


def estimate_reclaim(repository: Repository, forgotten: set[str]) -> Reclaim:
    """Return the bytes that forgetting `forgotten` would free, in one pass over the references.

    An object counts for a backup alone when no other backup references it;
    the total counts every object that only forgotten backups reference.
    Sizes are those of the files on disk; a missing file counts 0.
    """
    kept_objects: set[str] = set()
    owners: dict[str, set[str]] = defaultdict(set)
    for backup_id, object_id in repository.connection.execute(_REFERENCES):
        if backup_id in forgotten:
            owners[object_id].add(backup_id)
        else:
            kept_objects.add(object_id)

    alone = {backup_id: 0 for backup_id in forgotten}
    total = 0
    count = 0
    for object_id, referencing in owners.items():
        if object_id in kept_objects:
            continue
        size = _size(repository, object_id)
        total += size
        count += 1
        if len(referencing) == 1:
            alone[next(iter(referencing))] += size
    return Reclaim(alone, total, count)


def _size(repository: Repository, object_id: str) -> int:
    try:
        return repository.store.path(object_id).stat().st_size
    except FileNotFoundError:
        return 0


def live_object_ids(repository: Repository) -> set[str]:
    """Return the ids of every object a committed (not forgotten) backup references."""
    return {object_id for _backup_id, object_id in repository.connection.execute(_REFERENCES)}


def collect_garbage(repository: Repository, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> ev.GarbageCollected:
    """Delete unreferenced objects and stale temporary files older than `grace_seconds`; record the result.

    Call only while holding the repository lock alone. Memory grows with the
    number of live object ids, and time with the number of object files.
    """
    started = time.monotonic()
    live = live_object_ids(repository)
    cutoff = time.time() - grace_seconds
    deleted = freed = in_grace = temporary = 0

    root = repository.store.root
    directories = sorted(entry.path for entry in os.scandir(root) if entry.is_dir()) if root.exists() else []
    for directory in directories:
        with os.scandir(directory) as entries:
            for entry in entries:
                is_temporary = entry.name.startswith(".") and entry.name.endswith(".tmp")
                if not is_temporary and (not is_object_id(entry.name) or entry.name in live):
                    continue
                status = entry.stat()
                if status.st_mtime > cutoff:
                    in_grace += 1
                    continue
                os.unlink(entry.path)
                if is_temporary:
                    temporary += 1
                else:
                    deleted += 1
                    freed += status.st_size

    event = ev.GarbageCollected(
        objects_deleted=deleted, bytes_freed=freed, objects_live=len(live), objects_in_grace=in_grace,
        temporary_files_deleted=temporary, grace_seconds=grace_seconds,
        duration_seconds=time.monotonic() - started,
    )
    repository.record(event)
    logger.info("garbage collected objects_deleted=%d bytes_freed=%d in_grace=%d", deleted, freed, in_grace)
    return event
