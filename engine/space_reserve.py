"""A small file of reserved space in the repository, released when the disk is full.

When a backup fails with ENOSPC, the catalog still needs a few pages to
record `backup.failed`. Deleting the reserve first gives it that room. The
next backup that finds space writes the reserve again.
"""

import errno
import logging
import os

from ..catalog.repository import Repository

logger = logging.getLogger(__name__)

RESERVE_NAME = "space.reserve"
# Room for a failure event and its write-ahead log frames, with a wide margin.
RESERVE_BYTES = 1 << 20


def ensure_reserve(repository: Repository) -> None:
    """Write the reserve file if it is missing; a full disk leaves it missing until there is room."""
    path = repository.path / "locks" / RESERVE_NAME
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "wb") as file:
            file.write(b"\0" * RESERVE_BYTES)
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        path.unlink(missing_ok=True)
        if error.errno != errno.ENOSPC:
            raise
        logger.warning("no room for the space reserve path=%s", path)


def release_reserve(repository: Repository) -> None:
    """Delete the reserve file, so that the failure of a backup can be recorded on a full disk."""
    (repository.path / "locks" / RESERVE_NAME).unlink(missing_ok=True)


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
