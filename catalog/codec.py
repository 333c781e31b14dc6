"""The columnar bar codec: the canonical encoding that chunk ids hash, and the packed encoding on disk.

Both encodings turn the `BarColumns` of one chunk into bytes and back, bit for
bit: every non-NULL float comes back with its exact bits (-0.0 stays -0.0,
infinities stay infinite), and every NaN, whatever its bit pattern, is NULL and
comes back as NULL in the same row. Neither encoding checks that `ts` is sorted,
so callers that need the `BarColumns` invariant check it themselves.

Both decoders raise ValueError with the reason when the input is invalid.
Callers that read a chunk from a repository wrap it in
`tvcat.errors.ObjectCorrupted`.

Canonical encoding
==================

The chunk id is the blake3 hash of these bytes, so this layout never changes.
All integers and floats are little-endian, and `n` is the bar count.

================  ========================  ======  =================================
Field             Offset                    Width   Content
================  ========================  ======  =================================
n                 0                         4       u32, bar count
ts                4                         8n      n x i64, Unix seconds
validity of j     4 + 8n + j * (B + 8n)     B       bitmap, B = ceil(n / 8)
values of j       4 + 8n + j * (B + 8n) + B 8n      n x f64
================  ========================  ======  =================================

Column j is 0 for open, 1 for high, 2 for low, 3 for close and 4 for volume.
The total size is 4 + 8n + 5 * (B + 8n) bytes.

In a validity bitmap, bit i is 1 when row i is not NULL. Bits are numbered
from the least significant bit of each byte (row 0 is bit 0 of byte 0, row 8
bit 0 of byte 1), which is `numpy.packbits(..., bitorder="little")`. Padding
bits after row n - 1 are 0. A NULL row stores +0.0 (eight zero bytes) in the
values. A non-NULL row stores its float's bits unchanged and is never NaN.
`decode_canonical` rejects input that breaks any of these rules, so each set
of bars has exactly one canonical encoding.

Packed encoding
===============

The packed bytes are what a chunk object stores. They are not hashed, so the
layout carries a version byte and may change: a new layout gets a new version
and the reader of each old version stays.

Layout version 1 is a 5-byte header and one zstd frame:

======================  ======  =====  ============================================
Field                   Offset  Width  Content
======================  ======  =====  ============================================
version                 0       1      u8, 1
n                       1       4      u32 LE, bar count, at most 10,000,000
body                    5       rest   one zstd frame with content size and checksum
======================  ======  =====  ============================================

The decompressed body is a sequence of sections. All its integers are
little-endian and "m" is the count of non-NULL rows of the column at hand.

1. ts: i64 of ts[0] (0 when n = 0), then an integer stream of n - 1 values
   (empty when n <= 1): the second differences of ts, where the first value
   is ts[1] - ts[0]. Differences wrap modulo 2**64, so any int64 values
   round-trip. Regular bars give a stream of zeros after the first value.
2. Five null sections, for open, high, low, close and volume: u8 kind
   (0 = no NULL, 1 = all NULL, 2 = some NULL), and for kind 2 a validity
   bitmap of ceil(n / 8) bytes as in the canonical encoding.
3. u8 price layout. 0: open, high, low and close each follow as a value
   column, except the columns that are all NULL. 1 (joint OHLC): the four
   columns have the same NULL rows and one decimal scale d, stored as u8 d,
   then four integer streams of m values each, then four exception lists
   (open, high, low, close). With k the integers of each column, the
   streams contain:

   - close deltas: close_k[i] - close_k[i - 1], with close_k[-1] = 0,
   - open gaps: open_k[i] - close_k[i - 1], with close_k[-1] = close_k[0],
   - high excess: high_k - max(open_k, close_k),
   - low excess: min(open_k, close_k) - low_k.

4. The volume value column, unless volume is all NULL.

A value column is u8 encoding, then:

- 0 (raw): an integer stream of the m float64 bit patterns read as int64.
- 1 (decimal) or 2 (decimal deltas): u8 scale d, an integer stream of m
  values, then an exception list. The stream contains k for encoding 1 and
  k[i] - k[i - 1] (with k[-1] = 0) for encoding 2.

In the decimal encodings each value is k / 10**d, where k is an integer with
|k| < 2**53 and d is 0 to 12. The decoder computes it as float64 true
division of float64(k) by 10.0**d. Both operands are exact, so the result is
the correctly rounded quotient, and the encoder keeps a value in decimal form
only when that result has the value's exact bits. Other values (-0.0,
1.0772599999999999 beside 1.07726, 0.1 + 0.2, 1e300, integers beyond 2**53,
infinities) are exceptions: their k is a filler and the exception list
stores their bits. A column falls back to raw when more than a quarter of
its values would be exceptions.

An integer stream stores c int64 values, where c is known from the context.
It maps each value v to an unsigned code and stores the codes:

====================  =====  ==================================================
Field                 Width  Content
====================  =====  ==================================================
transform             1      u8. 0 = zigzag: code = (v << 1) ^ (v >> 63), so
                             small magnitudes of either sign get small codes.
                             1 = offset: code = v - base.
base                  8      i64, only for transform 1
width                 1      u8 w in {0, 1, 2, 4, 8}. Width 0 means that
                             every code is 0 and no bytes follow.
codes                 c * w  the codes as unsigned w-byte integers,
                             byte-shuffled: the lowest byte of each of the c
                             codes first, then the second byte of each, ...
====================  =====  ==================================================

The writer uses offset with base = min(v) when no value is negative, which
saves the sign bit of zigzag, and zigzag otherwise. Arithmetic wraps modulo
2**64.

An exception list is u32 count e, then e x u32 strictly increasing positions
among the m non-NULL rows of the column, then e x u64 float64 bit patterns.

`unpack_columns` rejects an unknown version, n above 10,000,000, a frame
whose declared size exceeds the bound for n bars, bytes after the frame, and a
body that does not parse to exactly n bars with every byte used.
"""

