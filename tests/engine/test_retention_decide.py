"""The retention decision: keep rules, buckets in the policy's zone, caps and chain safety."""

import dataclasses
import os
import time
from collections import defaultdict
from contextlib import contextmanager
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tvcat.engine.retention.decide import decide, parse_duration
from tvcat.engine.retention.policy import BackupInfo, Decision, Policy

HOUR = 3600
DAY = 24 * HOUR
YEAR = 365 * DAY
EARLIEST = datetime(2019, 1, 1, tzinfo=timezone.utc)
TYPES = ("full", "incremental", "differential", "snapshot")
ZONES = ("UTC", "America/New_York", "Europe/London", "Asia/Shanghai")
COUNT_FIELDS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
BUCKET_RULES = ("keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly")
KEEP_RULES = ("keep-last", "keep-within", *BUCKET_RULES, "retention-days", "no-policy", "needed-by")
CAP_RULES = ("max-backup-files", "max-total-size")
FORGET_RULES = ("no-rule", *CAP_RULES)

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, database=None)


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=timezone.utc)


def rank(backup: BackupInfo) -> tuple[datetime, str]:
    return (backup.committed_at, backup.backup_id)


def by_id(decisions: list[Decision]) -> dict[str, Decision]:
    return {decision.backup_id: decision for decision in decisions}


def chain_of(backup: BackupInfo, backups: dict[str, BackupInfo]) -> set[str]:
    """The ids of `backup` and of every backup in `backups` that its restore needs."""
    found: set[str] = set()
    pending = [backup.backup_id]
    while pending:
        backup_id = pending.pop()
        if backup_id in found or backup_id not in backups:
            continue
        found.add(backup_id)
        current = backups[backup_id]
        pending.extend(needed for needed in (current.parent_id, current.base_full_id) if needed is not None)
    return found


# Generated inputs.


@st.composite
def histories(draw: st.DrawFn, max_size: int = 25) -> list[BackupInfo]:
    """Backups in random input order, whose parents are earlier backups of valid chains.

    The span of commit times varies from a minute to four years, so that
    backups share seconds, hours and days often enough. A few backups are
    dropped afterwards, which leaves parents that are no longer in the input.
    """
    span = draw(st.sampled_from([60, 6 * HOUR, 3 * DAY, 40 * DAY, 400 * DAY, 4 * YEAR]))
    start = EARLIEST + timedelta(seconds=draw(st.integers(0, 3 * YEAR)))
    offsets = sorted(draw(st.lists(st.integers(0, span), max_size=max_size)))
    # Random ids, so that the id order of backups committed in the same second differs from their chain order.
    ids = draw(st.permutations([f"b{index:02d}" for index in range(len(offsets))]))

    backups: list[BackupInfo] = []
    for backup_id, offset in zip(ids, offsets):
        kind = draw(st.sampled_from(TYPES))
        fulls = [backup for backup in backups if backup.type == "full"]
        chain_members = [backup for backup in backups if backup.type != "snapshot"]
        parent_id = base_full_id = None
        if kind == "incremental" and chain_members:
            parent = draw(st.sampled_from(chain_members))
            parent_id = parent.backup_id
            base_full_id = parent.base_full_id or parent.backup_id
        elif kind == "differential" and fulls:
            parent_id = base_full_id = draw(st.sampled_from(fulls)).backup_id
        elif kind in ("incremental", "differential"):
            kind = "full"
        backups.append(
            BackupInfo(
                backup_id=backup_id,
                type=kind,
                committed_at=start + timedelta(seconds=offset),
                parent_id=parent_id,
                base_full_id=base_full_id,
                bytes_written=draw(st.integers(0, 2 * 10**9)),
            )
        )

    if backups:
        dropped = draw(st.sets(st.sampled_from(ids), max_size=2))
        backups = [backup for backup in backups if backup.backup_id not in dropped]
    return draw(st.permutations(backups))


