"""Cleanup before a backup: prune when the disk under the repository is too full or the repository too big."""

import logging
import shutil

from ...catalog.repository import Repository
from ...i18n import _
from ..config import Config
from .policy import Policy
from .locks import RepositoryLocked
from .prune import PruneResult, prune

# How long cleanup waits for running backups before it lets the new backup go ahead without it.
CLEANUP_LOCK_WAIT_SECONDS = 5.0

logger = logging.getLogger(__name__)


def cleanup_reason(repository: Repository, config: Config) -> tuple[str, str] | None:
    """Return (event reason, message) when backup_config.auto_cleanup requires a prune now, else None."""
    cleanup = config.backup_config.auto_cleanup
    if not cleanup.enabled:
        return None
    if cleanup.min_free_disk_gb is not None:
        free_gb = shutil.disk_usage(repository.path).free / 1e9
        if free_gb < cleanup.min_free_disk_gb:
            return "disk-pressure", _(
                "free disk under the repository is {free:.3g} GB, below min_free_disk_gb {limit:g} GB"
            ).format(free=free_gb, limit=cleanup.min_free_disk_gb)
    if cleanup.size_threshold_gb is not None:
        stored = repository.connection.execute(
            "SELECT coalesce(sum(bytes_written), 0) FROM backups WHERE status = 'committed'"
        ).fetchone()[0] / 1e9
        if stored > cleanup.size_threshold_gb:
            return "size-threshold", _(
                "the repository holds {size:.3g} GB, above size_threshold_gb {limit:g} GB"
            ).format(size=stored, limit=cleanup.size_threshold_gb)
    return None


def cleanup_before_backup(repository: Repository, config: Config) -> tuple[str, PruneResult] | None:
    """Prune with the auto_cleanup policy when cleanup_reason finds a reason; return the message and result.

    The retention.decided event carries the reason ('disk-pressure' or 'size-threshold').
    When another process holds the repository lock, the cleanup is skipped
    and None is returned, so the backup does not fail for it.
    """
    found = cleanup_reason(repository, config)
    if found is None:
        return None
    reason, message = found
    kept = config.backup_config.auto_cleanup.retention_policy
    policy = Policy(keep_last=kept.keep_latest, keep_daily=kept.keep_daily,
                    timezone=config.backup_config.retention_policy.timezone)
    logger.warning("auto cleanup before backup: %s", message)
    try:
        return message, prune(repository, policy, reason=reason, lock_wait_seconds=CLEANUP_LOCK_WAIT_SECONDS)
    except RepositoryLocked as error:
        # Another backup is running; this backup goes ahead, and the next one cleans up.
        logger.warning("auto cleanup skipped: %s", error)
        return None
