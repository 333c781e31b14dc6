"""Verification: prove that every committed backup can be restored.

Without `read_data`, verify checks that every manifest decodes and matches
its id, that every chain is whole and that every referenced chunk exists.
With `read_data`, it also decodes and re-hashes every chunk.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..catalog import events as ev
from ..catalog.chunks import decode_chunk
from ..catalog.manifests import Manifest, State, apply_manifest
from ..catalog.repository import BackupRow, Repository
from ..errors import IntegrityError, VerifyFailed
from ..i18n import _
from .retention.locks import repository_lock

logger = logging.getLogger(__name__)

READ_THREADS = 2


@dataclass(frozen=True)
class VerifyReport:
    backups_checked: int
    objects_checked: int
    faults: list[ev.VerifyFault]
    broken_backups: list[str]
    newest_sound_backup: str | None

    @property
    def ok(self) -> bool:
        return not self.faults


def verify_repository(repository: Repository, backup_id: str | None = None, read_data: bool = False) -> VerifyReport:
    """Check the backups (all, or one with its chain), record `verify.completed`, return the report.

    Damaged or missing manifests and chunks become faults in the report, not exceptions.
    The repository lock is held shared, so a prune cannot delete objects while they are checked.
    """
    with repository_lock(repository, "verify", exclusive=False, wait_seconds=3600.0):
        return _verify(repository, backup_id, read_data)


def _verify(repository: Repository, backup_id: str | None, read_data: bool) -> VerifyReport:
    all_backups = repository.backups()
    by_id = {backup.backup_id: backup for backup in all_backups}
    if backup_id is not None:
        chosen = repository.find_backup(backup_id)
        targets = [chosen]
    else:
        targets = all_backups

    faults: list[ev.VerifyFault] = []
    manifests: dict[str, Manifest | None] = {}
    states: dict[str, State | None] = {}
    for backup in _with_chains(targets, by_id, faults):
        states[backup.backup_id] = _resolve(repository, backup, by_id, manifests, states, faults)

    checked_states = {backup.backup_id: states.get(backup.backup_id) for backup in targets}
    users = _chunk_users(checked_states)
    existing = set(users) - repository.store.missing_ids(set(users))
    bad_chunks = _check_chunks(repository, users, existing, read_data)
    for chunk_id, (problem, detail) in sorted(bad_chunks.items()):
        backups, series = users[chunk_id]
        faults.append(ev.VerifyFault(problem=problem, object_id=chunk_id, detail=detail,
                                     backups=sorted(backups), series=sorted(series)))

    broken = sorted({backup for fault in faults for backup in fault.backups} & set(checked_states))
    sound = [backup.backup_id for backup in targets if backup.backup_id not in broken]
    report = VerifyReport(
        backups_checked=len(targets), objects_checked=len(users) + len(manifests),
        faults=faults, broken_backups=broken, newest_sound_backup=sound[-1] if sound else None,
    )
    repository.record(ev.VerifyCompleted(
        read_data=read_data, backups_checked=report.backups_checked, objects_checked=report.objects_checked,
        faults=faults, broken_backups=broken, newest_sound_backup=report.newest_sound_backup,
    ))
    return report


def _with_chains(targets: list[BackupRow], by_id: dict[str, BackupRow], faults) -> list[BackupRow]:
    """Return the targets and every backup their chains need, oldest first."""
    needed: dict[str, BackupRow] = {}
    for backup in targets:
        current: BackupRow | None = backup
        while current is not None and current.backup_id not in needed:
            needed[current.backup_id] = current
            current = by_id.get(current.parent_id) if current.parent_id else None
    return sorted(needed.values(), key=lambda backup: backup.backup_id)


def _resolve(repository, backup, by_id, manifests, states, faults) -> State | None:
    """Return the restored state of `backup`, or None (with a fault) if it cannot be built."""
    if backup.parent_id is not None:
        parent_state = states.get(backup.parent_id)
        if backup.parent_id not in by_id:
            faults.append(ev.VerifyFault(
                problem="broken-chain", object_id=None,
                detail=_("parent backup {parent_id} is not committed").format(parent_id=backup.parent_id),
                backups=[backup.backup_id], series=[]))
            return None
        if parent_state is None:
            # The parent's own fault is reported already; this backup inherits it.
            faults.append(ev.VerifyFault(
                problem="broken-chain", object_id=None,
                detail=_("parent backup {parent_id} cannot be restored").format(parent_id=backup.parent_id),
                backups=[backup.backup_id], series=[]))
            return None
    else:
        parent_state = {}

    try:
        manifest = repository.read_backup_manifest(backup)
    except IntegrityError as error:
        manifest = None
        faults.append(ev.VerifyFault(
            problem="unreadable-manifest", object_id=backup.manifest_id, detail=str(error),
            backups=[backup.backup_id], series=[]))
    manifests[backup.backup_id] = manifest
    if manifest is None:
        return None
    return apply_manifest(parent_state, manifest)


def _chunk_users(states: dict[str, State | None]) -> dict[str, tuple[set[str], set[str]]]:
    """Map each chunk id to the backups whose restore needs it and the series it holds."""
    users: dict[str, tuple[set[str], set[str]]] = {}
    for backup_id, state in states.items():
        if state is None:
            continue
        for series, windows in state.items():
            for entry in windows.values():
                for chunk_id in entry.object_ids():
                    backups, series_names = users.setdefault(chunk_id, (set(), set()))
                    backups.add(backup_id)
                    series_names.add(str(series))
    return users


def _check_chunks(repository, users, existing: set[str], read_data: bool) -> dict[str, tuple[str, str]]:
    """Return {chunk id: (problem, detail)} for every missing or (with read_data) corrupted chunk."""
    bad: dict[str, tuple[str, str]] = {}
    present = []
    for chunk_id in users:
        if chunk_id not in existing:
            bad[chunk_id] = ("missing", _("object is missing"))
        else:
            present.append(chunk_id)
    if not read_data:
        return bad

    def check(chunk_id: str) -> tuple[str, str | None]:
        try:
            decode_chunk(chunk_id, repository.store.get(chunk_id))
        except IntegrityError as error:
            return chunk_id, str(error)
        except Exception as error:  # Damaged bytes must become a fault, never a crash.
            return chunk_id, f"{type(error).__name__}: {error}"
        return chunk_id, None

    with ThreadPoolExecutor(READ_THREADS, thread_name_prefix="tvcat-verify") as executor:
        for chunk_id, error in executor.map(check, present):
            if error is not None:
                bad[chunk_id] = ("corrupted", error)
    return bad


def verify_new_backup(repository: Repository, backup_id: str, settings) -> dict | None:
    """Verify a backup just committed as backup_config.verification sets, and return what was checked.

    With enable_checksum, every chunk the backup's restored state needs is
    decoded and re-hashed, not only the new ones. Returns None when
    verify_after_backup is false. Raises VerifyFailed, which names the
    faults, when the backup cannot be restored.
    """
    if not settings.verify_after_backup:
        return None
    report = verify_repository(repository, backup_id, read_data=settings.enable_checksum)
    if not report.ok:
        faults = "; ".join(f"{fault.problem} {fault.object_id or ''}".strip() for fault in report.faults)
        raise VerifyFailed(detail=_(
            "backup {backup_id} was committed, but verifying it failed: {faults}. Run tvcat verify --read-data "
            "for the details"
        ).format(backup_id=backup_id, faults=faults))
    return {"read_data": settings.enable_checksum, "objects_checked": report.objects_checked}
