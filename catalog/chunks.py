"""Chunk objects: the bars of one series in one window, encoded and verified."""

from ..errors import ObjectCorrupted
from .bars import BarColumns
from .codec import decode_canonical, encode_canonical, pack_columns, unpack_columns
from .objects import CODEC_PACKED_COLUMNS, KIND_CHUNK, decompress, encode_object, object_id, read_header


def encode_chunk(bars: BarColumns) -> tuple[str, bytes]:
    """Return the id and the object file bytes of a chunk holding `bars`.

    The packed columns carry their own zstd frame, so they follow the header as they are.
    """
    canonical = encode_canonical(bars)
    return object_id(canonical), encode_object(KIND_CHUNK, CODEC_PACKED_COLUMNS, len(canonical), pack_columns(bars))


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
