"""The event log: append-only, hash-chained, in time order, and audited by `tvcat audit verify`."""

import sqlite3
from pathlib import Path

import blake3
import pytest

from tvcat.catalog.bars import BarColumns
from tvcat.catalog.repository import CATALOG_FILE, Repository
from tvcat.catalog.series import Series
from tvcat.engine.audit import verify_log
from tvcat.engine.backup import BackupType, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.importing import import_files
from tvcat.engine.restore import RestoreChoice, restore_backup
from tvcat.engine.verify import verify_repository
from tvcat.errors import EXIT_INTEGRITY

GENESIS = "0" * 64
EXPORTS = ("CRYPTO_SOLUSD, 1D.csv", "TVC_SILVER, 1W.csv", "FX_EURUSD, 1D.csv")
# The log fixture imports one file per event first, so event 2 is an import.completed.
IMPORT_SEQ = 2


@pytest.fixture
def log(tmp_path, repository, cache, data_dir, repo_path) -> Path:
    """Fill a repository with events of every common kind and return catalog.db's path."""
    exports = [data_dir / "tradingview" / name for name in EXPORTS]
    for export in exports:
        import_files(repository, cache, [export])
    full = create_backup(repository, cache, BackupType.FULL)
    cache.upsert(*edited_bar(cache))
    create_backup(repository, cache, BackupType.INCREMENTAL)
    cache.close()
    restore_backup(repository, RestoreChoice(repository.find_backup(full.backup_id), "test"), tmp_path / "r.db")
    verify_repository(repository, read_data=True)
    return repo_path / CATALOG_FILE


def edited_bar(cache: BarCache) -> tuple[Series, BarColumns]:
    """Return the sixth bar of TVC:SILVER 1W with its close raised by 1."""
    series = Series("TVC:SILVER", "1W")
    bar = cache.read_bars(series).slice(5, 6)
    return series, BarColumns(bar.ts, bar.open, bar.high, bar.low, bar.close + 1.0, bar.volume)


def read_events(path: Path) -> list[tuple]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(
            "SELECT seq, time, kind, subject, payload, prev_hash, hash FROM events ORDER BY seq"
        ).fetchall()
    finally:
        connection.close()


