"""Chunk objects: the bars of one series in one window, encoded and verified."""

import numpy as np

from ..errors import ObjectCorrupted
from .bars import BarColumns, concat
from .codec import DEFAULT_ZSTD_LEVEL, decode_canonical, encode_canonical, pack_columns, unpack_columns
from .objects import CODEC_PACKED_COLUMNS, KIND_CHUNK, decompress, encode_object, object_id, read_header


def chunk_id_of(bars: BarColumns) -> str:
    """Return the id a chunk holding `bars` has, without encoding the object."""
    return object_id(encode_canonical(bars))


def canonical_identity(bars: BarColumns) -> tuple[str, int]:
    """Return the chunk id of `bars` and the length of their canonical bytes."""
    canonical = encode_canonical(bars)
    return object_id(canonical), len(canonical)


def encode_chunk(
    bars: BarColumns, canonical_length: int | None = None, chunk_id: str | None = None,
    level: int = DEFAULT_ZSTD_LEVEL,
) -> tuple[str, bytes]:
    """Return the id and the object file bytes of a chunk holding `bars`, compressed at zstd `level`.

    A caller that hashed the bars already passes the id and canonical length
    to skip a second canonical encoding. The packed columns carry their own
    zstd frame, so they follow the header as they are. The level changes the
    bytes but not the id, which hashes the canonical bytes.
    """
    if chunk_id is None or canonical_length is None:
        canonical = encode_canonical(bars)
        chunk_id, canonical_length = object_id(canonical), len(canonical)
    return chunk_id, encode_object(KIND_CHUNK, CODEC_PACKED_COLUMNS, canonical_length, pack_columns(bars, level))


def apply_patch(base: BarColumns, patch: BarColumns) -> BarColumns:
    """Return `base` with the bars of `patch` replacing those of the same time and added."""
    if len(patch) == 0:
        return base
    keep = ~np.isin(base.ts, patch.ts)
    merged = concat([base.take(keep), patch])
    return merged.take(np.argsort(merged.ts, kind="stable"))


def diff_bars(reference: BarColumns, current: BarColumns) -> tuple[BarColumns, int]:
    """Return the bars of `current` that are new or differ bit for bit from `reference`,
    and how many bars of `reference` are gone from `current`."""
    position = np.searchsorted(reference.ts, current.ts)
    clipped = np.minimum(position, max(len(reference) - 1, 0))
    if len(reference):
        same = reference.ts[clipped] == current.ts
        for mine, theirs in zip(current.columns()[1:], reference.columns()[1:]):
            matched = theirs[clipped]
            both_null = np.isnan(mine) & np.isnan(matched)
            same &= both_null | ((mine.view(np.int64) == matched.view(np.int64)) & ~np.isnan(mine) & ~np.isnan(matched))
    else:
        same = np.zeros(len(current), dtype=bool)
    removed = int(np.count_nonzero(~np.isin(reference.ts, current.ts)))
    return current.take(~same), removed


def decode_chunk(chunk_id: str, data: bytes, verify: bool = True) -> BarColumns:
    """Decode a chunk object; with `verify`, prove it by re-hashing its canonical bytes.

    Raises ObjectCorrupted for anything that does not decode or does not
    match its id, so a damaged object is never trusted.
    """
    kind, codec, canonical_length, payload = read_header(chunk_id, data)
    if kind != KIND_CHUNK:
        raise ObjectCorrupted(object_id=chunk_id, reason="not a chunk")
    try:
        if codec == CODEC_PACKED_COLUMNS:
            bars = unpack_columns(payload)
        else:
            bars = decode_canonical(decompress(chunk_id, payload, canonical_length))
    except ValueError as error:
        raise ObjectCorrupted(object_id=chunk_id, reason=str(error)) from error
    if verify:
        canonical = encode_canonical(bars)
        if len(canonical) != canonical_length or object_id(canonical) != chunk_id:
            raise ObjectCorrupted(object_id=chunk_id, reason="hash mismatch")
    return bars
