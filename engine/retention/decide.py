"""Decide which backups a retention policy keeps and which it forgets.

The decision runs in three phases. The keep rules select backups, the caps
then forget the oldest selected ones, and chain safety keeps every backup
that a kept backup needs to restore. The decision is a pure function of its
arguments: it reads no clock, no files and not the host's time zone.
"""

import calendar
import re
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .policy import BackupInfo, Decision, Policy

KEEP_LAST = "keep-last"
KEEP_WITHIN = "keep-within"
KEEP_HOURLY = "keep-hourly"
KEEP_DAILY = "keep-daily"
KEEP_WEEKLY = "keep-weekly"
KEEP_MONTHLY = "keep-monthly"
KEEP_YEARLY = "keep-yearly"
RETENTION_DAYS = "retention-days"
NO_POLICY = "no-policy"
NO_RULE = "no-rule"
MAX_BACKUP_FILES = "max-backup-files"
MAX_TOTAL_SIZE = "max-total-size"
NEEDED_BY = "needed-by"

BYTES_PER_GB = 10**9

# The same grammar as the configuration check: one or more counts with a unit, in any order.
_DURATION_PATTERN = re.compile(r"(?:[0-9]+[ymwdh])+")
_DURATION_PART = re.compile(r"([0-9]+)([ymwdh])")


