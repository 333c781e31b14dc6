"""Backups: read the cache window by window, store chunks, commit a manifest.

Order of writes, which crash safety rests on: `backup.started`, then every
chunk object (temporary file, fsync, rename), then the manifest object, then
an fsync of the object directories, and only then `backup.committed`. A
crash at any point leaves at worst unreferenced objects, which the next
backup reuses or garbage collection removes.
"""

import logging
import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Callable, Iterator

import numpy as np

from ..catalog import events as ev
from ..catalog.bars import BarColumns, concat
from ..catalog.chunks import canonical_identity, decode_chunk, diff_bars, encode_chunk
from ..catalog.codec import DEFAULT_ZSTD_LEVEL
from ..catalog.manifests import (
    MANIFEST_VERSION,
    Manifest,
    SeriesEntry,
    State,
    WindowEntry,
    apply_manifest,
    encode_manifest,
    read_window,
    state_to_series_entries,
)
from ..catalog.repository import Repository
from ..catalog.series import Series, window_span, window_start, window_starts
from ..errors import IntegrityError, NothingToBackUp
from ..i18n import _
from .cache import BarCache, CacheSnapshot
from .retention.locks import repository_lock
from .space_reserve import ensure_reserve, is_disk_full, release_reserve
from .shrink_guard import check_no_shrink

logger = logging.getLogger(__name__)

# Chunks being encoded or written at once; bounds memory while keeping both
# cores busy with zstd and blake3, which release the GIL.
MAX_CHUNKS_IN_FLIGHT = 64
ENCODE_THREADS = 4
# A changed window is stored as a patch when at most this share of its bars
# is new or changed, no bar was deleted and it has fewer patches than the
# limit. Otherwise the whole window is stored again as one chunk.
MAX_PATCH_FRACTION = 0.5
MAX_PATCHES_PER_WINDOW = 16


class BackupType(str, Enum):
    """The four backup types. The value is the name used in the CLI and the catalog."""

    FULL = "full"
    INCREMENTAL = "incremental"
    DIFFERENTIAL = "differential"
    SNAPSHOT = "snapshot"


@dataclass(frozen=True)
class Scope:
    """The series a backup covers. None means every symbol or every timeframe."""

    symbols: list[str] | None = None
    timeframes: list[str] | None = None

    @classmethod
    def of(cls, symbols, timeframes) -> "Scope":
        return cls(sorted(set(symbols)) if symbols else None, sorted(set(timeframes)) if timeframes else None)

    def contains(self, series: Series) -> bool:
        return (self.symbols is None or series.symbol in self.symbols) and (
            self.timeframes is None or series.timeframe in self.timeframes
        )

    def describe(self) -> str:
        symbols = ",".join(self.symbols) if self.symbols else _("all symbols")
        timeframes = ",".join(self.timeframes) if self.timeframes else _("all timeframes")
        return f"{symbols} / {timeframes}"


@dataclass
class BackupResult:
    """The outcome of a committed backup."""

    backup_id: str
    type: BackupType
    requested_type: BackupType
    parent_id: str | None
    base_full_id: str | None
    manifest_id: str
    series_count: int
    bar_count: int
    windows_read: int
    windows_written: int
    chunks_written: int
    bytes_written: int
    duration_seconds: float
    objects_repaired: int = 0
    notes: list[str] = field(default_factory=list)


ProgressCallback = Callable[[str, int, int], None]


def new_backup_id(backup_type: BackupType, moment: datetime | None = None) -> str:
    """Return a fresh backup id: UTC start time to the microsecond, type, random suffix.

    Ids sort by start time, and any unique prefix names a backup.
    """
    moment = moment or datetime.now(timezone.utc)
    return f"{moment.strftime('%Y%m%dT%H%M%S.%fZ')}-{backup_type.value}-{secrets.token_hex(2)}"


def create_backup(
    repository: Repository,
    cache: BarCache,
    backup_type: BackupType,
    scope: Scope = Scope(),
    progress: ProgressCallback | None = None,
    compression_level: int = DEFAULT_ZSTD_LEVEL,
    lock_wait_seconds: float = 3600.0,
    allow_shrink: bool = False,
) -> BackupResult:
    """Take a backup of the cache into the repository and commit it, compressing new chunks at `compression_level`.

    An incremental or differential backup with no earlier backup of the same
    scope to build on is taken as a full backup, and the result notes it.
    Raises NothingToBackUp when the scope selects no bars, and CacheShrank,
    before recording anything, when a series lost bars since the backups
    before it, unless `allow_shrink` is set. A failure after `backup.started`
    appends `backup.failed` and re-raises.
    """
    # Shared with other backups and exclusive of prune, so garbage collection never
    # deletes an object that this backup reuses or has just written.
    with repository_lock(repository, "backup", exclusive=False, wait_seconds=lock_wait_seconds):
        ensure_reserve(repository)
        if not allow_shrink:
            check_no_shrink(repository, cache, scope)
        return _create_backup(repository, cache, backup_type, scope, progress, compression_level)