import math
import struct
import threading

import numpy as np
import zstandard

from .bars import VALUE_COLUMNS, BarColumns

PACKED_LAYOUT_VERSION = 1

# The bound keeps a crafted header from making unpack_columns allocate
# gigabytes. Ten million one-minute bars are about 19 years of a 24-hour
# market, and a chunk contains at most 8192 one-minute bars.
MAX_PACKED_BARS = 10_000_000

DEFAULT_ZSTD_LEVEL = 3

MAX_DECIMAL_SCALE = 12

# Decimal integers stay below this magnitude, so that float64(k) is exact.
_MAX_EXACT_INTEGER = 2**53
_POWERS_OF_TEN = 10.0 ** np.arange(MAX_DECIMAL_SCALE + 1)
_SCALE_SAMPLE_SIZE = 64
_GOLDEN_SEQUENCE = (np.arange(_SCALE_SAMPLE_SIZE) * ((math.sqrt(5) - 1) / 2)) % 1.0
# At most 1/_MAX_EXCEPTION_SHARE of the values of a decimal column are
# exceptions. Each exception costs 12 bytes, so more would be larger than raw.
_MAX_EXCEPTION_SHARE = 4

_CANONICAL_HEADER = struct.Struct("<I")
_PACKED_HEADER = struct.Struct("<BI")

_NULLS_NONE = 0
_NULLS_ALL = 1
_NULLS_SOME = 2

_PRICES_SEPARATE = 0
_PRICES_JOINT = 1

_ENCODING_RAW = 0
_ENCODING_DECIMAL = 1
_ENCODING_DECIMAL_DELTAS = 2

_TRANSFORM_ZIGZAG = 0
_TRANSFORM_OFFSET = 1

_STREAM_WIDTHS = (0, 1, 2, 4, 8)
_UNSIGNED_DTYPES = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<u8")}

# Per-thread zstd contexts, because zstandard's compressors and decompressors are not thread-safe.
_zstd_contexts = threading.local()

_I64 = struct.Struct("<q")
_U32 = struct.Struct("<I")


# ---------------------------------------------------------------------------
# Canonical encoding
# ---------------------------------------------------------------------------


def encode_canonical(bars: BarColumns) -> bytes:
    """Encode bars in the canonical layout that the module docstring defines.

    Raises ValueError when the columns differ in length, have another dtype
    than int64 and float64, or contain 2**32 bars or more.
    """
    ts, values = _checked_columns(bars)
    count = len(ts)
    if count >= 2**32:
        raise ValueError(
            f"cannot encode {count} bars: the canonical bar count is a u32, so the maximum is 2**32 - 1"
        )

    parts = [_CANONICAL_HEADER.pack(count), ts.astype("<i8", copy=False).tobytes()]
    for column in values:
        null = np.isnan(column)
        parts.append(np.packbits(~null, bitorder="little").tobytes())
        if null.any():
            column = np.where(null, 0.0, column)
        parts.append(column.astype("<f8", copy=False).tobytes())
    return b"".join(parts)