durations = st.lists(
    st.tuples(st.integers(0, 30), st.sampled_from("ymwdh")), min_size=1, max_size=3
).map(lambda parts: "".join(f"{count}{unit}" for count, unit in parts))


@st.composite
def policies(draw: st.DrawFn, within: bool = True, retention: bool = True, caps: bool = True) -> Policy:
    counts = {field: draw(st.one_of(st.just(0), st.integers(1, 5))) for field in COUNT_FIELDS}
    return Policy(
        **counts,
        keep_within=draw(st.none() | durations) if within else None,
        retention_days=draw(st.dictionaries(st.sampled_from(TYPES), st.integers(0, 400))) if retention else {},
        max_backup_files=draw(st.none() | st.integers(0, 10)) if caps else None,
        max_total_size_gb=draw(st.none() | st.floats(0, 20)) if caps else None,
        timezone=draw(st.sampled_from(ZONES)),
    )


def times_after(backups: list[BackupInfo]) -> st.SearchStrategy[datetime]:
    """A `now` from a day before the newest backup to three years after it."""
    newest = max((backup.committed_at for backup in backups), default=EARLIEST)
    return st.integers(-DAY, 3 * YEAR).map(lambda seconds: newest + timedelta(seconds=seconds))


# A reference for the keep-last, bucket and retention-days rules, written to be
# obviously right. It groups backups by bucket, takes the newest backup of each
# bucket, then the N newest buckets. It ignores chains, keep-within and caps.

REFERENCE_BUCKETS: dict[str, tuple[str, Callable[[datetime], str]]] = {
    "keep-hourly": ("keep_hourly", lambda local: local.strftime("%Y-%m-%dT%H")),
    "keep-daily": ("keep_daily", lambda local: local.date().isoformat()),
    "keep-weekly": ("keep_weekly", lambda local: local.strftime("%G-W%V")),
    "keep-monthly": ("keep_monthly", lambda local: local.strftime("%Y-%m")),
    "keep-yearly": ("keep_yearly", lambda local: local.strftime("%Y")),
}


def reference_keep_rules(
    backups: list[BackupInfo], policy: Policy, now: datetime
) -> dict[str, tuple[bool, str, str | None]]:
    zone = ZoneInfo(policy.timezone)
    newest_first = sorted(backups, key=rank, reverse=True)
    keepers: list[tuple[str, set[str], dict[str, str]]] = []

    keepers.append(("keep-last", {backup.backup_id for backup in newest_first[: policy.keep_last]}, {}))

    for rule, (field, bucket_of) in REFERENCE_BUCKETS.items():
        groups: dict[str, list[BackupInfo]] = defaultdict(list)
        for backup in backups:
            groups[bucket_of(backup.committed_at.astimezone(zone))].append(backup)
        newest_per_bucket = {bucket: max(members, key=rank) for bucket, members in groups.items()}
        chosen = sorted(newest_per_bucket.items(), key=lambda item: rank(item[1]), reverse=True)
        chosen = chosen[: getattr(policy, field)]
        keepers.append((rule, {backup.backup_id for _, backup in chosen}, {b.backup_id: k for k, b in chosen}))

    young = {
        backup.backup_id
        for backup in backups
        if backup.type in policy.retention_days
        and now - backup.committed_at < timedelta(days=policy.retention_days[backup.type])
    }
    keepers.append(("retention-days", young, {}))

    has_rule = any(getattr(policy, field) for field in COUNT_FIELDS) or policy.retention_days
    expected: dict[str, tuple[bool, str, str | None]] = {}
    for backup in backups:
        if not has_rule:
            expected[backup.backup_id] = (True, "no-policy", None)
            continue
        expected[backup.backup_id] = (False, "no-rule", None)
        for rule, kept_ids, buckets in keepers:
            if backup.backup_id in kept_ids:
                expected[backup.backup_id] = (True, rule, buckets.get(backup.backup_id))
                break
    return expected