def execute(path: Path, *statements: str) -> None:
    """Run statements on catalog.db in one transaction, as someone with plain sqlite3 would."""
    connection = sqlite3.connect(path)
    try:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def chain_hash(prev_hash: str, seq: int, time: str, kind: str, subject: str, payload: str) -> str:
    """Compute events.hash as schema.sql defines it, independently of catalog/events.py."""
    text = "".join(f"{part}\n" for part in (prev_hash, seq, time, kind, subject, payload))
    return blake3.blake3(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize("statement", [
    "UPDATE events SET payload = '{}' WHERE seq = 3",
    "UPDATE events SET time = '2000-01-01T00:00:00.000000Z' WHERE seq = 3",
    "DELETE FROM events WHERE seq = 3",
    "DELETE FROM events",
], ids=["update-payload", "update-time", "delete-one", "delete-all"])
def test_events_reject_change(log, statement):
    before = read_events(log)
    with pytest.raises((sqlite3.IntegrityError, sqlite3.OperationalError), match="append-only"):
        execute(log, statement)
    assert read_events(log) == before


@pytest.mark.parametrize("column, value", [
    ("seq", "last_seq + 2"),
    ("time", "'2000-01-01T00:00:00.000000Z'"),
    ("prev_hash", f"'{GENESIS}'"),
], ids=["seq-gap", "time-earlier", "prev-hash-wrong"])
def test_events_reject_bad_append(log, column, value):
    """An append out of order is rejected, whatever the hash it claims."""
    fields = {
        "seq": "last_seq + 1",
        "time": "last_time",
        "prev_hash": "last_hash",
    }
    fields[column] = value
    statement = (
        "INSERT INTO events (seq, time, kind, subject, payload, prev_hash, hash) "
        f"SELECT {fields['seq']}, {fields['time']}, 'catalog.rebuilt', '', '{{}}', {fields['prev_hash']}, 'x' "
        "FROM (SELECT seq AS last_seq, time AS last_time, hash AS last_hash FROM events ORDER BY seq DESC LIMIT 1)"
    )
    before = read_events(log)
    with pytest.raises(sqlite3.IntegrityError):
        execute(log, statement)
    assert read_events(log) == before


def test_event_seq_has_no_gaps(log):
    events = read_events(log)
    assert [event[0] for event in events] == list(range(1, len(events) + 1))


def test_event_times_never_decrease(log):
    times = [event[1] for event in read_events(log)]
    assert len(times) > 5
    assert times == sorted(times)


def test_event_hash_chain_links(log):
    events = read_events(log)
    assert events[0][5] == GENESIS
    for previous, current in zip(events, events[1:]):
        assert current[5] == previous[6], f"event {current[0]} does not link"
    for seq, time, kind, subject, payload, prev_hash, hash_ in events:
        assert hash_ == chain_hash(prev_hash, seq, time, kind, subject, payload), f"event {seq}"


def test_audit_verify_intact_log(log, cli):
    count = len(read_events(log))
    result = cli("audit", "verify")
    assert result.returncode == 0, result.stderr
    assert f"{count} events checked" in result.stdout


def test_audit_finds_edited_event(log, cli):
    seq = IMPORT_SEQ
    before = read_events(log)[seq - 1]
    assert before[2] == "import.completed"
    execute(
        log,
        "DROP TRIGGER events_reject_update",
        f"UPDATE events SET payload = replace(payload, '\"rows_read\":', '\"rows_read\":1') WHERE seq = {seq}",
    )
    assert read_events(log)[seq - 1] != before

    result = cli("audit", "verify")

    assert result.returncode == EXIT_INTEGRITY, result.stderr
    assert f"damaged at event {seq}:" in result.stderr


def test_audit_finds_rehashed_event(log, cli):
    """An edit that also rewrites the event's own hash breaks the link of the next event."""
    seq = IMPORT_SEQ
    events = read_events(log)
    _, time, kind, subject, payload, prev_hash, _ = events[seq - 1]
    forged_payload = payload.replace('"rows_read":', '"rows_read":1')
    forged_hash = chain_hash(prev_hash, seq, time, kind, subject, forged_payload)
    assert forged_payload != payload
    execute(
        log,
        "DROP TRIGGER events_reject_update",
        f"UPDATE events SET payload = '{forged_payload}', hash = '{forged_hash}' WHERE seq = {seq}",
    )

    result = cli("audit", "verify")

    assert result.returncode == EXIT_INTEGRITY, result.stderr
    assert f"damaged at event {seq + 1}:" in result.stderr


def test_audit_finds_deleted_event(log, cli):
    seq = 5
    count = len(read_events(log))
    assert seq < count
    execute(log, "DROP TRIGGER events_reject_delete", f"DELETE FROM events WHERE seq = {seq}")

    result = cli("audit", "verify")

    assert result.returncode == EXIT_INTEGRITY, result.stderr
    assert f"damaged at event {seq + 1}:" in result.stderr
    assert f"seq {seq + 1} follows {seq - 1}" in result.stderr


def test_audit_records_its_result(log, repository):
    execute(log, "DROP TRIGGER events_reject_update", "UPDATE events SET subject = 'edited' WHERE seq = 2")

    report = verify_log(repository)

    assert report.first_bad_seq == 2
    last = read_events(log)[-1]
    assert last[2] == "audit.verified"
    assert '"first_bad_seq":2' in last[4]


def test_reopen_restores_triggers(log):
    """Opening a repository creates any missing trigger again, so the log stays append-only."""
    execute(log, "DROP TRIGGER events_reject_update", "DROP TRIGGER events_reject_delete")
    reopened = Repository(log.parent)
    reopened.close()

    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        execute(log, "DELETE FROM events WHERE seq = 1")
