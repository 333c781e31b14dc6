"""S3ObjectStore: the ObjectStore protocol on an S3-compatible bucket, through obstore.

Objects live under `<prefix>/objects/<id>` and the replicated event log
under `<prefix>/log/`. Every write of an object is a conditional PUT
(`If-None-Match: *`), so an existing object is never overwritten. A single
PUT is atomic in S3: the key shows either no object or all of its bytes, so
an upload cut off in the middle leaves nothing under the final name.
"""

import os
import re
from datetime import timedelta
from typing import Iterator

import obstore
from obstore.exceptions import (
    AlreadyExistsError, NotFoundError, PermissionDeniedError, PreconditionError, UnauthenticatedError,
)
from obstore.store import S3Store

from ...catalog.objects import is_object_id
from ...errors import ObjectMissing
from ..config.checks import redact_url
from ..config.schema import RemoteBackend
from ..sync.tasks import NoRemoteConfigured
from .cipher import RemoteCipher, RemoteNeedsKey, RemoteNotEncrypted
from .errors import RemoteCredentialsMissing, RemoteUnavailable

CONFIG_KEY = "backup_config.storage_backends.remote"
# Signature version 4 needs a region even where the server ignores it, as moto does.
DEFAULT_REGION = "us-east-1"
DEFAULT_CONNECTIONS = 16
MAX_REASON_LENGTH = 300
# The user and password part of a URL, which a client error message may repeat.
_URL_USERINFO = re.compile(r"//[^/@\s]*@")


class S3ObjectStore:
    """Objects of a repository in an S3 bucket, safe for many threads at once."""

    def __init__(self, settings: RemoteBackend, max_connections: int = DEFAULT_CONNECTIONS) -> None:
        if not settings.enabled or not settings.bucket:
            raise NoRemoteConfigured()
        self.bucket = settings.bucket
        self.endpoint = redact_url(settings.endpoint_url) if settings.endpoint_url else "AWS S3"
        self.base = f"{settings.prefix.strip('/')}/" if settings.prefix.strip("/") else ""
        key_id, secret = _credentials(settings)
        if not key_id or not secret:
            raise RemoteCredentialsMissing(bucket=self.bucket, endpoint=self.endpoint)
        self._secrets = (key_id, secret)
        self._store = _open_store(settings, key_id, secret, max_connections)
        self.cipher = RemoteCipher(settings.encryption_key) if settings.encryption_key else None

    def key(self, object_id: str) -> str:
        """Return the bucket key of an object: its id, or with encryption the keyed hash of its id."""
        if not is_object_id(object_id):
            raise ValueError(f"invalid object id {object_id!r}")
        name = self.cipher.name(object_id) if self.cipher else object_id
        return f"{self.base}objects/{name}"

    def put(self, object_id: str, data: bytes) -> bool:
        """Upload `data` under `object_id` unless the bucket has it already; return True if uploaded."""
        return self.put_file(self.key(object_id), self.seal(data, object_id))

    def get(self, object_id: str) -> bytes:
        try:
            return self.open(self.read_file(self.key(object_id)), object_id)
        except FileNotFoundError as error:
            raise ObjectMissing(object_id=object_id) from error

    def seal(self, data: bytes, name: str) -> bytes:
        """Encrypt `data` when an encryption key is configured; `name` is bound to it."""
        return self.cipher.seal(data, name) if self.cipher else data

    def open(self, data: bytes, name: str) -> bytes:
        """Decrypt what `seal` made; raise RemoteDecryptFailed for a wrong key."""
        return self.cipher.open(data, name) if self.cipher else data

    def missing_ids(self, object_ids: set[str]) -> set[str]:
        """Return the ids of `object_ids` that the bucket lacks, listing the bucket once."""
        present = {name.rsplit("/", 1)[-1] for name in self.list_names(f"{self.base}objects/")}
        return {object_id for object_id in object_ids if self.key(object_id).rsplit("/", 1)[-1] not in present}

    def exists(self, object_id: str) -> bool:
        try:
            self.size(object_id)
        except ObjectMissing:
            return False
        return True

    def size(self, object_id: str) -> int:
        try:
            return obstore.head(self._store, self.key(object_id))["size"]
        except (NotFoundError, FileNotFoundError) as error:
            raise ObjectMissing(object_id=object_id) from error
        except Exception as error:
            raise self._error("HEAD", error) from error

    def flush(self) -> None:
        """Do nothing, because S3 stores an object durably before it returns the PUT's response."""

    def delete(self, object_id: str) -> None:
        self.delete_file(self.key(object_id))

    def list_ids(self) -> Iterator[str]:
        """Yield the ids of the stored objects; an encrypted bucket cannot list ids, so use missing_ids there."""
        if self.cipher is not None:
            raise ValueError("an encrypted bucket names objects by keyed hashes: use missing_ids")
        for name in self.list_names(f"{self.base}objects/"):
            object_id = name.rsplit("/", 1)[-1]
            if is_object_id(object_id):
                yield object_id

    def put_file(self, key: str, data: bytes) -> bool:
        """Upload `data` under `key` with a conditional PUT; return False when the key exists."""
        try:
            obstore.put(self._store, key, data, mode="create")
        except (AlreadyExistsError, PreconditionError):
            return False
        except Exception as error:
            raise self._error("PUT", error) from error
        return True

    def read_file(self, key: str) -> bytes:
        """Download the bytes under `key`; raise FileNotFoundError when there is none."""
        try:
            return obstore.get(self._store, key).bytes().to_bytes()
        except (NotFoundError, FileNotFoundError) as error:
            raise FileNotFoundError(key) from error
        except Exception as error:
            raise self._error("GET", error) from error

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        """Download the bytes under `key` and their ETag; raise FileNotFoundError when there is none."""
        try:
            response = obstore.get(self._store, key)
            return response.bytes().to_bytes(), response.meta["e_tag"]
        except (NotFoundError, FileNotFoundError) as error:
            raise FileNotFoundError(key) from error
        except Exception as error:
            raise self._error("GET", error) from error

    def replace_file(self, key: str, data: bytes, e_tag: str) -> bool:
        """Overwrite `key` only if it still has `e_tag` (If-Match); return False when it changed since."""
        try:
            obstore.put(self._store, key, data, mode={"e_tag": e_tag})
        except (PreconditionError, NotFoundError, FileNotFoundError):
            return False
        except Exception as error:
            raise self._error("PUT", error) from error
        return True

    def delete_file(self, key: str) -> None:
        try:
            obstore.delete(self._store, key)
        except Exception as error:
            raise self._error("DELETE", error) from error

    def list_names(self, folder: str) -> list[str]:
        """Return every key under `folder` (which ends with '/'), in S3's order."""
        try:
            return [entry["path"] for batch in obstore.list(self._store, prefix=folder) for entry in batch]
        except Exception as error:
            raise self._error("LIST", error) from error

    def _error(self, operation: str, error: Exception) -> RemoteUnavailable:
        """Wrap a client error, naming the config key to fix; the reason never contains a credential."""
        if isinstance(error, (PermissionDeniedError, UnauthenticatedError)):
            key = f"{CONFIG_KEY}.access_key_id, secret_access_key"
        elif isinstance(error, (NotFoundError, FileNotFoundError)):
            key = f"{CONFIG_KEY}.bucket"
        else:
            key = f"{CONFIG_KEY}.endpoint_url"
        lines = str(error).strip().splitlines()
        reason = f"{type(error).__name__}: {lines[0] if lines else ''}"
        reason = _URL_USERINFO.sub("//***@", reason)
        for secret in self._secrets:
            reason = reason.replace(secret, "***")
        return RemoteUnavailable(operation=operation, bucket=self.bucket, endpoint=self.endpoint,
                                 reason=reason[:MAX_REASON_LENGTH], key=key)