# Properties.


@PROPERTY_SETTINGS
@given(data=st.data())
def test_decide_one_decision_per_backup(data: st.DataObject) -> None:
    backups = data.draw(histories())
    policy = data.draw(policies())
    now = data.draw(times_after(backups))

    decisions = decide(backups, policy, now)

    assert [decision.backup_id for decision in decisions] == [backup.backup_id for backup in backups]
    for decision in decisions:
        assert decision.rule in (KEEP_RULES if decision.keep else FORGET_RULES)
        assert (decision.bucket is not None) == (decision.rule in BUCKET_RULES)
        assert (decision.needed_by is not None) == (decision.rule == "needed-by")

    reordered = data.draw(st.permutations(backups))
    assert by_id(decide(reordered, policy, now)) == by_id(decisions)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_decide_keeps_whole_chains(data: st.DataObject) -> None:
    backups = data.draw(histories())
    policy = data.draw(policies())
    now = data.draw(times_after(backups))
    backups_by_id = {backup.backup_id: backup for backup in backups}

    decisions = by_id(decide(backups, policy, now))

    kept_ids = {backup_id for backup_id, decision in decisions.items() if decision.keep}
    for backup_id in kept_ids:
        assert chain_of(backups_by_id[backup_id], backups_by_id) <= kept_ids

    requesters = [backups_by_id[i] for i in kept_ids if decisions[i].rule != "needed-by"]
    for backup_id, decision in decisions.items():
        if decision.rule != "needed-by":
            continue
        needing = [backup for backup in requesters if backup_id in chain_of(backup, backups_by_id)]
        assert needing, f"{backup_id} is kept as needed-by but no kept backup needs it"
        assert decision.needed_by == max(needing, key=rank).backup_id


@PROPERTY_SETTINGS
@given(data=st.data())
def test_decide_keep_rules_match_reference(data: st.DataObject) -> None:
    history = data.draw(histories())
    backups = [dataclasses.replace(backup, parent_id=None, base_full_id=None) for backup in history]
    policy = data.draw(policies(within=False, caps=False))
    now = data.draw(times_after(backups))

    decisions = by_id(decide(backups, policy, now))

    expected = reference_keep_rules(backups, policy, now)
    actual = {i: (decision.keep, decision.rule, decision.bucket) for i, decision in decisions.items()}
    assert actual == expected


@PROPERTY_SETTINGS
@given(data=st.data())
def test_decide_caps_forget_oldest(data: st.DataObject) -> None:
    backups = data.draw(histories())
    policy = data.draw(policies())
    now = data.draw(times_after(backups))
    backups_by_id = {backup.backup_id: backup for backup in backups}
    uncapped_policy = dataclasses.replace(policy, max_backup_files=None, max_total_size_gb=None)
    uncapped = by_id(decide(backups, uncapped_policy, now))

    decisions = by_id(decide(backups, policy, now))

    selected = [backups_by_id[i] for i, decision in decisions.items() if decision.keep and decision.rule != "needed-by"]
    capped = [backups_by_id[i] for i, decision in decisions.items() if decision.rule in CAP_RULES]
    for backup_id, decision in uncapped.items():
        if decision.keep and decision.rule != "needed-by":
            assert decisions[backup_id] == decision or decisions[backup_id].rule in (*CAP_RULES, "needed-by")
        else:
            assert decisions[backup_id].rule not in CAP_RULES
    for backup in selected:
        assert decisions[backup.backup_id] == uncapped[backup.backup_id]
    if capped:
        assert rank(max(capped, key=rank)) < rank(min(selected, key=rank))

    kept = [backups_by_id[i] for i, decision in decisions.items() if decision.keep]
    if policy.max_backup_files is not None and len(kept) > policy.max_backup_files:
        assert len(selected) == 1
    size_limit = policy.max_total_size_gb
    if size_limit is not None and sum(backup.bytes_written for backup in kept) > size_limit * 10**9:
        assert len(selected) == 1

    # With a count cap alone, the cap forgets no more than it must. Keeping the
    # newest forgotten backup too would need more than max_backup_files backups.
    if policy.max_backup_files is not None and policy.max_total_size_gb is None and capped:
        with_one_more = set()
        for backup in [*selected, max(capped, key=rank)]:
            with_one_more |= chain_of(backup, backups_by_id)
        assert len(with_one_more) > policy.max_backup_files


