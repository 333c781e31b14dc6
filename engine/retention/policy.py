"""Retention policies and the inputs and outputs of a retention decision.

A policy keeps a backup when any rule keeps it. The bucket rules (hourly,
daily, weekly, monthly, yearly) keep the newest backup of each bucket,
counting buckets back from the newest backup, as restic does. Buckets are
computed in the policy's time zone, whatever the host's zone, and weeks are
ISO weeks. Caps (max_backup_files, max_total_size_gb) then forget the
oldest kept backups. No rule ever forgets a backup that a kept backup needs
to restore: its chain parents and the full of a differential.
"""

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Policy:
    """A retention policy: the rules that keep backups. A count of 0 and None turn a rule off."""

    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    # A duration such as `30d`, `1y6m` or `12h` (units y, m, w, d, h), counted back from the newest backup.
    keep_within: str | None = None
    # Backup type -> days: a backup of that type younger than that many days (from `now`) is kept.
    retention_days: dict[str, int] = field(default_factory=dict)
    # At most this many backups are kept; the oldest kept ones are forgotten first.
    max_backup_files: int | None = None
    # At most this many gigabytes (10**9 bytes, by bytes_written) of backups are kept.
    max_total_size_gb: float | None = None
    # IANA zone in which the hour, day, week, month and year buckets are computed.
    timezone: str = "UTC"


@dataclass(frozen=True)
class BackupInfo:
    """One committed, not yet forgotten backup: the fields a decision reads."""

    backup_id: str
    type: str                         # full, incremental, differential or snapshot
    committed_at: datetime            # aware, UTC
    parent_id: str | None = None      # the backup an incremental or differential builds on
    base_full_id: str | None = None   # the full at the root of its chain
    bytes_written: int = 0


@dataclass(frozen=True)
class Decision:
    """Keep or forget one backup, and the rule that decided it."""

    backup_id: str
    keep: bool
    # keep-last, keep-hourly, keep-daily, keep-weekly, keep-monthly, keep-yearly,
    # keep-within, retention-days, needed-by, max-backup-files, max-total-size, no-rule, or
    # no-policy (a policy without rules keeps everything).
    rule: str
    # The bucket of a bucket rule, such as `2024-03-10` (daily), `2024-W10` (weekly),
    # `2024-03` (monthly), `2024` (yearly), `2024-03-10T14` (hourly); None for other rules.
    bucket: str | None = None
    # For rule needed-by: the kept backup whose restore needs this one.
    needed_by: str | None = None
