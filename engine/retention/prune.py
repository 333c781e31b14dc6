"""Prune: decide which backups to keep, record the decisions, forget the rest and collect garbage."""

import dataclasses
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone

from ...catalog import events as ev
from ...catalog.repository import Repository
from ..config import Config
from .decide import decide
from .gc import DEFAULT_GRACE_SECONDS, Reclaim, collect_garbage, estimate_reclaim
from .locks import repository_lock
from .policy import BackupInfo, Decision, Policy

logger = logging.getLogger(__name__)


@dataclass
class PruneResult:
    """The decisions of one prune, what they free, and the collection if one ran."""

    policy: Policy
    decisions: list[Decision]
    backups: dict[str, BackupInfo]
    reclaim: Reclaim
    dry_run: bool
    collected: ev.GarbageCollected | None = None

    @property
    def forgotten(self) -> list[Decision]:
        return [decision for decision in self.decisions if not decision.keep]


def policy_from_config(config: Config) -> Policy:
    """Return the policy of backup_config: its retention_policy, max_backup_files and max_total_size_gb."""
    backup = config.backup_config
    retention = backup.retention_policy
    days = {name: getattr(retention.retention_days, name) for name in ("full", "incremental", "differential",
                                                                       "snapshot")}
    return Policy(
        keep_last=retention.keep_last, keep_hourly=retention.keep_hourly, keep_daily=retention.daily_backups,
        keep_weekly=retention.weekly_backups, keep_monthly=retention.monthly_backups,
        keep_yearly=retention.yearly_backups, keep_within=retention.keep_within,
        retention_days={name: value for name, value in days.items() if value is not None},
        max_backup_files=backup.max_backup_files, max_total_size_gb=backup.max_total_size_gb,
        timezone=retention.timezone,
    )


def committed_backups(repository: Repository) -> list[BackupInfo]:
    return [
        BackupInfo(
            backup_id=row.backup_id, type=row.type, committed_at=ev.parse_time(row.committed_at),
            parent_id=row.parent_id, base_full_id=row.base_full_id, bytes_written=row.bytes_written or 0,
        )
        for row in repository.backups()
    ]


def prune(
    repository: Repository, policy: Policy, dry_run: bool = False, grace_seconds: float = DEFAULT_GRACE_SECONDS,
    now: datetime | None = None, reason: str = "prune", lock_wait_seconds: float = 60.0,
) -> PruneResult:
    """Decide, record `retention.decided`, and collect garbage, all under the exclusive repository lock.

    A dry run takes the same decisions and the same estimate, and changes
    nothing: no event, no deletion.
    """
    if not math.isfinite(grace_seconds) or grace_seconds < 0:
        raise ValueError(f"grace_seconds must be a finite number of seconds, not {grace_seconds!r}")
    if dry_run:
        # A dry run reads the catalog only, so it takes no lock and clears no stale lock record.
        return _decide(repository, policy, now, dry_run=True)
    with repository_lock(repository, "prune", exclusive=True, wait_seconds=lock_wait_seconds):
        result = _decide(repository, policy, now, dry_run=False)
        repository.record(ev.RetentionDecided(
            policy=dataclasses.asdict(policy), timezone=policy.timezone, reason=reason,
            decisions=[ev.RetentionDecision(backup_id=d.backup_id, keep=d.keep, rule=d.rule, bucket=d.bucket,
                                            needed_by=d.needed_by) for d in result.decisions],
        ))
        logger.info("retention decided kept=%d forgotten=%d", len(result.decisions) - len(result.forgotten),
                    len(result.forgotten))
        result.collected = collect_garbage(repository, grace_seconds)
        return result


def _decide(repository: Repository, policy: Policy, now: datetime | None, dry_run: bool) -> PruneResult:
    backups = committed_backups(repository)
    decisions = decide(backups, policy, now or datetime.now(timezone.utc))
    forgotten = {decision.backup_id for decision in decisions if not decision.keep}
    return PruneResult(policy, decisions, {backup.backup_id: backup for backup in backups},
                       estimate_reclaim(repository, forgotten), dry_run)