def _create_backup(repository, cache, backup_type, scope, progress, compression_level) -> BackupResult:
    started = time.monotonic()
    requested_type = backup_type
    reference, backup_type, notes = _choose_reference(repository, backup_type, scope)

    backup_id = new_backup_id(backup_type)
    parent = reference if backup_type in (BackupType.INCREMENTAL, BackupType.DIFFERENTIAL) else None
    repository.record(ev.BackupStarted(
        backup_id=backup_id, type=backup_type.value, symbols=scope.symbols, timeframes=scope.timeframes,
        parent_id=parent.backup_id if parent else None,
    ))
    logger.info("backup started backup_id=%s type=%s", backup_id, backup_type.value)

    try:
        result = _run_backup(repository, cache, backup_id, backup_type, scope, reference, parent, progress,
                             compression_level)
    except BaseException as error:
        if is_disk_full(error):
            release_reserve(repository)
        repository.record(ev.BackupFailed(backup_id=backup_id, type=backup_type.value, error=str(error) or repr(error)))
        logger.error("backup failed backup_id=%s error=%s", backup_id, error)
        raise

    result.requested_type = requested_type
    result.notes = notes
    result.duration_seconds = time.monotonic() - started
    logger.info("backup committed backup_id=%s bytes_written=%d", backup_id, result.bytes_written)
    return result


def _choose_reference(repository: Repository, backup_type: BackupType, scope: Scope):
    """Return (reference backup, type to take, notes) following the chain rules."""
    notes: list[str] = []
    if backup_type is BackupType.FULL:
        return None, backup_type, notes

    if backup_type is BackupType.DIFFERENTIAL:
        reference = repository.latest_backup(scope.symbols, scope.timeframes, types=("full",))
    else:
        reference = repository.latest_backup(scope.symbols, scope.timeframes)

    if reference is None and backup_type is not BackupType.SNAPSHOT:
        notes.append(_("no earlier full backup of this scope to build on, so this backup is a full backup"))
        return None, BackupType.FULL, notes
    return reference, backup_type, notes


