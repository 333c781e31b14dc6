"""Disaster recovery: rebuild catalog.db from the log segments on the remote.

The segments are read in seq order and every event is checked as
`tvcat audit verify` checks the local log: consecutive seqs, each
prev_hash equal to the hash before it, and each hash recomputed. Only a
whole, unbroken chain is written, and the projections are then rebuilt
with the manifests read from the remote.
"""

from pathlib import Path

from ...catalog import events as ev
from ...catalog.projections import rebuild_projections
from ...catalog.repository import CATALOG_FILE, Repository
from ...errors import InvalidOption
from ...i18n import _
from .errors import RemoteLogDamaged
from .segments import SEGMENT_FOLDER, decode_segment, parse_segment_name
from .store import S3ObjectStore, check_key


def download_log(remote: S3ObjectStore) -> list[ev.EventRecord]:
    """Return every event of the remote segments after checking the hash chain; raise RemoteLogDamaged."""
    check_key(remote, create=False)
    keys = [key for key in remote.list_names(f"{remote.base}{SEGMENT_FOLDER}") if parse_segment_name(key)]
    records: list[ev.EventRecord] = []
    for key in sorted(keys, key=parse_segment_name):
        try:
            records.extend(decode_segment(remote.open(remote.read_file(key), key.rsplit("/", 1)[-1])))
        except ValueError as error:
            raise RemoteLogDamaged(bucket=remote.bucket, seq=parse_segment_name(key)[0],
                                   problem=_("segment {key} cannot be read: {reason}").format(
                                       key=key, reason=error)) from error
    _check_chain(remote, records)
    return records


def _check_chain(remote: S3ObjectStore, records: list[ev.EventRecord]) -> None:
    previous_hash = ev.GENESIS_HASH
    for expected_seq, record in enumerate(records, start=1):
        if record.seq != expected_seq:
            problem = _("expected seq {expected}, found {found}").format(expected=expected_seq, found=record.seq)
        elif record.prev_hash != previous_hash:
            problem = _("prev_hash does not match the hash of the event before")
        elif ev.hash_event(record.prev_hash, record.seq, record.time, record.kind, record.subject,
                           record.payload) != record.hash:
            problem = _("the hash does not match the event's content")
        else:
            previous_hash = record.hash
            continue
        raise RemoteLogDamaged(bucket=remote.bucket, seq=record.seq, problem=problem)


def recover_catalog(remote: S3ObjectStore, repository_path: Path) -> tuple[int, int]:
    """Create catalog.db at `repository_path` from the remote log; return (events, manifests unreadable).

    Raises InvalidOption when a catalog exists there already, so recovery
    never mixes two logs.
    """
    if (Path(repository_path) / CATALOG_FILE).exists():
        raise InvalidOption(detail=_(
            "a catalog exists already at {path}: recover into an empty directory with --repo"
        ).format(path=Path(repository_path) / CATALOG_FILE))
    records = download_log(remote)

    repository = Repository(repository_path)
    try:
        connection = repository.connection
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT INTO events (seq, time, kind, subject, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(r.seq, r.time, r.kind, r.subject, r.payload, r.prev_hash, r.hash) for r in records],
        )
        connection.execute("COMMIT")
        missing = rebuild_projections(connection, remote)[1]
    finally:
        repository.close()
    return len(records), missing
