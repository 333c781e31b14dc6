"""One writer per remote repository: a lease object at `<prefix>/lease.json`.

A writer creates the lease with a conditional PUT (`If-None-Match: *`), so
of two machines starting at once only one succeeds. A lease whose
`expires_at` has passed is taken over with `If-Match` on its ETag, so of two
machines taking over a crashed holder's lease only one succeeds too. The
times come from the writers' clocks: a clock that runs far ahead lets its
machine take over a live lease early. A lease of a process of the same
host that is gone, such as one killed, is taken over at once.
"""

import json
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psutil

from .errors import LeaseHeld
from .store import S3ObjectStore

logger = logging.getLogger(__name__)

LEASE_FILE = "lease.json"
DEFAULT_LEASE_SECONDS = 3600.0


@dataclass
class Lease:
    """The lease this process holds, and the random token that proves it is ours."""

    remote: S3ObjectStore
    token: str
    seconds: float = DEFAULT_LEASE_SECONDS

    @property
    def key(self) -> str:
        return f"{self.remote.base}{LEASE_FILE}"

    def renew(self) -> None:
        """Extend the lease by its length, or raise LeaseHeld when another writer took it over meanwhile."""
        try:
            data, e_tag = self.remote.read_versioned(self.key)
        except FileNotFoundError:
            # Deleted by hand: create it again, unless another writer was faster.
            if not self.remote.put_file(self.key, self.body()):
                raise _held(self.remote, self.key) from None
            return
        if json.loads(data).get("token") != self.token:
            raise _held(self.remote, self.key)
        if not self.remote.replace_file(self.key, self.body(), e_tag):
            raise _held(self.remote, self.key)

    def release(self) -> None:
        """Delete the lease if this process still holds it."""
        try:
            data, _ = self.remote.read_versioned(self.key)
        except FileNotFoundError:
            return
        if json.loads(data).get("token") == self.token:
            # NOTE: obstore 0.12's delete has no If-Match, so a takeover between this read and the delete would
            # be undone. A takeover needs our lease to have expired, so only a process stalled that long risks it.
            self.remote.delete_file(self.key)

    def body(self) -> bytes:
        now = datetime.now(timezone.utc)
        return json.dumps({
            "holder": f"{socket.gethostname()} pid {os.getpid()}", "token": self.token,
            "acquired_at": now.isoformat(timespec="milliseconds"),
            "expires_at": (now + timedelta(seconds=self.seconds)).isoformat(timespec="milliseconds"),
        }).encode("utf-8")


def acquire_lease(remote: S3ObjectStore, seconds: float = DEFAULT_LEASE_SECONDS) -> Lease:
    """Take the lease of the remote repository, or raise LeaseHeld when another writer holds it."""
    lease = Lease(remote, secrets.token_hex(16), seconds=seconds)
    if remote.put_file(lease.key, lease.body()):
        return lease

    try:
        data, e_tag = remote.read_versioned(lease.key)
    except FileNotFoundError:
        # The holder released it between our PUT and this read, so try to create it once more.
        if remote.put_file(lease.key, lease.body()):
            return lease
        raise _held(remote, lease.key)
    current = json.loads(data)
    if not _expired(current):
        raise _held(remote, lease.key, current)
    if not remote.replace_file(lease.key, lease.body(), e_tag):
        raise _held(remote, lease.key)
    logger.warning("remote lease taken over bucket=%s expired_holder=%s expired_at=%s", remote.bucket,
                   current.get("holder"), current.get("expires_at"))
    return lease


def _expired(current: dict) -> bool:
    """Tell whether a lease ran out, or was held by a process of this host that is gone, such as one killed."""
    if datetime.fromisoformat(current["expires_at"]) <= datetime.now(timezone.utc):
        return True
    host, _, pid = current.get("holder", "").rpartition(" pid ")
    return host == socket.gethostname() and pid.isdigit() and not psutil.pid_exists(int(pid))


def _held(remote: S3ObjectStore, key: str, current: dict | None = None) -> LeaseHeld:
    if current is None:
        try:
            current = json.loads(remote.read_versioned(key)[0])
        except FileNotFoundError:
            current = {}
    return LeaseHeld(bucket=remote.bucket, holder=current.get("holder", "?"),
                     acquired_at=current.get("acquired_at", "?"), expires_at=current.get("expires_at", "?"))