def decode_canonical(data: bytes) -> BarColumns:
    """Decode bytes written by `encode_canonical`. NULL rows come back as NaN.

    Raises ValueError when the length does not match the bar count, a padding
    bit is set, a NULL row stores anything but +0.0, or a non-NULL row stores NaN.
    """
    data = memoryview(data).cast("B")
    if len(data) < _CANONICAL_HEADER.size:
        raise ValueError(
            f"invalid canonical bar data: {len(data)} bytes is shorter than the 4-byte bar count"
        )
    (count,) = _CANONICAL_HEADER.unpack_from(data)
    bitmap_size = (count + 7) // 8
    expected = _CANONICAL_HEADER.size + 8 * count + len(VALUE_COLUMNS) * (bitmap_size + 8 * count)
    if len(data) != expected:
        raise ValueError(
            f"invalid canonical bar data: {count} bars need {expected} bytes, got {len(data)}"
        )

    offset = _CANONICAL_HEADER.size
    ts = np.frombuffer(data, "<i8", count, offset).astype(np.int64)
    offset += 8 * count

    values = []
    for name in VALUE_COLUMNS:
        bitmap = np.frombuffer(data, np.uint8, bitmap_size, offset)
        offset += bitmap_size
        raw = np.frombuffer(data, "<f8", count, offset)
        offset += 8 * count

        _check_bitmap_padding(bitmap, count, name)
        valid = np.unpackbits(bitmap, count=count, bitorder="little").view(bool)
        if np.isnan(raw[valid]).any():
            raise ValueError(f"invalid canonical bar data: column {name} stores NaN in a non-NULL row")
        if raw.view(np.uint64)[~valid].any():
            raise ValueError(f"invalid canonical bar data: column {name} stores a value other than +0.0 in a NULL row")
        values.append(np.where(valid, raw, np.nan))

    return BarColumns(ts, *values)


def _checked_columns(bars: BarColumns) -> tuple[np.ndarray, list[np.ndarray]]:
    """Return ts and the value columns as contiguous native arrays, after checking dtypes and lengths."""
    ts = np.ascontiguousarray(bars.ts)
    if ts.dtype != np.int64:
        raise ValueError(f"invalid bars: ts has dtype {ts.dtype}, expected int64")
    if ts.ndim != 1:
        raise ValueError(f"invalid bars: columns must be one-dimensional, got shape {ts.shape}")
    values = []
    for name in VALUE_COLUMNS:
        column = np.ascontiguousarray(getattr(bars, name))
        if column.dtype != np.float64:
            raise ValueError(f"invalid bars: {name} has dtype {column.dtype}, expected float64")
        if column.shape != ts.shape:
            raise ValueError(f"invalid bars: {name} has shape {column.shape}, but ts has shape {ts.shape}")
        values.append(column)
    return ts, values


def _check_bitmap_padding(bitmap: np.ndarray, count: int, name: str) -> None:
    used_bits = count % 8
    if used_bits and bitmap[-1] >> used_bits:
        raise ValueError(f"invalid validity bitmap of column {name}: padding bits after the last row are set")


# ---------------------------------------------------------------------------
# Packed encoding: writer
# ---------------------------------------------------------------------------


def pack_columns(bars: BarColumns, level: int = DEFAULT_ZSTD_LEVEL) -> bytes:
    """Encode bars in packed layout version 1 and compress them with zstd at `level`.

    The module docstring defines the layout. Raises ValueError for the same
    invalid columns as `encode_canonical`, for more than MAX_PACKED_BARS bars,
    and (from zstandard) for a level above 22.
    """
    ts, values = _checked_columns(bars)
    count = len(ts)
    if count > MAX_PACKED_BARS:
        raise ValueError(f"cannot pack {count} bars: the maximum per packed chunk is {MAX_PACKED_BARS}")

    body = bytearray()
    _write_ts(body, ts)

    nulls = [np.isnan(column) for column in values]
    null_kinds = []
    for null in nulls:
        kind = _null_kind(null)
        null_kinds.append(kind)
        body.append(kind)
        if kind == _NULLS_SOME:
            body += np.packbits(~null, bitorder="little").tobytes()

    non_null = [
        column if kind == _NULLS_NONE else column[~null]
        for column, null, kind in zip(values, nulls, null_kinds)
    ]
    # The scale search multiplies huge values into infinities. Those values
    # become exceptions, so the overflow warnings carry no information.
    with np.errstate(over="ignore", invalid="ignore"):
        _write_prices(body, non_null[:4], nulls[:4], null_kinds[:4])
        if null_kinds[4] != _NULLS_ALL:
            _write_value_column(body, non_null[4])

    assert len(body) <= _max_body_size(count), "packed body exceeds the bound that unpack_columns enforces"
    frame = _compressor(level).compress(bytes(body))
    return _PACKED_HEADER.pack(PACKED_LAYOUT_VERSION, count) + frame


def _compressor(level: int) -> zstandard.ZstdCompressor:
    """Return this thread's compressor for `level`, because a ZstdCompressor is not thread-safe."""
    cache = getattr(_zstd_contexts, "compressors", None)
    if cache is None:
        cache = _zstd_contexts.compressors = {}
    compressor = cache.get(level)
    if compressor is None:
        compressor = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
        cache[level] = compressor
    return compressor


