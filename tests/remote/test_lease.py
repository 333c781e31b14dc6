import json
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from tvcat.catalog.objects import object_id
from tvcat.engine.remote.errors import LeaseHeld
from tvcat.engine.remote.lease import acquire_lease
from tvcat.engine.remote.replicate import replicate_repository
from tvcat.engine.remote.store import S3ObjectStore

LEASE_KEY = "team/tvcat/lease.json"


def write_lease(remote: S3ObjectStore, holder: str, expires_in: timedelta) -> None:
    now = datetime.now(timezone.utc)
    remote.put_file(LEASE_KEY, json.dumps({
        "holder": holder, "token": "other", "acquired_at": now.isoformat(timespec="seconds"),
        "expires_at": (now + expires_in).isoformat(timespec="seconds"),
    }).encode())


def test_second_writer_refused(remote_settings):
    remote = S3ObjectStore(remote_settings)
    first = acquire_lease(remote)

    with pytest.raises(LeaseHeld) as raised:
        acquire_lease(S3ObjectStore(remote_settings))

    message = str(raised.value)
    assert socket.gethostname() in message
    assert "expires at" in message
    first.release()
    acquire_lease(remote).release()


def test_replicate_refused_while_held(repository, remote_settings):
    remote = S3ObjectStore(remote_settings)
    write_lease(remote, "backup-host pid 4242", timedelta(minutes=30))

    with pytest.raises(LeaseHeld) as raised:
        replicate_repository(repository, remote)

    assert "backup-host pid 4242" in str(raised.value)
    assert list(remote.list_ids()) == []


def test_expired_lease_taken_over(repository, remote_settings):
    remote = S3ObjectStore(remote_settings)
    write_lease(remote, "crashed-host pid 1", timedelta(seconds=-1))

    replicate_repository(repository, remote)

    with pytest.raises(FileNotFoundError):
        remote.read_file(LEASE_KEY)


def test_dead_local_holder_taken_over(remote_settings):
    remote = S3ObjectStore(remote_settings)
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                             text=True, check=True)
    write_lease(remote, f"{socket.gethostname()} pid {process.stdout.strip()}", timedelta(minutes=30))

    acquire_lease(remote).release()


def test_takeover_race_has_one_winner(remote_settings):
    remote = S3ObjectStore(remote_settings)
    write_lease(remote, "crashed-host pid 1", timedelta(seconds=-1))
    stale_tag = remote.read_versioned(LEASE_KEY)[1]
    acquire_lease(remote)

    assert remote.replace_file(LEASE_KEY, b"{}", stale_tag) is False


def test_renew_detects_takeover(remote_settings):
    remote = S3ObjectStore(remote_settings)
    lease = acquire_lease(remote, seconds=0)
    acquire_lease(S3ObjectStore(remote_settings))

    with pytest.raises(LeaseHeld):
        lease.renew()


class SlowStore(S3ObjectStore):
    """An S3ObjectStore whose object uploads take 0.1 s each, so a replication outlasts a short lease."""

    def put(self, object_id_, data):
        time.sleep(0.1)
        return super().put(object_id_, data)


def test_lease_renewed_during_long_run(repository, remote_settings):
    for index in range(12):
        data = f"object {index}".encode()
        repository.store.put(object_id(data), data)
    remote = SlowStore(remote_settings)
    worker = threading.Thread(target=replicate_repository, args=(repository, remote),
                              kwargs={"parallel": 1, "lease_seconds": 0.3})
    worker.start()
    try:
        time.sleep(0.8)
        with pytest.raises(LeaseHeld):
            acquire_lease(S3ObjectStore(remote_settings))
    finally:
        worker.join()

    assert len(list(remote.list_ids())) == 12
