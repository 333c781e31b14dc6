"""Verify the remote repository: the backups of the replicated log, checked against the remote objects."""

import tempfile
from pathlib import Path

from ...catalog.repository import Repository
from ..verify import VerifyReport, verify_repository
from .recover import recover_catalog
from .store import S3ObjectStore


def verify_remote(remote: S3ObjectStore, read_data: bool = False) -> VerifyReport:
    """Check every backup of the remote log against the remote objects, as a recovery would find them.

    The catalog is rebuilt from the remote log in a temporary directory, so
    the check needs no local repository and records nothing in one. The
    report names each missing or (with `read_data`) corrupted object with
    the backups and series it breaks. Raises RemoteLogDamaged when the
    replicated log itself is damaged.
    """
    with tempfile.TemporaryDirectory(prefix="tvcat-verify-remote-") as directory:
        path = Path(directory) / "repository"
        recover_catalog(remote, path)
        repository = Repository(path, create=False)
        repository.store = remote
        try:
            return verify_repository(repository, read_data=read_data)
        finally:
            repository.close()