def _null_kind(null: np.ndarray) -> int:
    if not null.any():
        return _NULLS_NONE
    if null.all():
        return _NULLS_ALL
    return _NULLS_SOME


def _zigzag(signed: np.ndarray) -> np.ndarray:
    """Map int64 values to uint64 so that small magnitudes of either sign get small codes."""
    return ((signed << 1) ^ (signed >> 63)).view(np.uint64)


def _deltas(values: np.ndarray) -> np.ndarray:
    """Return values[i] - values[i - 1] with values[-1] = 0, wrapping in the dtype."""
    deltas = np.empty_like(values)
    deltas[:1] = values[:1]
    np.subtract(values[1:], values[:-1], out=deltas[1:])
    return deltas


def _stream_codes(values: np.ndarray, smallest: int | None = None) -> tuple[int, int, np.ndarray]:
    """Choose the transform of an int64 stream and return it with the base and the uint64 codes.

    `smallest` is values.min() when the caller has it already.
    """
    if len(values) == 0:
        return _TRANSFORM_ZIGZAG, 0, values.view(np.uint64)
    base = int(values.min()) if smallest is None else smallest
    if base < 0:
        return _TRANSFORM_ZIGZAG, 0, _zigzag(values)
    if base == 0:
        return _TRANSFORM_OFFSET, 0, values.view(np.uint64)
    return _TRANSFORM_OFFSET, base, (values - base).view(np.uint64)


def _write_stream(body: bytearray, values: np.ndarray) -> None:
    """Append an integer stream of int64 values."""
    _write_codes(body, *_stream_codes(values))


def _write_codes(body: bytearray, transform: int, base: int, codes: np.ndarray) -> None:
    """Append an integer stream from the output of `_stream_codes`."""
    body.append(transform)
    if transform == _TRANSFORM_OFFSET:
        body += _I64.pack(base)
    largest = int(codes.max()) if len(codes) else 0
    if largest == 0:
        body.append(0)
        return
    width = _stream_width(largest)
    body.append(width)
    narrow = codes.astype(_UNSIGNED_DTYPES[width], copy=False)
    if width == 1:
        body += narrow.tobytes()
    else:
        body += narrow.view(np.uint8).reshape(len(codes), width).T.tobytes()


def _stream_width(largest: int) -> int:
    """Return the smallest width in bytes, 1, 2, 4 or 8, that fits codes up to `largest`."""
    for width in (1, 2, 4):
        if largest < 1 << (8 * width):
            return width
    return 8


def _write_ts(body: bytearray, ts: np.ndarray) -> None:
    body += _I64.pack(int(ts[0]) if len(ts) else 0)
    unsigned = ts.view(np.uint64)
    steps = unsigned[1:] - unsigned[:-1]
    _write_stream(body, _deltas(steps).view(np.int64))


class _DecimalForm:
    """Rows of floats as integers k with value = k / 10**scale, except at the exception positions.

    `integers` has the shape of the input rows, and `exceptions` lists the
    positions within each row that the scale cannot reproduce. Their
    integers are fillers below 2**53 in magnitude.
    """

    __slots__ = ("scale", "integers", "exceptions")

    def __init__(self, scale: int, integers: np.ndarray, exceptions: list[np.ndarray]) -> None:
        self.scale = scale
        self.integers = integers
        self.exceptions = exceptions


def _exact_scales(sample: np.ndarray) -> np.ndarray:
    """Return a (len(sample), 13) boolean matrix: True where scale d reproduces the value bit for bit."""
    scaled = np.rint(sample[:, None] * _POWERS_OF_TEN)
    in_range = np.abs(scaled) < _MAX_EXACT_INTEGER
    # Adding +0.0 turns -0.0 into +0.0, as the integer conversion in the decoder does.
    restored = (scaled + 0.0) / _POWERS_OF_TEN
    return in_range & (restored.view(np.int64) == sample.view(np.int64)[:, None])


def _decimal_form_at(rows: np.ndarray, scale: int) -> _DecimalForm:
    """Convert rows at one decimal scale and list the positions that the scale cannot reproduce."""
    power = _POWERS_OF_TEN[scale]
    scaled = np.rint(rows * power)
    in_range = np.abs(scaled) < _MAX_EXACT_INTEGER
    all_in_range = bool(in_range.all())
    if not all_in_range:
        # The filler 0 keeps the integer arithmetic in range. These positions are exceptions.
        scaled = np.where(in_range, scaled, 0.0)
    exact = ((scaled + 0.0) / power).view(np.int64) == rows.view(np.int64)
    if not all_in_range:
        exact &= in_range

    row_count, row_size = rows.shape
    if exact.all():
        exceptions = [np.empty(0, np.intp)] * row_count
    else:
        misses = np.flatnonzero(~exact)
        bounds = np.searchsorted(misses, np.arange(row_count + 1) * row_size)
        exceptions = [misses[bounds[i] : bounds[i + 1]] - i * row_size for i in range(row_count)]
    return _DecimalForm(scale, scaled.astype(np.int64), exceptions)


