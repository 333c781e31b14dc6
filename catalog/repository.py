"""A repository: catalog.db (the event log and its projections) beside the object store."""

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import AmbiguousBackupId, AmbiguousGuideId, BackupForgotten, BackupNotFound, DatabaseUnavailable, ManifestMismatch, RepositoryNotFound
from . import events as ev
from . import schema
from .manifests import Manifest, State, apply_manifest, decode_manifest
from .objects import LocalObjectStore
from .projections import apply_event

CATALOG_FILE = "catalog.db"
_GUIDE_ID_PATTERN = re.compile(r"backup_(?P<type>full|incremental|differential|snapshot)_(?P<seconds>[0-9]{1,11})")


@dataclass(frozen=True)
class BackupRow:
    """One row of the backups projection."""

    backup_id: str
    type: str
    status: str
    parent_id: str | None
    base_full_id: str | None
    symbols: list[str] | None
    timeframes: list[str] | None
    started_at: str
    committed_at: str | None
    failed_at: str | None
    error: str | None
    manifest_id: str | None
    cache_id: str | None
    change_seq: int | None
    series_count: int | None
    bar_count: int | None
    window_count: int | None
    windows_written: int | None
    chunks_written: int | None
    bytes_written: int | None
    duration_seconds: float | None

    @property
    def guide_id(self) -> str:
        """The id in the original guide's form, `backup_<type>_<unix seconds of the start>`, which restore accepts."""
        started = datetime.strptime(self.backup_id[:15], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
        return f"backup_{self.type}_{int(started.timestamp())}"


_BACKUP_COLUMNS = ", ".join(BackupRow.__dataclass_fields__)


def _backup_row(row: tuple) -> BackupRow:
    values = list(row)
    values[5] = None if values[5] is None else json.loads(values[5])
    values[6] = None if values[6] is None else json.loads(values[6])
    return BackupRow(*values)


class Repository:
    """The catalog database and the object store of one repository directory."""

    def __init__(self, path: Path | str, create: bool = True) -> None:
        self.path = Path(path)
        if not (self.path / CATALOG_FILE).exists():
            if not create:
                raise RepositoryNotFound(path=str(self.path))
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise DatabaseUnavailable(path=str(self.path / CATALOG_FILE), reason=error.strerror) from error
        self.connection = schema.connect(self.path / CATALOG_FILE, "catalog")
        self.store = LocalObjectStore(self.path)

    @classmethod
    def open_readonly(cls, path: Path | str) -> "Repository":
        """Open an existing repository for reading only: no table is created, and `record` fails.

        Raises RepositoryNotFound when there is no catalog, and
        DatabaseUnavailable when the file is not a tvcat catalog.
        """
        repository = cls.__new__(cls)
        repository.path = Path(path)
        catalog = repository.path / CATALOG_FILE
        if not catalog.exists():
            raise RepositoryNotFound(path=str(repository.path))
        try:
            repository.connection = sqlite3.connect(f"{catalog.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
            repository.connection.execute("SELECT backup_id FROM backups LIMIT 1").fetchall()
        except sqlite3.Error as error:
            raise DatabaseUnavailable(path=str(catalog), reason=str(error)) from error
        repository.store = LocalObjectStore(repository.path)
        return repository

    def close(self) -> None:
        self.connection.close()

    def record(self, event: ev.Event) -> ev.EventRecord:
        """Append `event` and update the projections in one transaction."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            record = ev.append_event(self.connection, event)
            apply_event(self.connection, record, self.store)
            self.connection.execute("COMMIT")
        except BaseException:
            # SQLite rolls back by itself after some errors, such as a full disk.
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
            raise
        return record

    def backups(self, status: str | None = "committed") -> list[BackupRow]:
        """Return backups in id order (which is start-time order), optionally by status."""
        query = f"SELECT {_BACKUP_COLUMNS} FROM backups"
        parameters: tuple = ()
        if status is not None:
            query += " WHERE status = ?"
            parameters = (status,)
        rows = self.connection.execute(query + " ORDER BY backup_id", parameters).fetchall()
        return [_backup_row(row) for row in rows]

    def backup(self, backup_id: str) -> BackupRow:
        row = self.connection.execute(
            f"SELECT {_BACKUP_COLUMNS} FROM backups WHERE backup_id = ?", (backup_id,)
        ).fetchone()
        if row is None:
            raise BackupNotFound(backup_id=backup_id)
        return _backup_row(row)

    def find_backup(self, prefix: str) -> BackupRow:
        """Return the committed backup whose id is `prefix` or starts with it.

        The original guide's ids, `backup_<type>_<unix seconds>`, name the
        backup of that type started in that second.
        """
        guide_style = _GUIDE_ID_PATTERN.fullmatch(prefix)
        if guide_style is not None:
            return self._find_guide_style(prefix, guide_style["type"], int(guide_style["seconds"]))
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.connection.execute(
            f"SELECT {_BACKUP_COLUMNS} FROM backups WHERE status = 'committed' "
            "AND (backup_id = ? OR backup_id LIKE ? ESCAPE '\\') ORDER BY backup_id",
            (prefix, escaped + "%"),
        ).fetchall()
        exact = [row for row in rows if row[0] == prefix]
        if exact:
            return _backup_row(exact[0])
        if not rows:
            self._raise_if_forgotten(prefix, escaped)
            raise BackupNotFound(backup_id=prefix)
        if len(rows) > 1:
            shown = ", ".join(row[0] for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise AmbiguousBackupId(prefix=prefix, matches=shown)
        return _backup_row(rows[0])

    def _raise_if_forgotten(self, prefix: str, escaped: str) -> None:
        """Raise BackupForgotten when `prefix` names exactly one backup that a prune forgot."""
        rows = self.connection.execute(
            "SELECT f.backup_id, f.forgotten_at, f.rule FROM forgotten_backups f "
            "WHERE f.backup_id = ? OR f.backup_id LIKE ? ESCAPE '\\' ORDER BY f.backup_id LIMIT 2",
            (prefix, escaped + "%"),
        ).fetchall()
        if len(rows) == 1:
            backup_id, forgotten_at, rule = rows[0]
            raise BackupForgotten(backup_id=backup_id, forgotten_at=forgotten_at, rule=rule)

    def _find_guide_style(self, name: str, backup_type: str, seconds: int) -> BackupRow:
        started = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y%m%dT%H%M%S.")
        rows = [row for row in self.connection.execute(
            f"SELECT {_BACKUP_COLUMNS} FROM backups WHERE status = 'committed' AND type = ? "
            "AND substr(backup_id, 1, 16) = ? ORDER BY backup_id",
            (backup_type, started),
        )]
        if not rows:
            raise BackupNotFound(backup_id=name)
        if len(rows) > 1:
            raise AmbiguousGuideId(name=name, matches=", ".join(row[0] for row in rows[:5]))
        return _backup_row(rows[0])

    def latest_backup(self, symbols, timeframes, types: tuple[str, ...] | None = None) -> BackupRow | None:
        """Return the latest committed backup of exactly this scope, optionally of some types."""
        for row in reversed(self.backups()):
            if row.symbols != symbols or row.timeframes != timeframes:
                continue
            if types is None or row.type in types:
                return row
        return None

    def chain(self, backup: BackupRow) -> list[BackupRow]:
        """Return the backups needed to restore `backup`, root first, ending with itself."""
        chain = [backup]
        while chain[-1].parent_id is not None:
            chain.append(self.backup(chain[-1].parent_id))
        chain.reverse()
        return chain

    def read_manifest(self, manifest_id: str) -> Manifest:
        return decode_manifest(manifest_id, self.store.get(manifest_id))

    def read_backup_manifest(self, backup: BackupRow) -> Manifest:
        """Read the manifest of `backup` and check that it names that backup.

        The check catches a catalog row edited to point at another backup's
        manifest. Raises ObjectMissing, ObjectCorrupted or ManifestMismatch.
        """
        manifest = self.read_manifest(backup.manifest_id)
        if manifest.backup_id != backup.backup_id or manifest.parent_id != backup.parent_id:
            raise ManifestMismatch(manifest_id=backup.manifest_id, backup_id=backup.backup_id,
                                   owner=manifest.backup_id)
        return manifest

    def resolve_state(self, backup: BackupRow) -> State:
        """Return the restored state of `backup` by applying the manifests of its chain."""
        state: State = {}
        for member in self.chain(backup):
            state = apply_manifest(state, self.read_backup_manifest(member))
        return state

    def last_event_time(self) -> str | None:
        row = self.connection.execute("SELECT time FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else row[0]


def connect_readonly(path: Path | str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{Path(path) / CATALOG_FILE}?mode=ro", uri=True)