def _run_backup(repository, cache, backup_id, backup_type, scope, reference, parent, progress,
                compression_level) -> BackupResult:
    started = time.monotonic()
    covered_seq = cache.advance_change_seq()
    cache_id = cache.cache_id
    # A change sequence below the reference's means cache.db was replaced by
    # an older copy of itself: its new changes may carry numbers the
    # reference already covers, so tracking cannot be trusted.
    use_tracking = (
        reference is not None and reference.cache_id == cache_id and covered_seq >= reference.change_seq
    )

    with cache.snapshot() as snapshot, _ChunkWriter(
        repository, backup_type is BackupType.FULL, compression_level
    ) as writer:
        # Resolved while the reader process starts.
        reference_state: State = repository.resolve_state(reference) if reference else {}
        series_in_cache = [series for series in snapshot.list_series() if scope.contains(series)]
        if not series_in_cache and not reference_state:
            raise NothingToBackUp(scope=scope.describe())

        if use_tracking:
            changed = {
                series: starts for series, starts in snapshot.changed_windows(reference.change_seq).items()
                if scope.contains(series)
            }
            plan = {series: changed.get(series) for series in set(changed) | set(reference_state)}
            plan = {series: starts for series, starts in plan.items() if starts}
        else:
            # Without trustworthy change tracking, read every window and compare.
            plan = {series: None for series in series_in_cache}
            for series in reference_state:
                plan.setdefault(series, None)

        new_entries: dict[Series, dict[int, WindowEntry]] = {}
        total = len(plan)
        for index, series in enumerate(sorted(plan)):
            if progress:
                progress(str(series), index, total)
            starts = plan[series]
            windows = _read_windows(snapshot, series, starts)
            # A full backup stores whole windows only; the others may patch the reference.
            reference_windows = None if backup_type is BackupType.FULL else reference_state.get(series)
            entries = writer.write_windows(series, windows, reference_windows)
            if starts is None:
                # A full read: every window the reference has and the cache lacks is now empty.
                for start in reference_state.get(series, {}):
                    entries.setdefault(start, WindowEntry(start, None, 0, None, None))
            else:
                for start in starts:
                    entries.setdefault(start, WindowEntry(start, None, 0, None, None))
            new_entries[series] = entries
        if progress:
            progress("", total, total)

    delta = _delta_against(reference_state, new_entries)
    if backup_type is BackupType.FULL:
        final_state = _state_from_entries(new_entries)
    else:
        final_state = apply_manifest(reference_state, _as_manifest(delta))
    complete = backup_type in (BackupType.FULL, BackupType.SNAPSHOT)
    listed = state_to_series_entries(final_state) if complete else delta

    base_full_id = None
    if parent is not None:
        base_full_id = parent.backup_id if parent.type == "full" else parent.base_full_id
    manifest = Manifest(
        version=MANIFEST_VERSION, backup_id=backup_id, type=backup_type.value,
        complete=complete,
        parent_id=parent.backup_id if parent else None,
        parent_manifest_id=parent.manifest_id if parent else None,
        base_full_id=base_full_id, cache_id=cache_id, change_seq=covered_seq,
        symbols=scope.symbols, timeframes=scope.timeframes, series=listed,
    )
    manifest_id, manifest_bytes = encode_manifest(manifest)
    if repository.store.put(manifest_id, manifest_bytes):
        writer.bytes_written += len(manifest_bytes)
    repository.store.flush()

    windows_written = sum(len(entry.windows) for entry in delta)
    written_by_series = {Series(entry.symbol, entry.timeframe): len(entry.windows) for entry in delta}
    summaries = [
        _summarize(series, windows, written_by_series.get(series, 0))
        for series, windows in sorted(final_state.items())
    ]
    repository.record(ev.BackupCommitted(
        backup_id=backup_id, type=backup_type.value, manifest_id=manifest_id,
        parent_id=manifest.parent_id, base_full_id=base_full_id, cache_id=cache_id,
        change_seq=covered_seq, series=summaries, windows_written=windows_written,
        chunks_written=writer.chunks_written, bytes_written=writer.bytes_written,
        duration_seconds=round(time.monotonic() - started, 6), objects_repaired=writer.objects_repaired,
    ))
    return BackupResult(
        backup_id=backup_id, type=backup_type, requested_type=backup_type,
        parent_id=manifest.parent_id, base_full_id=base_full_id, manifest_id=manifest_id,
        series_count=len(summaries), bar_count=sum(summary.bar_count for summary in summaries),
        windows_read=writer.windows_read, windows_written=windows_written,
        chunks_written=writer.chunks_written, bytes_written=writer.bytes_written,
        duration_seconds=0.0, objects_repaired=writer.objects_repaired,
    )


def _read_windows(snapshot: CacheSnapshot, series: Series, starts: list[int] | None) -> Iterator[BarColumns]:
    """Yield the bars of each window to back up: all windows, or the listed ones."""
    if starts is None:
        yield from split_windows(series, snapshot.stream_bars(series))
        return
    span = window_span(series.timeframe)
    for start in starts:
        bars = snapshot.read_bars(series, start, start + span)
        if len(bars):
            yield bars


def split_windows(series: Series, batches: Iterator[BarColumns]) -> Iterator[BarColumns]:
    """Cut sorted batches of bars into whole windows, holding back only the open one."""
    pending: BarColumns | None = None
    for batch in batches:
        bars = batch if pending is None else concat([pending, batch])
        starts = window_starts(series.timeframe, bars.ts)
        boundaries = np.flatnonzero(np.diff(starts)) + 1
        begin = 0
        for boundary in boundaries:
            yield bars.slice(begin, int(boundary))
            begin = int(boundary)
        pending = bars.slice(begin, len(bars))
    if pending is not None and len(pending):
        yield pending


