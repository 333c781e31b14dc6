"""Replication: upload the objects the remote lacks, then the new events as one log segment.

The order is what makes an interrupted run safe to resume. The last seq is
read first, the objects are uploaded next, and the segment of events up to
that seq goes last, so every object an uploaded event names is on the
remote already. An object that arrived whole is listed by the next run and
not uploaded again. An object cut off in the middle is not visible at all,
because a single PUT is atomic in S3.
"""

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

from ...catalog import events as ev
from ...catalog.repository import Repository
from ...i18n import _
from ..retention.locks import repository_lock
from .errors import ForeignRemoteLog, RemoteUnavailable
from .lease import DEFAULT_LEASE_SECONDS, acquire_lease
from .segments import SEGMENT_FOLDER, decode_segment, encode_segment, parse_segment_name, segment_name
from .store import S3ObjectStore, check_key

logger = logging.getLogger(__name__)

DEFAULT_PARALLEL = 16
DEFAULT_RETRIES = 4
DEFAULT_RETRY_DELAY_SECONDS = 0.5
MAX_RETRY_DELAY_SECONDS = 30.0

Report = Callable[[str], None]


@dataclass
class ReplicationResult:
    """The counts of one replication: objects found and uploaded, and the log segment written."""

    objects_local: int = 0
    objects_remote: int = 0
    objects_uploaded: int = 0
    bytes_uploaded: int = 0
    events_uploaded: int = 0
    segment: str | None = None


def replicate_repository(
    repository: Repository, remote: S3ObjectStore, parallel: int = DEFAULT_PARALLEL,
    retries: int = DEFAULT_RETRIES, retry_delay: float = DEFAULT_RETRY_DELAY_SECONDS, report: Report | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> ReplicationResult:
    """Upload the local objects the remote lacks, then the events after the last remote segment.

    Holds the remote's lease meanwhile, renewed every third of
    `lease_seconds`, and raises LeaseHeld when another writer holds it. Raises RemoteUnavailable when an upload still fails
    after `retries` retries; what was uploaded before stays and is not
    uploaded again.
    """
    # Shared like a backup's lock, so a prune cannot delete local objects while they are uploaded.
    with repository_lock(repository, "replicate", exclusive=False, wait_seconds=3600.0):
        lease = acquire_lease(remote, lease_seconds)
        try:
            result = _replicate(repository, remote, lease, parallel, retries, retry_delay, report)
        finally:
            lease.release()
    logger.info("replication completed bucket=%s objects=%d bytes=%d events=%d", remote.bucket,
                result.objects_uploaded, result.bytes_uploaded, result.events_uploaded)
    return result


def _replicate(repository, remote, lease, parallel, retries, retry_delay, report) -> ReplicationResult:
    result = ReplicationResult()
    last_seq = _last_local_seq(repository)

    check_key(remote, create=True)
    local_ids = set(repository.store.list_ids())
    missing = sorted(remote.missing_ids(local_ids))
    result.objects_local, result.objects_remote = len(local_ids), len(local_ids) - len(missing)
    if report is not None:
        report(_("{missing} of {local} objects to upload to bucket {bucket}").format(
            missing=len(missing), local=len(local_ids), bucket=remote.bucket))
    _upload_objects(repository, remote, lease, missing, parallel, retries, retry_delay, result)

    # The log must have one writer, so check that no other machine took the lease over meanwhile.
    lease.renew()
    _upload_log(repository, remote, last_seq, retries, retry_delay, result)
    return result


def _last_local_seq(repository: Repository) -> int:
    row = repository.connection.execute("SELECT max(seq) FROM events").fetchone()
    return row[0] or 0


def _upload_objects(repository, remote, lease, object_ids, parallel, retries, retry_delay, result) -> None:
    """Upload `object_ids` on `parallel` threads, renewing the lease, until the first upload that fails for good."""
    lock = threading.Lock()

    def upload(object_id: str) -> None:
        data = repository.store.get(object_id)
        if _with_retries(lambda: remote.put(object_id, data), retries, retry_delay, object_id):
            with lock:
                result.objects_uploaded += 1
                result.bytes_uploaded += len(data)

    with ThreadPoolExecutor(max(1, parallel), thread_name_prefix="tvcat-upload") as executor:
        pending = {executor.submit(upload, object_id) for object_id in object_ids}
        done: set = set()
        failed = False
        while pending and not failed:
            done, pending = wait(pending, timeout=lease.seconds / 3, return_when=FIRST_EXCEPTION)
            failed = any(future.exception() is not None for future in done)
            if pending and not failed:
                lease.renew()
        for future in pending:
            future.cancel()
        for future in done:
            future.result()


def _upload_log(repository, remote, last_seq, retries, retry_delay, result) -> None:
    """Upload the events after the last remote segment, up to `last_seq`, as one new segment."""
    replicated = last_replicated_seq(remote)
    if replicated:
        _check_same_log(repository, remote, replicated)
    if replicated >= last_seq:
        return
    records = list(ev.iter_events(repository.connection, after_seq=replicated))
    records = [record for record in records if record.seq <= last_seq]
    name = segment_name(records[0].seq, records[-1].seq)
    data = remote.seal(encode_segment(records), name)
    _with_retries(lambda: remote.put_file(f"{remote.base}{SEGMENT_FOLDER}{name}", data), retries, retry_delay,
                  name)
    result.events_uploaded, result.segment = len(records), name


def _check_same_log(repository: Repository, remote: S3ObjectStore, replicated: int) -> None:
    """Raise ForeignRemoteLog unless the last remote event is the local event of that seq."""
    keys = [key for key in remote.list_names(f"{remote.base}{SEGMENT_FOLDER}") if parse_segment_name(key)]
    last_key = max(keys, key=parse_segment_name)
    remote_last = decode_segment(remote.open(remote.read_file(last_key), last_key.rsplit("/", 1)[-1]))[-1]
    row = repository.connection.execute("SELECT hash FROM events WHERE seq = ?", (replicated,)).fetchone()
    if row is None or row[0] != remote_last.hash:
        raise ForeignRemoteLog(bucket=remote.bucket, prefix=remote.base, seq=replicated)


def last_replicated_seq(remote: S3ObjectStore) -> int:
    """Return the last seq of the remote log segments, 0 when there is none."""
    ranges = [parse_segment_name(key) for key in remote.list_names(f"{remote.base}{SEGMENT_FOLDER}")]
    return max((last for first, last in filter(None, ranges)), default=0)


def _with_retries(operation, retries: int, retry_delay: float, name: str):
    """Run `operation`, retrying RemoteUnavailable with exponential backoff and jitter."""
    attempt = 0
    while True:
        try:
            return operation()
        except RemoteUnavailable as error:
            attempt += 1
            if attempt > retries:
                raise
            delay = random.uniform(0.5, 1.0) * min(retry_delay * 2 ** (attempt - 1), MAX_RETRY_DELAY_SECONDS)
            logger.warning("upload retry name=%s attempt=%d delay=%.1f error=%s", name, attempt, delay, error)
            time.sleep(delay)
