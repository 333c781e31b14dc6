"""The event log on the remote: append-only segments `log/<first seq>-<last seq>.jsonl.zst`.

A segment contains the events rows of consecutive seqs as JSON lines, zstd
compressed. It is written once with a conditional PUT and never rewritten;
the next replication writes a segment that starts after the last one.
Seqs are zero-padded to 12 digits, so the keys sort in log order.
"""

import re

import msgspec
import zstandard

from ...catalog import events as ev

_SEGMENT_PATTERN = re.compile(r"(?P<first>[0-9]{12})-(?P<last>[0-9]{12})\.jsonl\.zst$")
SEGMENT_FOLDER = "log/"


class SegmentRow(msgspec.Struct, array_like=True):
    seq: int
    time: str
    kind: str
    subject: str
    payload: str
    prev_hash: str
    hash: str


def segment_name(first_seq: int, last_seq: int) -> str:
    return f"{first_seq:012d}-{last_seq:012d}.jsonl.zst"


def parse_segment_name(key: str) -> tuple[int, int] | None:
    """Return (first seq, last seq) of a segment key, or None for any other key."""
    match = _SEGMENT_PATTERN.search(key.rsplit("/", 1)[-1])
    if match is None:
        return None
    return int(match["first"]), int(match["last"])


def encode_segment(records: list[ev.EventRecord]) -> bytes:
    encoder = msgspec.json.Encoder()
    lines = b"".join(encoder.encode(SegmentRow(*_fields(record))) + b"\n" for record in records)
    return zstandard.ZstdCompressor(level=3).compress(lines)


def decode_segment(data: bytes) -> list[ev.EventRecord]:
    """Return the events of a segment; raise ValueError when it cannot be read."""
    try:
        lines = zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 31)
        rows = [msgspec.json.decode(line, type=SegmentRow) for line in lines.splitlines() if line]
    except (zstandard.ZstdError, msgspec.DecodeError) as error:
        raise ValueError(str(error)) from error
    return [ev.EventRecord(*msgspec.structs.astuple(row)) for row in rows]


def _fields(record: ev.EventRecord) -> tuple:
    return (record.seq, record.time, record.kind, record.subject, record.payload, record.prev_hash, record.hash)
