"""Audit of the event log: re-hash the chain and check order, seq by seq."""

import sqlite3
from dataclasses import dataclass

from ..catalog import events as ev
from ..catalog.repository import Repository
from ..i18n import _


@dataclass(frozen=True)
class AuditReport:
    events_checked: int
    first_bad_seq: int | None
    problem: str | None
    last_hash: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


def verify_log(repository: Repository) -> AuditReport:
    """Check the event log as check_log does, record `audit.verified`, and return the report."""
    report = check_log(repository.connection)
    repository.record(ev.AuditVerified(events_checked=report.events_checked, first_bad_seq=report.first_bad_seq,
                                       problem=report.problem))
    return report


def check_log(connection: sqlite3.Connection) -> AuditReport:
    """Check every event's hash, link, seq and time, recording nothing, and return the report.

    An event edited or deleted behind the triggers' back breaks the hash of
    that event or the link of the next one, so the first bad seq is exact.
    """
    checked = 0
    expected_prev = ev.GENESIS_HASH
    last_time = ""
    bad_seq: int | None = None
    problem: str | None = None
    for record in ev.iter_events(connection):
        checked += 1
        if record.seq != checked:
            bad_seq, problem = record.seq, _("seq {seq} follows {previous}: events are missing").format(
                seq=record.seq, previous=checked - 1)
            break
        if record.prev_hash != expected_prev:
            bad_seq, problem = record.seq, _("event {seq} does not link to the event before it").format(seq=record.seq)
            break
        actual = ev.hash_event(record.prev_hash, record.seq, record.time, record.kind, record.subject, record.payload)
        if actual != record.hash:
            bad_seq, problem = record.seq, _("event {seq} was changed after it was written: its hash does not match").format(
                seq=record.seq)
            break
        if record.time < last_time:
            bad_seq, problem = record.seq, _("event {seq} is earlier than the event before it").format(seq=record.seq)
            break
        expected_prev = record.hash
        last_time = record.time

    return AuditReport(checked, bad_seq, problem, expected_prev if bad_seq is None and checked else None)