def _sample_positions(size: int) -> np.ndarray:
    """Return up to 64 positions below `size`, spread without a period.

    The golden-ratio sequence (i * 0.618...) mod 1 has no period, so the
    sample does not miss or hit only a pattern that repeats every few rows.
    """
    if size <= _SCALE_SAMPLE_SIZE:
        return np.arange(size)
    return (_GOLDEN_SEQUENCE * size).astype(np.intp)


def _find_decimal_form(rows: np.ndarray) -> _DecimalForm | None:
    """Convert rows of equal length to decimal form at one scale, or return None to store them raw.

    The scale is the smallest one that reproduces a sample of 64 values of the
    rows, or failing that, the one that reproduces most of the sample. When the whole rows then have exceptions, the smallest
    larger scale that fits a sample of the exceptions is tried as well, and
    the form with fewer exceptions wins. Returns None when the sample fits
    no scale or when more than a quarter of a row would be exceptions.
    """
    row_size = rows.shape[1]
    exact_counts = _exact_scales(rows.reshape(-1)[_sample_positions(rows.size)]).sum(axis=0)
    scale = int(np.argmax(exact_counts))
    if exact_counts[scale] == 0:
        return None

    form = _decimal_form_at(rows, scale)
    missed = np.concatenate([row[positions] for row, positions in zip(rows, form.exceptions)])
    if len(missed):
        fitting = np.flatnonzero(_exact_scales(missed[:_SCALE_SAMPLE_SIZE]).all(axis=0))
        fitting = fitting[fitting > scale]
        if len(fitting):
            wider = _decimal_form_at(rows, int(fitting[0]))
            if sum(map(len, wider.exceptions)) < len(missed):
                form = wider

    if any(len(positions) * _MAX_EXCEPTION_SHARE > row_size for positions in form.exceptions):
        return None
    return form


def _write_exceptions(body: bytearray, column: np.ndarray, positions: np.ndarray) -> None:
    body += _U32.pack(len(positions))
    if len(positions):
        body += positions.astype("<u4").tobytes()
        body += column[positions].astype("<f8", copy=False).tobytes()


def _bit_cost(codes: np.ndarray) -> int:
    """Estimate the compressed size of codes as the sum of floor(log2(code + 1)).

    The biased exponent of float64(code + 1) is that logarithm plus 1023, and
    the constant offset does not change which of two equally long streams is smaller.
    """
    return int(((codes + np.uint64(1)).astype(np.float64).view(np.int64) >> 52).sum())


def _write_value_column(body: bytearray, column: np.ndarray) -> None:
    form = _find_decimal_form(column[None, :]) if len(column) else None
    if form is None:
        body.append(_ENCODING_RAW)
        _write_stream(body, column.view(np.int64))
        return

    integers = form.integers[0]
    plain = _stream_codes(integers)
    deltas = _stream_codes(_deltas(integers))
    if _bit_cost(deltas[2]) < _bit_cost(plain[2]):
        body += bytes((_ENCODING_DECIMAL_DELTAS, form.scale))
        _write_codes(body, *deltas)
    else:
        body += bytes((_ENCODING_DECIMAL, form.scale))
        _write_codes(body, *plain)
    _write_exceptions(body, column, form.exceptions[0])


def _write_prices(body: bytearray, columns: list[np.ndarray], nulls: list[np.ndarray], null_kinds: list[int]) -> None:
    """Append the price layout byte and the open, high, low and close columns.

    The joint layout is used when the four columns have the same NULL rows,
    at least one non-NULL row, and a decimal form at one common scale.
    """
    form = None
    rows = None
    if _same_null_rows(nulls, null_kinds):
        rows = np.stack(columns)
        form = _find_decimal_form(rows)
    if form is None:
        body.append(_PRICES_SEPARATE)
        for column, kind in zip(columns, null_kinds):
            if kind != _NULLS_ALL:
                _write_value_column(body, column)
        return

    open_k, high_k, low_k, close_k = form.integers
    relative = np.empty_like(form.integers)
    relative[0] = _deltas(close_k)
    relative[1, 0] = open_k[0] - close_k[0]
    np.subtract(open_k[1:], close_k[:-1], out=relative[1, 1:])
    np.subtract(high_k, np.maximum(open_k, close_k), out=relative[2])
    np.subtract(np.minimum(open_k, close_k), low_k, out=relative[3])
    smallest = relative.min(axis=1)

    body += bytes((_PRICES_JOINT, form.scale))
    for stream, stream_smallest in zip(relative, smallest):
        _write_codes(body, *_stream_codes(stream, int(stream_smallest)))
    for row, positions in zip(rows, form.exceptions):
        _write_exceptions(body, row, positions)