class _ChunkWriter:
    """Encodes and stores chunks on worker threads, a bounded number at a time.

    Given the entries of the reference backup, a window that differs from
    the reference in a few bars only is stored as a patch. A patch is a
    small chunk of the new and changed bars, applied on top of the
    reference's chunks, so the growing last window of a series costs a few
    bars per backup instead of the whole window.
    """

    def __init__(self, repository: Repository, check_existing: bool = False,
                 compression_level: int = DEFAULT_ZSTD_LEVEL) -> None:
        self.store = repository.store
        self.check_existing = check_existing
        self.compression_level = compression_level
        self.windows_read = 0
        self.chunks_written = 0
        self.bytes_written = 0
        self.objects_repaired = 0
        self._executor = ThreadPoolExecutor(ENCODE_THREADS, thread_name_prefix="tvcat-chunk")
        self._lock = threading.Lock()

    def __enter__(self) -> "_ChunkWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def write_windows(
        self, series: Series, windows: Iterator[BarColumns], reference: dict[int, WindowEntry] | None = None
    ) -> dict[int, WindowEntry]:
        """Store the chunks of each window; return the window entries by window start."""
        entries: dict[int, WindowEntry] = {}
        in_flight: list[Future] = []
        for bars in windows:
            self.windows_read += 1
            start = window_start(series.timeframe, int(bars.ts[0]))
            known = reference.get(start) if reference else None
            in_flight.append(self._executor.submit(self._write_one, start, bars, known))
            if len(in_flight) >= MAX_CHUNKS_IN_FLIGHT:
                self._collect(in_flight.pop(0), entries)
        for future in in_flight:
            self._collect(future, entries)
        return entries

    def _write_one(self, start: int, bars: BarColumns, known: WindowEntry | None) -> tuple[WindowEntry, int, int]:
        content_id, canonical_length = canonical_identity(bars)
        first_ts, last_ts = int(bars.ts[0]), int(bars.ts[-1])
        if known is not None and known.content_id == content_id:
            return known, 0, 0

        if known is not None and len(known.patches) < MAX_PATCHES_PER_WINDOW:
            changed, removed = diff_bars(read_window(self.store, known), bars)
            if removed == 0 and len(changed) <= len(bars) * MAX_PATCH_FRACTION:
                patch_id, data = encode_chunk(changed, level=self.compression_level)
                written = len(data) if self.store.put(patch_id, data) else 0
                entry = WindowEntry(start, known.chunk_id, len(bars), first_ts, last_ts, content_id,
                                    [*known.patches, patch_id])
                return entry, written, 1 if written else 0

        chunk_id, data = encode_chunk(bars, canonical_length, content_id, self.compression_level)
        written = self._store(chunk_id, data)
        return WindowEntry(start, chunk_id, len(bars), first_ts, last_ts, content_id), written, 1 if written else 0

    def _store(self, chunk_id: str, data: bytes) -> int:
        """Store a chunk unless a sound copy exists; return the bytes written.

        With check_existing (full backups), an existing object is decoded and
        re-hashed before it is reused, and a damaged one is replaced, so a
        new full backup also repairs the chunks it needs.
        """
        if self.store.put(chunk_id, data):
            return len(data)
        if not self.check_existing:
            return 0
        try:
            decode_chunk(chunk_id, self.store.get(chunk_id))
        except IntegrityError:
            self.store.replace(chunk_id, data)
            with self._lock:
                self.objects_repaired += 1
            logger.warning("replaced damaged object object_id=%s", chunk_id)
            return len(data)
        return 0

    def _collect(self, future: Future, entries: dict[int, WindowEntry]) -> None:
        entry, written, chunks = future.result()
        entries[entry.window_start] = entry
        self.chunks_written += chunks
        self.bytes_written += written


def _delta_against(reference: State, new_entries: dict[Series, dict[int, WindowEntry]]) -> list[SeriesEntry]:
    """Return the window entries that differ from the reference state, as manifest series."""
    delta: list[SeriesEntry] = []
    for series in sorted(new_entries):
        known = reference.get(series, {})
        changed = [
            entry for start, entry in sorted(new_entries[series].items())
            if not (entry.chunk_id is None and start not in known)
            and (start not in known or known[start] != entry)
        ]
        if changed:
            delta.append(SeriesEntry(series.symbol, series.timeframe, changed))
    return delta


def _as_manifest(delta: list[SeriesEntry]) -> Manifest:
    return Manifest(MANIFEST_VERSION, "", "", False, None, None, None, "", 0, None, None, delta)


def _state_from_entries(new_entries: dict[Series, dict[int, WindowEntry]]) -> State:
    state: State = {}
    for series, entries in new_entries.items():
        windows = {start: entry for start, entry in entries.items() if entry.chunk_id is not None}
        if windows:
            state[series] = windows
    return state


def _summarize(series: Series, windows: dict[int, WindowEntry], windows_written: int) -> ev.SeriesSummary:
    ordered = [windows[start] for start in sorted(windows)]
    return ev.SeriesSummary(
        symbol=series.symbol, timeframe=series.timeframe,
        bar_count=sum(window.bar_count for window in ordered), window_count=len(ordered),
        first_ts=ordered[0].first_ts if ordered else None, last_ts=ordered[-1].last_ts if ordered else None,
        windows_written=windows_written,
    )
