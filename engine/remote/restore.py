"""Restore from the remote alone: no local repository, only the configuration."""

import tempfile
from pathlib import Path

from ...catalog.repository import Repository
from ..backup import Scope
from ..restore import PointInTime, RestoreResult, choose_backup_at, restore_backup
from .recover import recover_catalog
from .store import S3ObjectStore


def restore_from_remote(
    remote: S3ObjectStore, point: PointInTime, target: Path, scope: Scope = Scope(),
    requested_at: str | None = None,
) -> RestoreResult:
    """Restore the latest remote backup committed at or before `point` into `target`.

    The catalog is rebuilt from the remote log in a temporary directory and
    every chunk is read from the remote and verified against its id, as a
    local restore verifies it. Nothing is written to a local repository.
    """
    with tempfile.TemporaryDirectory(prefix="tvcat-restore-remote-") as directory:
        path = Path(directory) / "repository"
        recover_catalog(remote, path)
        repository = Repository(path, create=False)
        repository.store = remote
        try:
            choice = choose_backup_at(repository, point, scope)
            return restore_backup(repository, choice, target, scope, requested_at=requested_at)
        finally:
            repository.close()