def _same_null_rows(nulls: list[np.ndarray], null_kinds: list[int]) -> bool:
    """Tell whether the columns have the same NULL rows and at least one row that is not NULL."""
    if len(nulls[0]) == 0 or len(set(null_kinds)) != 1 or null_kinds[0] == _NULLS_ALL:
        return False
    if null_kinds[0] == _NULLS_NONE:
        return True
    return all(np.array_equal(nulls[0], null) for null in nulls[1:])


def _max_body_size(count: int) -> int:
    """Return the largest body that `pack_columns` writes for `count` bars.

    Every stream is counted at its largest (offset transform, width 8) and
    every column as decimal with the maximum number of exceptions. The joint OHLC
    layout is 7 bytes smaller than four separate columns.
    """
    stream = 1 + 8 + 1 + 8 * count
    exceptions = 4 + 12 * (count // _MAX_EXCEPTION_SHARE)
    ts_section = 8 + stream
    null_sections = len(VALUE_COLUMNS) * (1 + (count + 7) // 8)
    value_column = 2 + stream + exceptions
    return ts_section + null_sections + 1 + len(VALUE_COLUMNS) * value_column


# ---------------------------------------------------------------------------
# Packed encoding: reader
# ---------------------------------------------------------------------------


def unpack_columns(data: bytes) -> BarColumns:
    """Decompress and decode bytes written by `pack_columns`.

    Raises ValueError when the version is unknown, the input is truncated
    or has extra bytes, the zstd frame fails its checksum, or the body does not
    decode to exactly the bar count of the header.
    """
    data = memoryview(data).cast("B")
    if len(data) < _PACKED_HEADER.size:
        raise ValueError(f"invalid packed bar data: {len(data)} bytes is shorter than the 5-byte header")
    version, count = _PACKED_HEADER.unpack_from(data)
    if version != PACKED_LAYOUT_VERSION:
        raise ValueError(
            f"unsupported packed layout version {version}: this tvcat reads only version "
            f"{PACKED_LAYOUT_VERSION}, so the chunk needs a newer tvcat, or it is corrupted"
        )
    if count > MAX_PACKED_BARS:
        raise ValueError(f"invalid packed bar data: {count} bars exceeds the maximum of {MAX_PACKED_BARS}")

    body = _decompress_body(data[_PACKED_HEADER.size :], _max_body_size(count))
    reader = _BodyReader(body)
    ts = _read_ts(reader, count)
    valids = [_read_validity(reader, count, name) for name in VALUE_COLUMNS]
    prices = _read_prices(reader, valids[:4], count)
    volume = _read_value_column(reader, valids[4], count, "volume")
    if reader.offset != len(body):
        raise ValueError(
            f"invalid packed bar data: {len(body) - reader.offset} bytes left after the columns of {count} bars"
        )
    return BarColumns(ts, *prices, volume)


def _decompress_body(frame: memoryview, max_size: int) -> bytes:
    """Decompress one zstd frame, after checking its declared size, and reject bytes after it.

    libzstd stops with an error when the frame produces more than its declared
    content size (checked with zstandard 0.25 and libzstd 1.5.7), so max_size
    bounds the memory that a crafted frame can claim.
    """
    try:
        declared = zstandard.frame_content_size(frame)
    except zstandard.ZstdError as error:
        raise ValueError(f"invalid packed bar data: zstd frame header: {error}") from None
    if declared < 0:
        raise ValueError("invalid packed bar data: the zstd frame does not declare its content size")
    if declared > max_size:
        raise ValueError(
            f"invalid packed bar data: the zstd frame declares {declared} bytes, "
            f"more than the {max_size} that the bar count allows"
        )

    decompressor = _decompressor().decompressobj(write_size=max(declared, 1))
    try:
        body = decompressor.decompress(frame)
    except zstandard.ZstdError as error:
        raise ValueError(f"invalid packed bar data: zstd decompression failed: {error}") from None
    if not decompressor.eof:
        raise ValueError("invalid packed bar data: the zstd frame is truncated")
    if decompressor.unused_data:
        raise ValueError(
            f"invalid packed bar data: {len(decompressor.unused_data)} bytes after the zstd frame"
        )
    if len(body) != declared:
        raise ValueError(
            f"invalid packed bar data: the zstd frame produced {len(body)} bytes but declares {declared}"
        )
    return body


def _decompressor() -> zstandard.ZstdDecompressor:
    """Return this thread's zstd decompressor."""
    decompressor = getattr(_zstd_contexts, "decompressor", None)
    if decompressor is None:
        decompressor = _zstd_contexts.decompressor = zstandard.ZstdDecompressor()
    return decompressor


class _BodyReader:
    """A cursor over the decompressed body that raises ValueError instead of reading past its end."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.offset = 0

    def take(self, size: int, field: str) -> int:
        """Advance over `size` bytes and return their start offset."""
        start = self.offset
        if size > len(self.body) - start:
            raise ValueError(
                f"invalid packed bar data: {field} needs {size} bytes at body offset {start}, "
                f"but only {len(self.body) - start} are left"
            )
        self.offset = start + size
        return start

    def u8(self, field: str) -> int:
        return self.body[self.take(1, field)]

    def unpack(self, layout: struct.Struct, field: str) -> tuple:
        return layout.unpack_from(self.body, self.take(layout.size, field))

    def array(self, dtype: str, count: int, field: str) -> np.ndarray:
        dtype = np.dtype(dtype)
        start = self.take(count * dtype.itemsize, field)
        return np.frombuffer(self.body, dtype, count, start)


def _read_stream(reader: _BodyReader, count: int, field: str, out: np.ndarray | None = None) -> np.ndarray:
    """Read an integer stream of `count` values into the int64 array `out`, or a new one, and return it."""
    if out is None:
        out = np.empty(count, np.int64)
    transform = reader.u8(f"transform of {field}")
    if transform == _TRANSFORM_OFFSET:
        (base,) = reader.unpack(_I64, f"base of {field}")
    elif transform != _TRANSFORM_ZIGZAG:
        raise ValueError(f"invalid packed bar data: transform {transform} of {field} is unknown")
    width = reader.u8(f"width of {field}")
    if width not in _STREAM_WIDTHS:
        raise ValueError(f"invalid packed bar data: {field} has width {width}, expected one of {_STREAM_WIDTHS}")

    codes = out.view(np.uint64)
    if width == 0:
        codes[:] = 0
    elif width == 1:
        codes[:] = reader.array("u1", count, field)
    else:
        planes = reader.array("u1", count * width, field)
        shuffled = np.empty((count, width), np.uint8)
        shuffled.T[...] = planes.reshape(width, count)
        codes[:] = shuffled.view(_UNSIGNED_DTYPES[width]).reshape(count)

    if transform == _TRANSFORM_ZIGZAG:
        signs = (codes & np.uint64(1)).view(np.int64)
        np.negative(signs, out=signs)
        codes >>= np.uint64(1)
        codes ^= signs.view(np.uint64)
    elif base:
        out += base
    return out


def _read_ts(reader: _BodyReader, count: int) -> np.ndarray:
    (first,) = reader.unpack(_I64, "first ts")
    differences = _read_stream(reader, max(count - 1, 0), "ts differences")
    if count == 0:
        if first != 0:
            raise ValueError(f"invalid packed bar data: first ts is {first} but there are no bars")
        return np.empty(0, np.int64)
    ts = np.empty(count, np.uint64)
    ts[0] = first & (2**64 - 1)
    steps = np.cumsum(differences.view(np.uint64), dtype=np.uint64)
    np.cumsum(steps, dtype=np.uint64, out=ts[1:])
    ts[1:] += ts[0]
    return ts.view(np.int64)


def _read_validity(reader: _BodyReader, count: int, name: str) -> np.ndarray | None:
    """Read a null section and return the validity mask, or None when no row is NULL."""
    kind = reader.u8(f"null kind of {name}")
    if kind == _NULLS_NONE:
        return None
    if kind == _NULLS_ALL:
        return np.zeros(count, bool)
    if kind != _NULLS_SOME:
        raise ValueError(f"invalid packed bar data: null kind {kind} of column {name} is unknown")
    bitmap = reader.array("u1", (count + 7) // 8, f"validity bitmap of {name}")
    _check_bitmap_padding(bitmap, count, name)
    valid = np.unpackbits(bitmap, count=count, bitorder="little").view(bool)
    # Whether a column is stored at all depends on its kind, so kind 2 must
    # really have both NULL and non-NULL rows.
    if valid.all() or not valid.any():
        raise ValueError(f"invalid packed bar data: the validity bitmap of {name} contradicts null kind 2")
    return valid


def _non_null_count(valid: np.ndarray | None, count: int) -> int:
    return count if valid is None else int(np.count_nonzero(valid))


def _expand(values: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """Place the non-NULL values at their rows and NaN in the NULL rows."""
    if valid is None:
        return values
    column = np.full(len(valid), np.nan)
    column[valid] = values
    return column


def _read_exceptions(reader: _BodyReader, size: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Read an exception list of a column with `size` non-NULL values and return positions and values."""
    (count,) = reader.unpack(_U32, f"exception count of {name}")
    if count > size:
        raise ValueError(f"invalid packed bar data: column {name} has {count} exceptions but {size} values")
    positions = reader.array("<u4", count, f"exception positions of {name}").astype(np.intp)
    values = reader.array("<f8", count, f"exception values of {name}")
    if count and (positions[-1] >= size or (count > 1 and (np.diff(positions) <= 0).any())):
        raise ValueError(
            f"invalid packed bar data: exception positions of {name} are not strictly increasing below {size}"
        )
    if np.isnan(values).any():
        raise ValueError(f"invalid packed bar data: an exception value of column {name} is NaN")
    return positions, values


def _check_decimal_range(integers: np.ndarray, name: str) -> None:
    if integers.size and (integers.min() <= -_MAX_EXACT_INTEGER or integers.max() >= _MAX_EXACT_INTEGER):
        raise ValueError(f"invalid packed bar data: a decimal integer of {name} is beyond 2**53 in magnitude")


def _read_scale(reader: _BodyReader, name: str) -> int:
    scale = reader.u8(f"decimal scale of {name}")
    if scale > MAX_DECIMAL_SCALE:
        raise ValueError(
            f"invalid packed bar data: decimal scale {scale} of {name} is above {MAX_DECIMAL_SCALE}"
        )
    return scale


def _read_value_column(reader: _BodyReader, valid: np.ndarray | None, count: int, name: str) -> np.ndarray:
    """Read one value column, unless it is all NULL, and return it with NaN in the NULL rows."""
    size = _non_null_count(valid, count)
    if valid is not None and size == 0:
        return np.full(count, np.nan)

    encoding = reader.u8(f"encoding of {name}")
    if encoding == _ENCODING_RAW:
        values = _read_stream(reader, size, f"values of {name}").view(np.float64)
        if np.isnan(values).any():
            raise ValueError(f"invalid packed bar data: a non-NULL value of column {name} is NaN")
        return _expand(values, valid)
    if encoding not in (_ENCODING_DECIMAL, _ENCODING_DECIMAL_DELTAS):
        raise ValueError(f"invalid packed bar data: encoding {encoding} of column {name} is unknown")

    scale = _read_scale(reader, name)
    integers = _read_stream(reader, size, f"values of {name}")
    if encoding == _ENCODING_DECIMAL_DELTAS:
        integers = np.cumsum(integers)
    _check_decimal_range(integers, name)
    values = integers.astype(np.float64) / _POWERS_OF_TEN[scale]
    positions, exception_values = _read_exceptions(reader, size, name)
    values[positions] = exception_values
    return _expand(values, valid)


def _read_prices(reader: _BodyReader, valids: list[np.ndarray | None], count: int) -> list[np.ndarray]:
    """Read the price layout byte and the open, high, low and close columns."""
    names = VALUE_COLUMNS[:4]
    layout = reader.u8("price layout")
    if layout == _PRICES_SEPARATE:
        return [_read_value_column(reader, valid, count, name) for valid, name in zip(valids, names)]
    if layout != _PRICES_JOINT:
        raise ValueError(f"invalid packed bar data: price layout {layout} is unknown")

    valid = valids[0]
    if valid is None:
        same_null_rows = all(other is None for other in valids[1:])
    else:
        same_null_rows = all(other is not None and np.array_equal(valid, other) for other in valids[1:])
    if not same_null_rows:
        raise ValueError("invalid packed bar data: the joint OHLC columns have different NULL rows")
    size = _non_null_count(valid, count)
    if size == 0:
        raise ValueError("invalid packed bar data: the joint OHLC layout has no non-NULL rows")

    scale = _read_scale(reader, "OHLC")
    relative = np.empty((4, size), np.int64)
    for row, field in zip(relative, ("close deltas", "open gaps", "high excess", "low excess")):
        _read_stream(reader, size, field, out=row)

    # Row order of `integers` is open, high, low, close, as in VALUE_COLUMNS.
    integers = np.empty_like(relative)
    open_k, high_k, low_k, close_k = integers
    np.cumsum(relative[0], out=close_k)
    # Array operations wrap on overflow without a warning, unlike numpy scalars.
    np.add(relative[1, :1], close_k[:1], out=open_k[:1])
    np.add(relative[1, 1:], close_k[:-1], out=open_k[1:])
    np.add(np.maximum(open_k, close_k), relative[2], out=high_k)
    np.subtract(np.minimum(open_k, close_k), relative[3], out=low_k)
    _check_decimal_range(integers, "OHLC")

    values = integers.astype(np.float64) / _POWERS_OF_TEN[scale]
    columns = []
    for row, name in zip(values, names):
        positions, exception_values = _read_exceptions(reader, size, name)
        row[positions] = exception_values
        columns.append(_expand(row, valid))
    return columns
