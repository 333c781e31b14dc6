"""Client-side encryption of what goes to the remote bucket.

With `backup_config.storage_backends.remote.encryption_key` set (64 hex
digits, 32 bytes), every object and log segment is sealed with AES-256-GCM
before upload, with the plaintext name as associated data, so a sealed
object moved under another name fails to open. Objects are stored under the
keyed blake3 hash of their id, so the bucket shows neither the content hash
nor anything of the bars, while the same id still maps to the same name, and
deduplication works under one key. Two keys are derived from the configured
one with blake3's key derivation, one for names and one for sealing.
"""

import secrets

import blake3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ...errors import IntegrityError
from ...i18n import N_

MAGIC = b"TVE1"
NONCE_BYTES = 12


class RemoteDecryptFailed(IntegrityError):
    template = N_(
        "{name} on the remote cannot be decrypted: backup_config.storage_backends.remote.encryption_key is not "
        "the key it was encrypted with, or the object was changed"
    )


class RemoteCipher:
    """Names and seals remote objects under one configured key."""

    def __init__(self, key_hex: str) -> None:
        key = bytes.fromhex(key_hex)
        self._name_key = blake3.blake3(key, derive_key_context="tvcat 2026 remote object names").digest()
        self._aead = AESGCM(blake3.blake3(key, derive_key_context="tvcat 2026 remote sealing").digest())

    def name(self, object_id: str) -> str:
        """Return the name of `object_id` in the bucket: the keyed blake3 hash of the id, in hex."""
        return blake3.blake3(object_id.encode("ascii"), key=self._name_key).hexdigest()

    def seal(self, data: bytes, name: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return MAGIC + nonce + self._aead.encrypt(nonce, data, name.encode("utf-8"))

    def open(self, sealed: bytes, name: str) -> bytes:
        """Return the plaintext of `sealed`; raise RemoteDecryptFailed for a wrong key or changed bytes."""
        if not sealed.startswith(MAGIC) or len(sealed) < len(MAGIC) + NONCE_BYTES:
            raise RemoteDecryptFailed(name=name)
        nonce = sealed[len(MAGIC):len(MAGIC) + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, sealed[len(MAGIC) + NONCE_BYTES:], name.encode("utf-8"))
        except InvalidTag:
            raise RemoteDecryptFailed(name=name) from None


class RemoteNeedsKey(IntegrityError):
    template = N_(
        "the remote copy on bucket {bucket} is encrypted: set backup_config.storage_backends.remote.encryption_key "
        "to the key it was written with"
    )


class RemoteNotEncrypted(IntegrityError):
    template = N_(
        "the remote copy on bucket {bucket} under prefix {prefix!r} was written without encryption: give the "
        "encrypted copy a prefix of its own in backup_config.storage_backends.remote.prefix"
    )
