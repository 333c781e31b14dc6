"""Content-addressed objects: the on-disk header and the local directory store.

An object is a chunk or a manifest. Its id is the blake3 hash of its
canonical bytes. The file contains a 16-byte header and a zstd-compressed
payload, as schema.sql documents.
"""

import os
import re
from concurrent.futures import ThreadPoolExecutor
import secrets
import struct
from pathlib import Path
from typing import Iterator, Protocol

import blake3
import zstandard

from ..errors import ObjectCorrupted, ObjectMissing

MAGIC = b"TVCO"
FORMAT_VERSION = 1
KIND_CHUNK = 1
KIND_MANIFEST = 2
CODEC_ZSTD = 0
CODEC_PACKED_COLUMNS = 1
HEADER = struct.Struct("<4sBBBBQ")
DEFAULT_ZSTD_LEVEL = 3
# A chunk normally contains at most 8192 bars (about 400 kB canonical), so no real
# object comes near this limit, which stops a corrupted length from
# allocating gigabytes.
MAX_CANONICAL_BYTES = 1 << 30

FLUSH_THREADS = 8

_ID_PATTERN = re.compile(r"^[0-9a-f]{64}$")


def is_object_id(name: str) -> bool:
    """Tell whether `name` has the form of an object id: 64 lowercase hex digits."""
    return _ID_PATTERN.match(name) is not None


def object_id(canonical: bytes) -> str:
    """Return the id of an object: lowercase hex blake3 of its canonical bytes."""
    return blake3.blake3(canonical).hexdigest()


def encode_object(kind: int, codec: int, canonical_length: int, payload: bytes) -> bytes:
    """Return the file bytes of an object: the header, then `payload` as given."""
    return HEADER.pack(MAGIC, FORMAT_VERSION, kind, codec, 0, canonical_length) + payload


def compress(canonical: bytes) -> bytes:
    """Return the codec-0 payload of `canonical`: one zstd frame."""
    return zstandard.ZstdCompressor(level=DEFAULT_ZSTD_LEVEL).compress(canonical)


def read_header(object_id_: str, data: bytes) -> tuple[int, int, int, bytes]:
    """Check the header of object file bytes; return (kind, codec, canonical length, payload).

    Raises ObjectCorrupted for a short file, a wrong magic or version, an
    unknown kind or codec, or an implausible length.
    """
    if len(data) < HEADER.size:
        raise ObjectCorrupted(object_id=object_id_, reason=f"truncated to {len(data)} bytes")
    magic, version, kind, codec, _, canonical_length = HEADER.unpack_from(data)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise ObjectCorrupted(object_id=object_id_, reason="bad header")
    if kind not in (KIND_CHUNK, KIND_MANIFEST) or codec not in (CODEC_ZSTD, CODEC_PACKED_COLUMNS):
        raise ObjectCorrupted(object_id=object_id_, reason=f"unknown kind {kind} or codec {codec}")
    if canonical_length > MAX_CANONICAL_BYTES:
        raise ObjectCorrupted(object_id=object_id_, reason="implausible length")
    return kind, codec, canonical_length, data[HEADER.size:]


def decompress(object_id_: str, payload: bytes, canonical_length: int) -> bytes:
    """Decompress a codec-0 payload; raise ObjectCorrupted if it is not the stated length."""
    try:
        canonical = zstandard.ZstdDecompressor().decompress(payload, max_output_size=MAX_CANONICAL_BYTES)
    except zstandard.ZstdError as error:
        raise ObjectCorrupted(object_id=object_id_, reason=f"zstd: {error}") from error
    if len(canonical) != canonical_length:
        raise ObjectCorrupted(object_id=object_id_, reason="length mismatch")
    return canonical


def _write_temporary(final: Path, data: bytes) -> Path:
    """Write `data` to a new temporary file beside `final` and fsync it; return its path.

    The name starts with '.' and ends with '.tmp', so listings skip it.
    """
    temporary = final.parent / f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view):]
        os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        temporary.unlink(missing_ok=True)
        raise
    os.close(descriptor)
    return temporary


