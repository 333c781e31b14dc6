"""Manifests: which chunk contains each window of each series in a backup.

A complete manifest (full and snapshot backups) lists every window of every
series in scope. A delta manifest (incremental and differential backups)
lists only the windows that changed since the backup it names as parent.
A window entry without a chunk means the window became empty. Resolving a
backup applies the deltas of its chain, oldest first, onto the complete
manifest at its root.
"""

import msgspec

from ..errors import ObjectCorrupted
from .bars import BarColumns
from .chunks import apply_patch, chunk_id_of, decode_chunk
from .objects import CODEC_ZSTD, KIND_MANIFEST, compress, decompress, encode_object, object_id, read_header
from .series import Series

MANIFEST_VERSION = 1


class WindowEntry(msgspec.Struct, frozen=True, array_like=True):
    """One window of a series: its start, its chunks and a summary of its bars.

    The window's bars are the chunk `chunk_id` with each chunk of `patches`
    applied in order. A patch contains bars that replace those of the same
    time or add new ones. `content_id` is the id the window's bars would
    have as one chunk, so two entries hold the same bars exactly when their
    content ids are equal. `chunk_id` None means the window was emptied.
    """

    window_start: int
    chunk_id: str | None
    bar_count: int
    first_ts: int | None
    last_ts: int | None
    content_id: str | None = None
    patches: list[str] = []

    def object_ids(self) -> list[str]:
        """Return the ids of every chunk needed to read this window, base first."""
        return [] if self.chunk_id is None else [self.chunk_id, *self.patches]


class SeriesEntry(msgspec.Struct, frozen=True):
    symbol: str
    timeframe: str
    windows: list[WindowEntry]


class Manifest(msgspec.Struct, frozen=True):
    """The object a committed backup names. Field order is part of the canonical bytes."""

    version: int
    backup_id: str
    type: str
    complete: bool
    parent_id: str | None
    parent_manifest_id: str | None
    base_full_id: str | None
    cache_id: str
    change_seq: int
    symbols: list[str] | None
    timeframes: list[str] | None
    series: list[SeriesEntry]


# The restored state of a backup: for each series, its windows by start.
State = dict[Series, dict[int, WindowEntry]]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Manifest)


def encode_manifest(manifest: Manifest) -> tuple[str, bytes]:
    """Return the id and the object file bytes of `manifest`."""
    canonical = _encoder.encode(manifest)
    return object_id(canonical), encode_object(KIND_MANIFEST, CODEC_ZSTD, len(canonical), compress(canonical))


def decode_manifest(manifest_id: str, data: bytes) -> Manifest:
    """Decode and verify a manifest object; raise ObjectCorrupted if it does not check out."""
    kind, codec, canonical_length, payload = read_header(manifest_id, data)
    if kind != KIND_MANIFEST or codec != CODEC_ZSTD:
        raise ObjectCorrupted(object_id=manifest_id, reason="not a manifest")
    body = decompress(manifest_id, payload, canonical_length)
    if object_id(body) != manifest_id:
        raise ObjectCorrupted(object_id=manifest_id, reason="hash mismatch")
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as error:
        raise ObjectCorrupted(object_id=manifest_id, reason=str(error)) from error


def apply_manifest(state: State, manifest: Manifest) -> State:
    """Return the state after `manifest`: its windows replace those of `state`.

    A complete manifest replaces the whole state; a delta changes only the
    windows it lists and drops series left with no windows.
    """
    result: State = {} if manifest.complete else {series: dict(windows) for series, windows in state.items()}
    for entry in manifest.series:
        series = Series(entry.symbol, entry.timeframe)
        windows = result.setdefault(series, {})
        for window in entry.windows:
            if window.chunk_id is None:
                windows.pop(window.window_start, None)
            else:
                windows[window.window_start] = window
    return {series: windows for series, windows in result.items() if windows}


def state_to_series_entries(state: State) -> list[SeriesEntry]:
    """Return a state as the sorted series list of a complete manifest."""
    return [
        SeriesEntry(series.symbol, series.timeframe, [windows[start] for start in sorted(windows)])
        for series, windows in sorted(state.items())
    ]


def read_window(store, entry: WindowEntry) -> BarColumns:
    """Read and verify the bars of one window: its chunk with its patches applied.

    Raises ObjectMissing or ObjectCorrupted when a chunk is absent, damaged,
    or the patched bars do not match the entry's content id.
    """
    bars = decode_chunk(entry.chunk_id, store.get(entry.chunk_id))
    if not entry.patches:
        return bars
    for patch_id in entry.patches:
        bars = apply_patch(bars, decode_chunk(patch_id, store.get(patch_id)))
    if entry.content_id is not None and chunk_id_of(bars) != entry.content_id:
        raise ObjectCorrupted(object_id=entry.patches[-1], reason="patched window does not match its content id")
    return bars