@dataclass(frozen=True)
class Duration:
    """A keep-within duration, with each unit's count summed over the text."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0


def parse_duration(text: str) -> Duration:
    """Parse a duration such as `30d`, `2w3d` or `1y6m`.

    Units are y (years), m (months), w (weeks), d (days) and h (hours). A unit
    may appear more than once, and its counts add up. Raises ValueError naming
    the text for anything else, including the empty string.
    """
    if _DURATION_PATTERN.fullmatch(text) is None:
        raise ValueError(
            f"invalid duration {text!r}: use counts with units such as 30d, 2w or 1y6m "
            "(y years, m months, w weeks, d days, h hours)"
        )
    totals = {"y": 0, "m": 0, "w": 0, "d": 0, "h": 0}
    for count, unit in _DURATION_PART.findall(text):
        totals[unit] += int(count)
    return Duration(
        years=totals["y"], months=totals["m"], weeks=totals["w"], days=totals["d"], hours=totals["h"]
    )


def subtract_duration(moment: datetime, duration: Duration, zone: ZoneInfo) -> datetime:
    """Return the UTC instant that lies `duration` before the aware datetime `moment`.

    Years, months, weeks and days move the wall-clock date in `zone`, so `1m`
    before 31 March is the last day of February and `1d` before a DST change
    may be 23 or 25 hours. Hours count elapsed time. Raises OverflowError when
    the result falls before year 1 or a count is too large for timedelta.
    """
    local = moment.astimezone(zone)

    month_index = local.year * 12 + (local.month - 1) - (duration.years * 12 + duration.months)
    year, month = divmod(month_index, 12)
    month += 1
    if year < 1:
        raise OverflowError(f"{duration} before {moment.isoformat()} falls before year 1")
    day = min(local.day, calendar.monthrange(year, month)[1])
    local = local.replace(year=year, month=month, day=day)

    # Arithmetic on an aware datetime keeps its tzinfo and moves the wall clock,
    # which is the calendar arithmetic that days and weeks need.
    local = local - timedelta(days=duration.weeks * 7 + duration.days)
    return local.astimezone(timezone.utc) - timedelta(hours=duration.hours)


def _hour_bucket(local: datetime) -> str:
    # NOTE: when clocks fall back, the repeated local hour is one bucket that spans two real hours.
    return f"{local.year:04d}-{local.month:02d}-{local.day:02d}T{local.hour:02d}"


def _day_bucket(local: datetime) -> str:
    return f"{local.year:04d}-{local.month:02d}-{local.day:02d}"


def _week_bucket(local: datetime) -> str:
    # The ISO year differs from the calendar year around 1 January, for example 2021-01-01 is in 2020-W53.
    iso = local.isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


def _month_bucket(local: datetime) -> str:
    return f"{local.year:04d}-{local.month:02d}"


def _year_bucket(local: datetime) -> str:
    return f"{local.year:04d}"


# Bucket rules in the order in which they report: rule name, Policy field, bucket function.
_BUCKET_RULES: tuple[tuple[str, str, Callable[[datetime], str]], ...] = (
    (KEEP_HOURLY, "keep_hourly", _hour_bucket),
    (KEEP_DAILY, "keep_daily", _day_bucket),
    (KEEP_WEEKLY, "keep_weekly", _week_bucket),
    (KEEP_MONTHLY, "keep_monthly", _month_bucket),
    (KEEP_YEARLY, "keep_yearly", _year_bucket),
)


@dataclass(frozen=True)
class _KeepReason:
    """The first rule that selects a backup, with the bucket of a bucket rule."""

    rule: str
    bucket: str | None = None


def decide(backups: list[BackupInfo], policy: Policy, now: datetime) -> list[Decision]:
    """Decide for each backup whether `policy` keeps or forgets it at time `now`.

    Returns one Decision per backup, in the order of `backups`. Backups are
    ranked by committed_at and then by backup_id, so backups committed at the
    same instant are ranked the same way whatever the input order.

    A backup that several rules keep reports the first of keep-last,
    keep-within, the bucket rules from hourly to yearly, and retention-days.
    A policy without keep rules keeps every backup with rule no-policy, and
    its caps, if any, still apply. A cap counts the backups that the kept
    ones need, and it never forgets the newest kept backup, so the result can
    exceed the cap when that backup's chain alone does.

    Raises ValueError for duplicate backup ids, naive datetimes, negative
    counts or caps, an unknown time zone or an invalid keep-within duration.
    """
    _validate(backups, policy, now)
    zone = _load_zone(policy.timezone)
    within = None if policy.keep_within is None else parse_duration(policy.keep_within)
    if not backups:
        return []

    newest_first = sorted(backups, key=lambda backup: (backup.committed_at, backup.backup_id), reverse=True)
    by_id = {backup.backup_id: backup for backup in backups}

    selected = _apply_keep_rules(newest_first, policy, within, zone, now)
    forgotten: dict[str, str] = {}

    if policy.max_backup_files is not None:
        _apply_cap(newest_first, by_id, selected, forgotten, MAX_BACKUP_FILES, _count_one, policy.max_backup_files)
    if policy.max_total_size_gb is not None:
        max_bytes = policy.max_total_size_gb * BYTES_PER_GB
        _apply_cap(newest_first, by_id, selected, forgotten, MAX_TOTAL_SIZE, _bytes_written, max_bytes)

    needed_by = _find_needed_backups(newest_first, by_id, selected)

    decisions = []
    for backup in backups:
        backup_id = backup.backup_id
        if backup_id in selected:
            decision = Decision(backup_id, True, selected[backup_id].rule, bucket=selected[backup_id].bucket)
        elif backup_id in needed_by:
            decision = Decision(backup_id, True, NEEDED_BY, needed_by=needed_by[backup_id])
        else:
            decision = Decision(backup_id, False, forgotten.get(backup_id, NO_RULE))
        decisions.append(decision)
    return decisions


def _validate(backups: list[BackupInfo], policy: Policy, now: datetime) -> None:
    if now.utcoffset() is None:
        raise ValueError(f"invalid now {now.isoformat()}: expected an aware datetime")

    seen: set[str] = set()
    for backup in backups:
        if backup.backup_id in seen:
            raise ValueError(f"duplicate backup id {backup.backup_id!r}: backup ids must be unique")
        seen.add(backup.backup_id)
        if backup.committed_at.utcoffset() is None:
            raise ValueError(
                f"invalid committed_at {backup.committed_at.isoformat()} of backup {backup.backup_id!r}: "
                "expected an aware datetime"
            )

    counts = ["keep_last"] + [field for _, field, _ in _BUCKET_RULES]
    for field in counts:
        if getattr(policy, field) < 0:
            raise ValueError(f"invalid {field} {getattr(policy, field)}: expected 0 or more")
    for field in ("max_backup_files", "max_total_size_gb"):
        value = getattr(policy, field)
        if value is not None and value < 0:
            raise ValueError(f"invalid {field} {value}: expected 0 or more, or None")


def _load_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as UTC or Europe/London") from exc


def _has_keep_rule(policy: Policy) -> bool:
    counts = [policy.keep_last] + [getattr(policy, field) for _, field, _ in _BUCKET_RULES]
    return any(count > 0 for count in counts) or policy.keep_within is not None or bool(policy.retention_days)


def _apply_keep_rules(
    newest_first: list[BackupInfo], policy: Policy, within: Duration | None, zone: ZoneInfo, now: datetime
) -> dict[str, _KeepReason]:
    """Return the backups that the keep rules select, by id, each with the first rule that selects it."""
    if not _has_keep_rule(policy):
        return {backup.backup_id: _KeepReason(NO_POLICY) for backup in newest_first}

    selected: dict[str, _KeepReason] = {}

    def keep(backup_id: str, rule: str, bucket: str | None = None) -> None:
        # Rules run in reporting order, so the first rule to keep a backup is the one reported.
        selected.setdefault(backup_id, _KeepReason(rule, bucket))

    for backup in newest_first[: policy.keep_last]:
        keep(backup.backup_id, KEEP_LAST)

    if within is not None:
        for backup in _within(newest_first, within, zone):
            keep(backup.backup_id, KEEP_WITHIN)

    for rule, field, bucket_of in _BUCKET_RULES:
        for backup, bucket in _newest_per_bucket(newest_first, getattr(policy, field), zone, bucket_of):
            keep(backup.backup_id, rule, bucket)

    for backup in newest_first:
        days = policy.retention_days.get(backup.type)
        if days is not None and now - backup.committed_at < timedelta(days=days):
            keep(backup.backup_id, RETENTION_DAYS)

    return selected


def _within(newest_first: list[BackupInfo], duration: Duration, zone: ZoneInfo) -> Iterator[BackupInfo]:
    newest = newest_first[0].committed_at
    try:
        threshold = subtract_duration(newest, duration, zone)
    except OverflowError:
        # A duration that reaches back before year 1 covers every backup.
        yield from newest_first
        return
    for backup in newest_first:
        if backup.committed_at >= threshold:
            yield backup


def _newest_per_bucket(
    newest_first: list[BackupInfo], count: int, zone: ZoneInfo, bucket_of: Callable[[datetime], str]
) -> Iterator[tuple[BackupInfo, str]]:
    """Yield the newest backup of each of the `count` newest buckets that contain a backup."""
    if count <= 0:
        return
    # Remember every bucket met, not only the previous one, because where clocks go
    # back across midnight a later backup can fall into an earlier local day.
    seen: set[str] = set()
    for backup in newest_first:
        bucket = bucket_of(backup.committed_at.astimezone(zone))
        if bucket in seen:
            continue
        seen.add(bucket)
        yield backup, bucket
        if len(seen) == count:
            return


def _count_one(backup: BackupInfo) -> int:
    return 1


def _bytes_written(backup: BackupInfo) -> int:
    return backup.bytes_written


def _chain(start: BackupInfo, by_id: dict[str, BackupInfo], skip: Container[str]) -> Iterator[BackupInfo]:
    """Yield `start` and every backup that its restore needs, once each, leaving out ids in `skip`.

    The walk does not pass through a skipped backup. Parents and fulls that
    are not in `by_id` are already gone and are left out too.
    """
    visited: set[str] = set()
    stack = [start]
    while stack:
        backup = stack.pop()
        if backup.backup_id in visited or backup.backup_id in skip:
            continue
        visited.add(backup.backup_id)
        yield backup
        for needed_id in (backup.parent_id, backup.base_full_id):
            if needed_id is not None and needed_id in by_id:
                stack.append(by_id[needed_id])


def _apply_cap(
    newest_first: list[BackupInfo],
    by_id: dict[str, BackupInfo],
    selected: dict[str, _KeepReason],
    forgotten: dict[str, str],
    rule: str,
    weight: Callable[[BackupInfo], float],
    limit: float,
) -> None:
    """Forget the oldest selected backups, recording `rule` in `forgotten`, until the rest fit `limit`.

    The weight counts the selected backups together with the chains that they
    need, because chain safety keeps those chains too. The newest selected
    backup stays even when its chain alone exceeds the limit.
    """
    selected_newest_first = [backup for backup in newest_first if backup.backup_id in selected]
    covered: set[str] = set()
    total = 0.0
    for position, backup in enumerate(selected_newest_first):
        added = list(_chain(backup, by_id, covered))
        added_weight = sum(weight(needed) for needed in added)
        if position > 0 and total + added_weight > limit:
            # Every older selected backup goes too, because a cap forgets the oldest first.
            for older in selected_newest_first[position:]:
                del selected[older.backup_id]
                forgotten[older.backup_id] = rule
            return
        covered.update(needed.backup_id for needed in added)
        total += added_weight


def _find_needed_backups(
    newest_first: list[BackupInfo], by_id: dict[str, BackupInfo], selected: dict[str, _KeepReason]
) -> dict[str, str]:
    """Map each unselected backup that a selected backup needs to the newest selected backup that needs it."""
    needed_by: dict[str, str] = {}
    visited: set[str] = set()
    for backup in newest_first:
        if backup.backup_id not in selected:
            continue
        # Walking newest first, the first selected backup to reach a chain member is the newest that needs it.
        for needed in _chain(backup, by_id, visited):
            visited.add(needed.backup_id)
            if needed.backup_id not in selected:
                needed_by[needed.backup_id] = backup.backup_id
    return needed_by