@contextmanager
def host_time_zone(name: str) -> Iterator[None]:
    """Run the body with the process's local time zone set to `name`."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time.tzset()


@settings(max_examples=50, deadline=None, database=None)
@given(data=st.data())
def test_decide_ignores_host_time_zone(data: st.DataObject) -> None:
    backups = data.draw(histories())
    policy = data.draw(policies())
    now = data.draw(times_after(backups))

    results = []
    for host_zone in ("UTC", "Pacific/Kiritimati", "America/St_Johns"):
        with host_time_zone(host_zone):
            results.append(decide(backups, policy, now))

    assert results[0] == results[1]
    assert results[0] == results[2]


# Named cases.


def test_daily_buckets_across_dst_changes() -> None:
    backups = [
        # 23:30 local on both sides of the spring change, then 00:30 local, which is 23:30 at the old offset.
        BackupInfo("spring-before", "snapshot", utc(2024, 3, 10, 4, 30)),
        BackupInfo("spring-after", "snapshot", utc(2024, 3, 11, 3, 30)),
        BackupInfo("spring-next", "snapshot", utc(2024, 3, 11, 4, 30)),
        # 23:30 local on both sides of the autumn change.
        BackupInfo("autumn-before", "snapshot", utc(2024, 11, 3, 3, 30)),
        BackupInfo("autumn-after", "snapshot", utc(2024, 11, 4, 4, 30)),
    ]
    policy = Policy(keep_daily=10, timezone="America/New_York")

    decisions = by_id(decide(backups, policy, utc(2024, 12, 1)))

    assert decisions["spring-before"].bucket == "2024-03-09"
    assert decisions["spring-after"].bucket == "2024-03-10"
    assert decisions["spring-next"].bucket == "2024-03-11"
    assert decisions["autumn-before"].bucket == "2024-11-02"
    assert decisions["autumn-after"].bucket == "2024-11-03"
    assert all(decision.keep and decision.rule == "keep-daily" for decision in decisions.values())


def test_hourly_bucket_of_repeated_hour() -> None:
    # 05:30Z and 06:30Z are both 01:30 in New York on 2024-11-03, once in EDT and once in EST.
    backups = [
        BackupInfo("edt", "snapshot", utc(2024, 11, 3, 5, 30)),
        BackupInfo("est", "snapshot", utc(2024, 11, 3, 6, 30)),
        BackupInfo("earlier", "snapshot", utc(2024, 11, 3, 4, 30)),
    ]
    policy = Policy(keep_hourly=2, timezone="America/New_York")

    decisions = by_id(decide(backups, policy, utc(2024, 11, 4)))

    assert decisions["est"] == Decision("est", True, "keep-hourly", bucket="2024-11-03T01")
    assert decisions["edt"] == Decision("edt", False, "no-rule")
    assert decisions["earlier"] == Decision("earlier", True, "keep-hourly", bucket="2024-11-03T00")


@pytest.mark.parametrize(
    ("moments", "expected"),
    [
        pytest.param(
            {"2020-12-31": utc(2020, 12, 31, 12), "2021-01-01": utc(2021, 1, 1, 12), "2021-01-04": utc(2021, 1, 4, 12)},
            {"2020-12-31": None, "2021-01-01": "2020-W53", "2021-01-04": "2021-W01"},
            id="week-53",
        ),
        pytest.param(
            {"2019-12-29": utc(2019, 12, 29, 12), "2019-12-30": utc(2019, 12, 30, 12)},
            {"2019-12-29": "2019-W52", "2019-12-30": "2020-W01"},
            id="week-1-starts-in-december",
        ),
    ],
)
def test_weekly_buckets_use_iso_weeks(moments: dict[str, datetime], expected: dict[str, str | None]) -> None:
    backups = [BackupInfo(name, "snapshot", moment) for name, moment in moments.items()]

    decisions = by_id(decide(backups, Policy(keep_weekly=10), utc(2022, 1, 1)))

    assert {name: decision.bucket for name, decision in decisions.items()} == expected


def test_yearly_bucket_in_shanghai() -> None:
    backups = [
        BackupInfo("new-year", "snapshot", utc(2023, 12, 31, 17)),  # 2024-01-01 01:00 in Shanghai
        BackupInfo("old-year", "snapshot", utc(2023, 12, 31, 15)),  # 2023-12-31 23:00 in Shanghai
    ]
    policy = Policy(keep_yearly=2, timezone="Asia/Shanghai")

    decisions = by_id(decide(backups, policy, utc(2024, 2, 1)))

    assert decisions["new-year"] == Decision("new-year", True, "keep-yearly", bucket="2024")
    assert decisions["old-year"] == Decision("old-year", True, "keep-yearly", bucket="2023")


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_same_second_ranked_by_id(order: str) -> None:
    moment = utc(2024, 5, 1, 12, 0, 0)
    backups = [BackupInfo(backup_id, "snapshot", moment) for backup_id in order]

    last = by_id(decide(backups, Policy(keep_last=1), utc(2024, 6, 1)))
    daily = by_id(decide(backups, Policy(keep_daily=1), utc(2024, 6, 1)))

    assert last == {"a": Decision("a", False, "no-rule"), "b": Decision("b", True, "keep-last")}
    assert daily == {"a": Decision("a", False, "no-rule"), "b": Decision("b", True, "keep-daily", bucket="2024-05-01")}


def test_keep_last_keeps_chain_of_incremental() -> None:
    backups = [
        BackupInfo("full", "full", utc(2024, 1, 1)),
        BackupInfo("inc-1", "incremental", utc(2024, 1, 2), parent_id="full", base_full_id="full"),
        BackupInfo("snap", "snapshot", utc(2024, 1, 3)),
        BackupInfo("inc-2", "incremental", utc(2024, 1, 4), parent_id="inc-1", base_full_id="full"),
        BackupInfo("inc-3", "incremental", utc(2024, 1, 5), parent_id="inc-2", base_full_id="full"),
    ]

    decisions = by_id(decide(backups, Policy(keep_last=1), utc(2024, 2, 1)))

    assert decisions["inc-3"] == Decision("inc-3", True, "keep-last")
    for needed in ("full", "inc-1", "inc-2"):
        assert decisions[needed] == Decision(needed, True, "needed-by", needed_by="inc-3")
    assert decisions["snap"] == Decision("snap", False, "no-rule")


def test_differential_keeps_its_full() -> None:
    backups = [
        BackupInfo("full", "full", utc(2024, 1, 1)),
        BackupInfo("diff-1", "differential", utc(2024, 1, 2), parent_id="full", base_full_id="full"),
        BackupInfo("diff-2", "differential", utc(2024, 1, 3), parent_id="full", base_full_id="full"),
    ]

    decisions = by_id(decide(backups, Policy(keep_last=1), utc(2024, 2, 1)))

    assert decisions["diff-2"] == Decision("diff-2", True, "keep-last")
    assert decisions["full"] == Decision("full", True, "needed-by", needed_by="diff-2")
    assert decisions["diff-1"] == Decision("diff-1", False, "no-rule")


def test_missing_parent_is_ignored() -> None:
    backups = [BackupInfo("inc-2", "incremental", utc(2024, 1, 4), parent_id="inc-1", base_full_id="full")]

    decisions = decide(backups, Policy(keep_last=1), utc(2024, 2, 1))

    assert decisions == [Decision("inc-2", True, "keep-last")]


def test_base_full_kept_when_parent_missing() -> None:
    backups = [
        BackupInfo("full", "full", utc(2024, 1, 1)),
        BackupInfo("inc-2", "incremental", utc(2024, 1, 4), parent_id="inc-1", base_full_id="full"),
    ]

    decisions = by_id(decide(backups, Policy(keep_last=1), utc(2024, 2, 1)))

    assert decisions["inc-2"] == Decision("inc-2", True, "keep-last")
    assert decisions["full"] == Decision("full", True, "needed-by", needed_by="inc-2")


def test_cap_forgotten_backup_kept_for_chain() -> None:
    backups = [
        BackupInfo("full", "full", utc(2024, 1, 1)),
        BackupInfo("snap", "snapshot", utc(2024, 1, 2)),
        BackupInfo("inc", "incremental", utc(2024, 1, 3), parent_id="full", base_full_id="full"),
    ]
    policy = Policy(keep_last=3, max_backup_files=1)

    decisions = by_id(decide(backups, policy, utc(2024, 2, 1)))

    assert decisions["inc"] == Decision("inc", True, "keep-last")
    assert decisions["full"] == Decision("full", True, "needed-by", needed_by="inc")
    assert decisions["snap"] == Decision("snap", False, "max-backup-files")


def test_size_cap_keeps_newest() -> None:
    backups = [
        BackupInfo("old", "snapshot", utc(2024, 1, 1), bytes_written=400_000_000),
        BackupInfo("mid", "snapshot", utc(2024, 1, 2), bytes_written=500_000_000),
        BackupInfo("new", "snapshot", utc(2024, 1, 3), bytes_written=3_000_000_000),
    ]
    policy = Policy(keep_last=3, max_total_size_gb=1.0)

    decisions = by_id(decide(backups, policy, utc(2024, 2, 1)))

    assert decisions["new"] == Decision("new", True, "keep-last")
    assert decisions["mid"] == Decision("mid", False, "max-total-size")
    assert decisions["old"] == Decision("old", False, "max-total-size")


def test_empty_policy_keeps_everything() -> None:
    backups = [BackupInfo(f"s{day}", "snapshot", utc(2020, 1, day)) for day in range(1, 6)]

    decisions = decide(backups, Policy(), utc(2030, 1, 1))

    assert decisions == [Decision(backup.backup_id, True, "no-policy") for backup in backups]


def test_cap_only_policy_keeps_newest() -> None:
    backups = [BackupInfo(f"s{day}", "snapshot", utc(2020, 1, day)) for day in range(1, 6)]

    decisions = by_id(decide(backups, Policy(max_backup_files=2), utc(2030, 1, 1)))

    assert [i for i, decision in decisions.items() if decision.keep] == ["s4", "s5"]
    assert {decision.rule for decision in decisions.values()} == {"no-policy", "max-backup-files"}


def test_retention_days_by_type() -> None:
    now = utc(2024, 6, 1)
    backups = [
        BackupInfo("young-full", "full", now - timedelta(days=9, hours=23)),
        BackupInfo("old-full", "full", now - timedelta(days=10)),
        BackupInfo("young-snap", "snapshot", now - timedelta(days=1)),
    ]

    decisions = by_id(decide(backups, Policy(retention_days={"full": 10}), now))

    assert decisions["young-full"] == Decision("young-full", True, "retention-days")
    assert decisions["old-full"] == Decision("old-full", False, "no-rule")
    assert decisions["young-snap"] == Decision("young-snap", False, "no-rule")


@pytest.mark.parametrize(
    ("within", "newest", "zone", "oldest_kept"),
    [
        pytest.param("1m", utc(2024, 3, 31, 12), "UTC", utc(2024, 2, 29, 12), id="month-end-clamped"),
        pytest.param("1y", utc(2024, 2, 29, 12), "UTC", utc(2023, 2, 28, 12), id="leap-day-clamped"),
        pytest.param("1y6m", utc(2024, 8, 15), "UTC", utc(2023, 2, 15), id="years-and-months"),
        pytest.param("2w3d", utc(2024, 8, 18), "UTC", utc(2024, 8, 1), id="weeks-and-days"),
        pytest.param("1d1d", utc(2024, 8, 18), "UTC", utc(2024, 8, 16), id="repeated-unit"),
        pytest.param("12h", utc(2024, 8, 18, 12), "UTC", utc(2024, 8, 18), id="hours"),
        # 01:00 EDT on 11 March; a day earlier on the wall clock is 01:00 EST, 23 hours before.
        pytest.param("1d", utc(2024, 3, 11, 5), "America/New_York", utc(2024, 3, 10, 6), id="day-across-dst"),
        # 00:30 on 1 March in Shanghai; a month earlier is 00:30 on 1 February, local time.
        pytest.param("1m", utc(2024, 2, 29, 16, 30), "Asia/Shanghai", utc(2024, 1, 31, 16, 30), id="month-in-zone"),
    ],
)
def test_keep_within_boundary(within: str, newest: datetime, zone: str, oldest_kept: datetime) -> None:
    second = timedelta(seconds=1)
    backups = [
        BackupInfo("newest", "snapshot", newest),
        BackupInfo("at-boundary", "snapshot", oldest_kept),
        BackupInfo("outside", "snapshot", oldest_kept - second),
    ]

    decisions = by_id(decide(backups, Policy(keep_within=within, timezone=zone), newest))

    assert decisions["newest"] == Decision("newest", True, "keep-within")
    assert decisions["at-boundary"] == Decision("at-boundary", True, "keep-within")
    assert decisions["outside"] == Decision("outside", False, "no-rule")


@pytest.mark.parametrize("within", ["2500y", "99999999999d", "99999999999h"])
def test_keep_within_beyond_calendar_keeps_all(within: str) -> None:
    backups = [BackupInfo("first", "snapshot", utc(1, 1, 1)), BackupInfo("newest", "snapshot", utc(2024, 1, 1))]

    decisions = decide(backups, Policy(keep_within=within), utc(2024, 1, 1))

    assert decisions == [Decision("first", True, "keep-within"), Decision("newest", True, "keep-within")]


def test_parse_duration_sums_units() -> None:
    duration = parse_duration("1y6m2w3d4h1d")

    assert (duration.years, duration.months, duration.weeks, duration.days, duration.hours) == (1, 6, 2, 4, 4)


@pytest.mark.parametrize("text", ["", "30", "d", "1x", "1.5d", "-1d", "1D", " 1d", "1d ", "1 d", "1d\n", "١d"])
def test_parse_duration_rejects_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as caught:
        parse_duration(text)

    assert repr(text) in str(caught.value)


def test_decide_rejects_invalid_input() -> None:
    moment = utc(2024, 1, 1)
    now = utc(2024, 2, 1)
    backup = BackupInfo("a", "snapshot", moment)

    with pytest.raises(ValueError, match="duplicate backup id 'a'"):
        decide([backup, backup], Policy(keep_last=1), now)
    with pytest.raises(ValueError, match="committed_at .* of backup 'n'"):
        decide([BackupInfo("n", "snapshot", datetime(2024, 1, 1))], Policy(keep_last=1), now)
    with pytest.raises(ValueError, match="invalid now"):
        decide([backup], Policy(keep_last=1), datetime(2024, 2, 1))
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        decide([backup], Policy(keep_daily=1, timezone="Mars/Olympus"), now)
    with pytest.raises(ValueError, match="invalid duration '3 days'"):
        decide([], Policy(keep_within="3 days"), now)
    with pytest.raises(ValueError, match="invalid keep_daily -1"):
        decide([backup], Policy(keep_daily=-1), now)