def fsync_path(path: Path) -> None:
    """Fsync a file or a directory by path."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(directory: Path) -> None:
    fsync_path(directory)


class ObjectStore(Protocol):
    """The storage of objects. Every backend keeps these promises.

    put: store bytes under an id; return False without writing when the id
    exists already. After put returns and `flush` has run, the object
    survives a crash; a crash before leaves no object under the final name.
    get: return the exact bytes stored; raise ObjectMissing if absent.
    """

    def put(self, object_id: str, data: bytes) -> bool: ...
    def get(self, object_id: str) -> bytes: ...
    def exists(self, object_id: str) -> bool: ...
    def size(self, object_id: str) -> int: ...
    def flush(self) -> None: ...
    def list_ids(self) -> Iterator[str]: ...
    def missing_ids(self, object_ids: set[str]) -> set[str]: ...


class LocalObjectStore:
    """Objects as files under `root/objects/<first two hex digits>/<id>`.

    Safe for one writer and many readers at once: a file appears under its
    final name only by rename after its bytes were fsynced, so a reader never
    sees a partial object. Temporary files start with '.' and are ignored.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root) / "objects"
        self._dirty_dirs: set[Path] = set()

    def path(self, object_id: str) -> Path:
        if not _ID_PATTERN.match(object_id):
            raise ValueError(f"invalid object id {object_id!r}")
        return self.root / object_id[:2] / object_id

    def exists(self, object_id: str) -> bool:
        return self.path(object_id).exists()

    def size(self, object_id: str) -> int:
        try:
            return self.path(object_id).stat().st_size
        except FileNotFoundError as error:
            raise ObjectMissing(object_id=object_id) from error

    def get(self, object_id: str) -> bytes:
        try:
            return self.path(object_id).read_bytes()
        except FileNotFoundError as error:
            raise ObjectMissing(object_id=object_id) from error

    def put(self, object_id: str, data: bytes) -> bool:
        """Write `data` durably under `object_id` unless it exists; return True if written."""
        final = self.path(object_id)
        if final.exists():
            return False

        directory = final.parent
        if not directory.exists():
            directory.mkdir(parents=True, exist_ok=True)
            self._dirty_dirs.add(directory.parent)
        temporary = _write_temporary(final, data)
        os.rename(temporary, final)
        self._dirty_dirs.add(directory)
        return True

    def replace(self, object_id: str, data: bytes) -> None:
        """Write `data` durably under `object_id`, replacing a damaged object of that id."""
        final = self.path(object_id)
        temporary = _write_temporary(final, data)
        os.replace(temporary, final)
        self._dirty_dirs.add(final.parent)

    def flush(self) -> None:
        """Fsync every directory that gained an entry, so the renames are durable.

        The fan-out directories are synced on worker threads, because a
        large backup touches all 256 of them and fsync waits on the disk.
        """
        leaves = [directory for directory in self._dirty_dirs if directory != self.root]
        with ThreadPoolExecutor(FLUSH_THREADS, thread_name_prefix="tvcat-flush") as executor:
            list(executor.map(_fsync_directory, leaves))
        if self.root in self._dirty_dirs:
            _fsync_directory(self.root)
        self._dirty_dirs.clear()

    def delete(self, object_id: str) -> None:
        self.path(object_id).unlink(missing_ok=True)

    def missing_ids(self, object_ids: set[str]) -> set[str]:
        """Return the ids of `object_ids` that the store lacks, listing the store once."""
        return object_ids - set(self.list_ids())

    def list_ids(self) -> Iterator[str]:
        if not self.root.exists():
            return
        for directory in sorted(self.root.iterdir()):
            if not directory.is_dir():
                continue
            for entry in sorted(directory.iterdir()):
                if _ID_PATTERN.match(entry.name):
                    yield entry.name