def _credentials(settings: RemoteBackend) -> tuple[str | None, str | None]:
    """Return the key pair from the config, else from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""
    if settings.access_key_id and settings.secret_access_key:
        return settings.access_key_id, settings.secret_access_key
    return os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")


def _open_store(settings: RemoteBackend, key_id: str, secret: str, max_connections: int) -> S3Store:
    """Open the obstore client with explicit keys, so it never queries an instance metadata service."""
    options: dict = {"timeout": timedelta(seconds=60), "connect_timeout": timedelta(seconds=10),
                     "pool_max_idle_per_host": str(max_connections)}
    config: dict = {"region": settings.region or DEFAULT_REGION, "access_key_id": key_id,
                    "secret_access_key": secret}
    if settings.endpoint_url:
        config["endpoint"] = settings.endpoint_url
        options["allow_http"] = settings.endpoint_url.startswith("http://")
    retry = {"max_retries": 2, "retry_timeout": timedelta(seconds=30),
             "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=2),
                         "base": 2}}
    return S3Store(settings.bucket, config=config, client_options=options, retry_config=retry)


# An encrypted remote contains this object, sealed, so a wrong key fails before anything else is read.
KEY_CHECK = "key-check"
_KEY_CHECK_TEXT = b"tvcat remote key check"


def check_key(remote: S3ObjectStore, create: bool) -> None:
    """Check that the configured encryption (or none) matches the remote copy.

    With `create`, an encrypted remote that has no check object yet gets
    one. Raises RemoteDecryptFailed for a wrong key, RemoteNeedsKey when the
    remote is encrypted and no key is set, and RemoteNotEncrypted when a key
    is set for a prefix that contains a copy written without one.
    """
    path = f"{remote.base}{KEY_CHECK}"
    try:
        sealed = remote.read_file(path)
    except FileNotFoundError:
        if remote.cipher is None:
            return
        if remote.list_names(f"{remote.base}log/"):
            raise RemoteNotEncrypted(bucket=remote.bucket, prefix=remote.base) from None
        if create:
            remote.put_file(path, remote.seal(_KEY_CHECK_TEXT, KEY_CHECK))
        return
    if remote.cipher is None:
        raise RemoteNeedsKey(bucket=remote.bucket)
    remote.open(sealed, KEY_CHECK)
