"""Tests of the canonical and packed bar encodings."""

import csv
import math
import struct
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tvcat.catalog.bars import VALUE_COLUMNS, BarColumns
from tvcat.catalog.codec import (
    MAX_PACKED_BARS,
    PACKED_LAYOUT_VERSION,
    decode_canonical,
    encode_canonical,
    pack_columns,
    unpack_columns,
)

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TRADINGVIEW_DIR = DATA_DIR / "tradingview"
WINDOW_BARS = 2048

NAN = math.nan


def float_from_bits(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


# NaNs with different payloads and signs. Every one of them is NULL.
NAN_PATTERNS = [
    float_from_bits(0x7FF8000000000000),
    float_from_bits(0xFFF8000000000000),
    float_from_bits(0x7FF0000000000001),
    float_from_bits(0x7FF8DEAD0000BEEF),
    float_from_bits(0xFFFFFFFFFFFFFFFF),
]

SPECIAL_VALUES = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.1 + 0.2,
    1.0772599999999999,
    1.07726,
    -123.45,
    1e300,
    -1e300,
    1e-300,
    5e-324,
    -5e-324,
    math.inf,
    -math.inf,
    float(2**53),
    float(2**53 + 2),
    float(2**60),
    -float(2**62),
    1.7976931348623157e308,
    2.2250738585072014e-308,
    123456789.123,
    0.000001,
]


def assert_bit_equal(actual: BarColumns, expected: BarColumns) -> None:
    """Compare bars bit for bit and name the first column that differs."""
    assert len(actual) == len(expected)
    assert actual.ts.dtype == np.int64
    assert np.array_equal(actual.ts, expected.ts), "ts differs"
    for name in VALUE_COLUMNS:
        mine = getattr(actual, name)
        theirs = getattr(expected, name)
        assert mine.dtype == np.float64, f"{name} has dtype {mine.dtype}"
        mine_null = np.isnan(mine)
        assert np.array_equal(mine_null, np.isnan(theirs)), f"NULL rows of {name} differ"
        assert np.array_equal(
            mine[~mine_null].view(np.int64), theirs[~mine_null].view(np.int64)
        ), f"values of {name} differ"
    assert actual.bit_equal(expected)


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------


def grid_values(scale: int):
    """Values k / 10**scale, as a CSV parser produces them for `scale` decimals."""
    return st.integers(-(10**9), 10**9).map(lambda k: k / 10**scale)


any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
nan_values = st.sampled_from(NAN_PATTERNS)


@st.composite
def value_columns(draw, count: int) -> list[float]:
    """One value column in one of several styles: decimals on a grid, random floats, special values or NULL."""
    style = draw(st.sampled_from(["grid", "grid with nulls", "mixed", "special", "null"]))
    if style == "null":
        return [draw(nan_values) for _ in range(count)]
    if style == "special":
        element = st.one_of(st.sampled_from(SPECIAL_VALUES), nan_values)
    elif style == "mixed":
        element = st.one_of(any_float, grid_values(draw(st.integers(0, 8))), nan_values)
    elif style == "grid with nulls":
        element = st.one_of(grid_values(draw(st.integers(0, 12))), nan_values)
    else:
        element = grid_values(draw(st.integers(0, 12)))
    return draw(st.lists(element, min_size=count, max_size=count))


@st.composite
def ohlc_columns(draw, count: int) -> list[list[float]]:
    """Open, high, low and close on one tick grid with shared NULL rows, as real bars have."""
    scale = draw(st.integers(0, 12))
    start = draw(st.integers(-(10**6), 10**8))
    moves = draw(st.lists(st.integers(-500, 500), min_size=count, max_size=count))
    spreads = draw(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), min_size=count, max_size=count))
    null_rows = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    power = 10**scale

    close = np.cumsum(np.array(moves, dtype=np.int64)) + start
    open_ = np.concatenate([[start], close[:-1]])
    high = np.maximum(open_, close) + np.array([up for up, _ in spreads], dtype=np.int64).reshape(count)
    low = np.minimum(open_, close) - np.array([down for _, down in spreads], dtype=np.int64).reshape(count)
    columns = []
    for integers in (open_, high, low, close):
        values = [int(k) / power for k in integers]
        columns.append([NAN if null else value for value, null in zip(values, null_rows)])
    return columns


@st.composite
def bars(draw, max_count: int = 80) -> BarColumns:
    count = draw(st.integers(0, max_count))
    ts = sorted(draw(st.sets(st.integers(-(2**63), 2**63 - 1), min_size=count, max_size=count)))
    if draw(st.booleans()):
        prices = draw(ohlc_columns(count))
    else:
        prices = [draw(value_columns(count)) for _ in range(4)]
    volume = draw(value_columns(count))
    return BarColumns.from_arrays(ts, *prices, volume)


# ---------------------------------------------------------------------------
# Canonical encoding
# ---------------------------------------------------------------------------


def test_canonical_hand_encoded_example():
    example = BarColumns.from_arrays(
        ts=[60, 2**32 + 1],
        open=[1.5, NAN],
        high=[2.0, -0.0],
        low=[NAN, NAN],
        close=[1.0, -2.0],
        volume=[NAN, 3.0],
    )
    expected = bytes.fromhex(
        "02000000"  # n = 2
        "3c00000000000000"  # ts[0] = 60
        "0100000001000000"  # ts[1] = 2**32 + 1
        "01"  # open: row 0 valid, row 1 NULL
        "000000000000f83f"  # 1.5
        "0000000000000000"  # NULL as +0.0
        "03"  # high: both rows valid
        "0000000000000040"  # 2.0
        "0000000000000080"  # -0.0 keeps its sign bit
        "00"  # low: both rows NULL
        "0000000000000000"
        "0000000000000000"
        "03"  # close: both rows valid
        "000000000000f03f"  # 1.0
        "00000000000000c0"  # -2.0
        "02"  # volume: row 1 valid
        "0000000000000000"
        "0000000000000840"  # 3.0
    )
    assert encode_canonical(example) == expected
    assert_bit_equal(decode_canonical(expected), example)


def test_canonical_bitmap_is_lsb_first():
    valid_rows = [0, 3, 8, 9]
    close = [1.0 if row in valid_rows else NAN for row in range(10)]
    example = BarColumns.from_arrays(np.arange(10), close, close, close, close, close)
    encoded = encode_canonical(example)

    bitmap_offset = 4 + 8 * 10
    assert encoded[bitmap_offset : bitmap_offset + 2] == bytes([0b00001001, 0b00000011])


def test_canonical_size_formula():
    for count in (0, 1, 7, 8, 9, 2048):
        example = BarColumns.from_arrays(np.arange(count), *([np.ones(count)] * 5))
        bitmap_size = (count + 7) // 8
        assert len(encode_canonical(example)) == 4 + 8 * count + 5 * (bitmap_size + 8 * count)


@pytest.mark.parametrize("nan", NAN_PATTERNS, ids=lambda value: struct.pack("<d", value).hex())
def test_canonical_any_nan_is_null(nan):
    with_pattern = BarColumns.from_arrays([1, 2], [nan, 1.0], [1.0, nan], [nan, nan], [2.0, 3.0], [nan, 0.5])
    with_standard_nan = BarColumns.from_arrays([1, 2], [NAN, 1.0], [1.0, NAN], [NAN, NAN], [2.0, 3.0], [NAN, 0.5])
    assert encode_canonical(with_pattern) == encode_canonical(with_standard_nan)


@given(bars())
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_canonical_round_trip(example):
    assert_bit_equal(decode_canonical(encode_canonical(example)), example)


def test_canonical_rejects_every_truncation():
    encoded = encode_canonical(BarColumns.from_arrays([1, 2, 3], [1.0, NAN, 2.0], *([[1.0, 2.0, 3.0]] * 4)))
    for length in range(len(encoded)):
        with pytest.raises(ValueError, match="invalid canonical bar data"):
            decode_canonical(encoded[:length])


def test_canonical_rejects_extra_byte():
    encoded = encode_canonical(BarColumns.from_arrays([1], [1.0], [1.0], [1.0], [1.0], [1.0]))
    with pytest.raises(ValueError, match="need 57 bytes, got 58"):
        decode_canonical(encoded + b"\x00")


def test_canonical_rejects_huge_count():
    with pytest.raises(ValueError, match="invalid canonical bar data"):
        decode_canonical(b"\xff\xff\xff\xff")


def _canonical_single_bar(open_bitmap: bytes, open_value: bytes) -> bytes:
    one = struct.pack("<d", 1.0)
    return (
        struct.pack("<Iq", 1, 100)
        + open_bitmap
        + open_value
        + (b"\x01" + one) * 4
    )


@pytest.mark.parametrize(
    ("open_bitmap", "open_value", "message"),
    [
        (b"\x03", struct.pack("<d", 1.0), "padding bits"),
        (b"\x00", struct.pack("<d", 1.0), r"other than \+0\.0 in a NULL row"),
        (b"\x00", struct.pack("<d", -0.0), r"other than \+0\.0 in a NULL row"),
        (b"\x01", struct.pack("<d", NAN), "NaN in a non-NULL row"),
    ],
    ids=["padding bit set", "value in NULL row", "negative zero in NULL row", "NaN in valid row"],
)
def test_canonical_rejects_non_canonical_input(open_bitmap, open_value, message):
    assert decode_canonical(_canonical_single_bar(b"\x01", struct.pack("<d", 1.0)))
    with pytest.raises(ValueError, match=message):
        decode_canonical(_canonical_single_bar(open_bitmap, open_value))


@pytest.mark.parametrize("encode", [encode_canonical, pack_columns])
def test_encoders_reject_invalid_columns(encode):
    with pytest.raises(ValueError, match="has shape"):
        encode(BarColumns(np.arange(3), *([np.ones(2)] * 5)))
    with pytest.raises(ValueError, match="expected float64"):
        encode(BarColumns(np.arange(3), np.ones(3, np.float32), *([np.ones(3)] * 4)))
    with pytest.raises(ValueError, match="expected int64"):
        encode(BarColumns(np.arange(3, dtype=np.float64), *([np.ones(3)] * 5)))


# ---------------------------------------------------------------------------
# Packed encoding: round trips
# ---------------------------------------------------------------------------


@given(bars())
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_packed_round_trip(example):
    assert_bit_equal(unpack_columns(pack_columns(example)), example)


@given(bars(max_count=3000))
@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_packed_round_trip_long(example):
    assert_bit_equal(unpack_columns(pack_columns(example)), example)


@given(st.lists(st.sampled_from(SPECIAL_VALUES + NAN_PATTERNS), min_size=1, max_size=40), st.data())
@settings(deadline=None)
def test_packed_round_trip_special_values(values, data):
    count = len(values)
    columns = [data.draw(st.permutations(values)) for _ in VALUE_COLUMNS]
    example = BarColumns.from_arrays(np.arange(count) * 60, *columns)
    assert_bit_equal(unpack_columns(pack_columns(example)), example)


def test_packed_round_trip_zero_and_one_bar():
    empty = BarColumns.empty()
    assert_bit_equal(unpack_columns(pack_columns(empty)), empty)
    single = BarColumns.from_arrays([1_700_000_000], [1.25], [1.5], [1.0], [1.25], [NAN])
    assert_bit_equal(unpack_columns(pack_columns(single)), single)


def test_packed_round_trip_extreme_ts():
    ts = [-(2**63), -1, 0, 1, 2**62, 2**63 - 1]
    example = BarColumns.from_arrays(ts, *([np.arange(6, dtype=np.float64)] * 5))
    assert_bit_equal(unpack_columns(pack_columns(example)), example)


def test_packed_round_trip_unsorted_ts():
    ts = [5, 3, 3, -7, 2**63 - 1, -(2**63)]
    example = BarColumns.from_arrays(ts, *([np.ones(6)] * 5))
    assert_bit_equal(unpack_columns(pack_columns(example)), example)


@pytest.mark.parametrize(
    "prices",
    [
        [1.0772599999999999, 1.07726, 1.0772600000000001, 1.07727],
        [0.1 + 0.2, 0.3, 0.1, 0.2],
        [-0.0, 0.0, -0.0, 1.0],
        [1e300, 1e-300, -1e300, 5e-324],
        [float(2**53 + 2), float(2**60), 3.0, 4.0],
        [-5.25, -5.5, -4.75, -1e-12],
        [math.inf, -math.inf, 1.5, 2.5],
    ],
    ids=["almost decimal", "sum of decimals", "negative zero", "extremes", "beyond 2**53", "negative", "infinities"],
)
def test_packed_round_trip_exceptions(prices):
    count = 64
    # Mostly grid values, with the case's values spread among them.
    base = np.round(np.linspace(1.0, 2.0, count), 2)
    columns = []
    for shift in range(5):
        column = base.copy()
        column[shift :: 16][: len(prices)] = prices
        columns.append(column)
    example = BarColumns.from_arrays(np.arange(count) * 60, *columns)
    assert_bit_equal(unpack_columns(pack_columns(example)), example)


def test_packed_any_nan_is_null():
    count = len(NAN_PATTERNS) * 3
    column = np.array(NAN_PATTERNS * 3)
    column[::2] = 1.5
    example = BarColumns.from_arrays(np.arange(count), column, column, column, column, column)
    unpacked = unpack_columns(pack_columns(example))
    for name in VALUE_COLUMNS:
        assert np.array_equal(np.isnan(getattr(unpacked, name)), np.isnan(column)), name


def test_packed_close_only_series():
    count = 500
    close = np.round(np.linspace(10.0, 20.0, count), 4)
    example = BarColumns.from_arrays(
        np.arange(count) * 86_400, np.full(count, NAN), np.full(count, NAN), np.full(count, NAN), close, np.full(count, NAN)
    )
    packed = pack_columns(example)
    assert_bit_equal(unpack_columns(packed), example)
    assert len(packed) < 2 * count


@pytest.mark.parametrize("level", [1, 3, 19])
def test_packed_levels_round_trip(level):
    example = realistic_bars(3000, seed=level)
    assert_bit_equal(unpack_columns(pack_columns(example, level=level)), example)


def realistic_bars(count: int, seed: int) -> BarColumns:
    """One-minute bars on a 0.01 grid with about 2% missing minutes and 4-decimal volumes."""
    rng = np.random.default_rng(seed)
    minutes = np.flatnonzero(rng.random(count * 2) >= 0.02)[:count]
    close = 3_000_000 + np.cumsum(rng.integers(-800, 801, count))
    open_ = np.concatenate([[3_000_000], close[:-1]])
    high = np.maximum(open_, close) + rng.integers(0, 400, count)
    low = np.minimum(open_, close) - rng.integers(0, 400, count)
    volume = np.rint(rng.lognormal(1.0, 1.2, count) * 10_000)
    return BarColumns.from_arrays(
        1_700_000_000 + 60 * minutes, open_ / 100, high / 100, low / 100, close / 100, volume / 10_000
    )


def test_packed_size_realistic_bars():
    example = realistic_bars(WINDOW_BARS, seed=7)
    packed = pack_columns(example)
    assert_bit_equal(unpack_columns(packed), example)
    assert len(packed) / len(example) < 10


# ---------------------------------------------------------------------------
# Packed encoding: real TradingView exports
# ---------------------------------------------------------------------------


def parse_time(text: str) -> int:
    if text.lstrip("-").isdigit():
        return int(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def parse_value(text: str) -> float:
    return NAN if text in ("", "NaN") else float(text)


def read_tradingview_csv(path: Path) -> BarColumns:
    """Read time, open, high, low, close and Volume. A missing column is all NULL."""
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    header = rows[0]
    body = rows[1:]
    ts = [parse_time(row[header.index("time")]) for row in body]
    columns = []
    for name in ("open", "high", "low", "close", "Volume"):
        if name in header:
            index = header.index(name)
            columns.append([parse_value(row[index]) for row in body])
        else:
            columns.append([NAN] * len(body))
    return BarColumns.from_arrays(ts, *columns)


def tradingview_files() -> list[Path]:
    if not TRADINGVIEW_DIR.is_dir():
        return []
    return sorted(TRADINGVIEW_DIR.glob("*.csv"))


requires_data = pytest.mark.skipif(not TRADINGVIEW_DIR.is_dir(), reason=f"no sample data at {TRADINGVIEW_DIR}")


@requires_data
@pytest.mark.parametrize("path", tradingview_files(), ids=lambda path: path.stem)
def test_packed_round_trip_tradingview_export(path):
    example = read_tradingview_csv(path)
    assert len(example) > 0

    assert_bit_equal(unpack_columns(pack_columns(example)), example)
    assert_bit_equal(decode_canonical(encode_canonical(example)), example)
    for start in range(0, len(example), WINDOW_BARS):
        window = example.slice(start, start + WINDOW_BARS)
        packed = pack_columns(window)
        assert_bit_equal(unpack_columns(packed), window)
        assert len(packed) < len(encode_canonical(window))


@requires_data
def test_packed_size_es_minute_bars():
    example = read_tradingview_csv(TRADINGVIEW_DIR / "CME_MINI_ES1!, 1min.csv")
    packed_size = sum(
        len(pack_columns(example.slice(start, start + WINDOW_BARS)))
        for start in range(0, len(example), WINDOW_BARS)
    )
    assert packed_size / len(example) < 10


# ---------------------------------------------------------------------------
# Packed encoding: invalid input
# ---------------------------------------------------------------------------


def zstd_frame(body: bytes, **options) -> bytes:
    return zstandard.ZstdCompressor(level=3, write_checksum=True, **options).compress(body)


def packed_from_body(count: int, body: bytes, **options) -> bytes:
    return struct.pack("<BI", PACKED_LAYOUT_VERSION, count) + zstd_frame(body, **options)


def body_of(packed: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompress(packed[5:])


def test_packed_rejects_every_truncation():
    packed = pack_columns(realistic_bars(50, seed=1))
    for length in range(len(packed)):
        with pytest.raises(ValueError):
            unpack_columns(packed[:length])


def test_packed_detects_every_byte_flip():
    example = realistic_bars(50, seed=2)
    packed = pack_columns(example)
    for position in range(len(packed)):
        for mask in (0x01, 0x80, 0xFF):
            corrupted = bytearray(packed)
            corrupted[position] ^= mask
            try:
                unpacked = unpack_columns(bytes(corrupted))
            except ValueError:
                continue
            assert unpacked.bit_equal(example), f"flip {mask:#x} at byte {position} returned other bars"


def test_packed_rejects_unknown_version():
    packed = bytearray(pack_columns(realistic_bars(10, seed=3)))
    packed[0] = PACKED_LAYOUT_VERSION + 1
    with pytest.raises(ValueError, match="unsupported packed layout version 2"):
        unpack_columns(bytes(packed))


def test_unpack_rejects_count_above_limit():
    header = struct.pack("<BI", PACKED_LAYOUT_VERSION, MAX_PACKED_BARS + 1)
    with pytest.raises(ValueError, match="exceeds the maximum"):
        unpack_columns(header + zstd_frame(b"\x00" * 100))


def test_pack_rejects_count_above_limit():
    count = MAX_PACKED_BARS + 1
    example = BarColumns(np.zeros(count, np.int64), *([np.zeros(count)] * 5))
    with pytest.raises(ValueError, match="maximum per packed chunk"):
        pack_columns(example)


def test_packed_rejects_oversized_frame():
    # The body bound for 0 bars is about 100 bytes, so a frame declaring
    # 10 MB must be rejected before it is decompressed.
    with pytest.raises(ValueError, match="declares 10000000 bytes"):
        unpack_columns(packed_from_body(0, b"\x00" * 10_000_000))


def test_packed_rejects_unsized_frame():
    body = body_of(pack_columns(BarColumns.empty()))
    with pytest.raises(ValueError, match="does not declare its content size"):
        unpack_columns(packed_from_body(0, body, write_content_size=False))


def test_packed_rejects_bytes_after_frame():
    packed = pack_columns(realistic_bars(10, seed=4))
    with pytest.raises(ValueError, match="3 bytes after the zstd frame"):
        unpack_columns(packed + b"abc")


def test_packed_rejects_wrong_count():
    packed = bytearray(pack_columns(realistic_bars(10, seed=5)))
    for count in (9, 11):
        packed[1:5] = struct.pack("<I", count)
        with pytest.raises(ValueError, match="invalid packed bar data"):
            unpack_columns(bytes(packed))


def test_packed_rejects_body_with_extra_byte():
    body = body_of(pack_columns(realistic_bars(10, seed=6)))
    with pytest.raises(ValueError, match="1 bytes left after the columns"):
        unpack_columns(packed_from_body(10, body + b"\x00"))


@given(st.binary(max_size=200))
@settings(deadline=None)
def test_packed_rejects_garbage(garbage):
    with pytest.raises(ValueError):
        unpack_columns(bytes([PACKED_LAYOUT_VERSION]) + garbage)


def int_stream(values: list[int], width: int = 8, base: int = 0) -> bytes:
    """An integer stream with transform 1 (offset from `base`) and byte-shuffled codes."""
    codes = [value - base for value in values]
    planes = bytes((code >> (8 * byte)) & 0xFF for byte in range(width) for code in codes)
    return b"\x01" + struct.pack("<q", base) + bytes([width]) + planes


EMPTY_STREAM = b"\x00\x00"  # transform 0 (zigzag), width 0: every value is 0


def float_bits(value: float) -> int:
    return struct.unpack("<q", struct.pack("<d", value))[0]


def raw_column(value: float) -> bytes:
    """A value column of one bar in encoding 0 (raw): the float bits as an integer stream."""
    return b"\x00" + int_stream([float_bits(value)])


def single_bar_body(open_column: bytes = raw_column(1.5), null_kinds: bytes = b"\x00" * 5, layout: bytes = b"\x00") -> bytes:
    """A hand-built body of one bar at ts 100 with every column stored separately."""
    ts_section = struct.pack("<q", 100) + EMPTY_STREAM  # first ts, no differences
    rest = raw_column(2.0) + raw_column(1.0) + raw_column(1.25) + raw_column(7.0)
    return ts_section + null_kinds + layout + open_column + rest


def test_packed_hand_built_body_decodes():
    expected = BarColumns.from_arrays([100], [1.5], [2.0], [1.0], [1.25], [7.0])
    assert_bit_equal(unpack_columns(packed_from_body(1, single_bar_body())), expected)

    # Encoding 1 (decimal) at scale 2 with k = 150, as an offset stream of
    # width 1 from base 100, and no exceptions.
    decimal_open = b"\x01\x02" + int_stream([150], width=1, base=100) + struct.pack("<I", 0)
    assert_bit_equal(unpack_columns(packed_from_body(1, single_bar_body(decimal_open))), expected)

    # k = -150 as a zigzag stream of width 2: code 299.
    negative_open = b"\x01\x02" + b"\x00\x02" + struct.pack("<H", 299) + struct.pack("<I", 0)
    negative_expected = BarColumns.from_arrays([100], [-1.5], [2.0], [1.0], [1.25], [7.0])
    assert_bit_equal(unpack_columns(packed_from_body(1, single_bar_body(negative_open))), negative_expected)


def exception_column(position: int, value: float, count: int = 1) -> bytes:
    """A decimal column of one bar with k = 0 and an exception list."""
    positions = struct.pack("<I", position) * count
    values = struct.pack("<d", value) * count
    return b"\x01\x00" + EMPTY_STREAM + struct.pack("<I", count) + positions + values


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (single_bar_body(null_kinds=b"\x03" + b"\x00" * 4), "null kind 3"),
        (single_bar_body(layout=b"\x02"), "price layout 2"),
        (single_bar_body(open_column=b"\x05" + EMPTY_STREAM), "encoding 5"),
        (single_bar_body(open_column=b"\x00\x02\x08" + b"\x00" * 8), "transform 2"),
        (single_bar_body(open_column=b"\x00\x00\x03" + b"\x00" * 3), "width 3"),
        (single_bar_body(open_column=raw_column(NAN)), "non-NULL value of column open is NaN"),
        (single_bar_body(open_column=b"\x01\x0d" + EMPTY_STREAM + struct.pack("<I", 0)), "decimal scale 13"),
        (single_bar_body(open_column=exception_column(1, 2.5)), "not strictly increasing below 1"),
        (single_bar_body(open_column=exception_column(0, 2.5, count=2)), "2 exceptions but 1 values"),
        (single_bar_body(open_column=exception_column(0, NAN)), "exception value of column open is NaN"),
        (
            single_bar_body(open_column=b"\x01\x00" + int_stream([2**53]) + struct.pack("<I", 0)),
            "beyond 2\\*\\*53",
        ),
        (single_bar_body(null_kinds=b"\x02\x00\x00\x00\x00"), "contradicts null kind 2"),
        (single_bar_body()[:-1], "needs 8 bytes"),
    ],
    ids=[
        "unknown null kind",
        "unknown price layout",
        "unknown encoding",
        "unknown stream transform",
        "invalid stream width",
        "NaN raw value",
        "scale above 12",
        "exception position out of range",
        "more exceptions than values",
        "NaN exception",
        "integer beyond 2**53",
        "bitmap contradicts kind",
        "truncated body",
    ],
)
def test_packed_rejects_inconsistent_body(body, message):
    with pytest.raises(ValueError, match=message):
        unpack_columns(packed_from_body(1, body))


def test_packed_rejects_joint_mismatched_nulls():
    body = (
        struct.pack("<q", 100)
        + b"\x00\x01\x78"  # ts differences: zigzag, width 1, code 120 for +60
        + b"\x02\x01"  # open: some NULL, bitmap 0b01
        + b"\x00\x00\x00\x00"  # high, low, close, volume: no NULL
        + b"\x01\x00"  # joint layout, scale 0
        + EMPTY_STREAM * 4
        + struct.pack("<I", 0) * 4
        + b"\x00" + EMPTY_STREAM  # volume: raw encoding
    )
    with pytest.raises(ValueError, match="joint OHLC columns have different NULL rows"):
        unpack_columns(packed_from_body(2, body))


def test_packed_hand_built_joint_body_decodes():
    # Prices at scale 2: open_k = [140, 150], high_k = [155, 170],
    # low_k = [135, 149], close_k = [150, 160].
    body = (
        struct.pack("<q", 100)
        + int_stream([60], width=1)  # ts differences
        + b"\x00" * 5  # no NULL in any column
        + b"\x01\x02"  # joint layout, scale 2
        + int_stream([150, 10], width=1)  # close deltas
        + b"\x00\x01" + bytes([19, 0])  # open gaps -10 and 0 as zigzag codes
        + int_stream([5, 10], width=1, base=5)  # high excess
        + int_stream([5, 1], width=1, base=1)  # low excess
        + struct.pack("<I", 0) * 4  # no exceptions
        + b"\x01\x00" + int_stream([2, 3], width=1)  # volume: decimal, scale 0
        + struct.pack("<I", 0)
    )
    expected = BarColumns.from_arrays([100, 160], [1.4, 1.5], [1.55, 1.7], [1.35, 1.49], [1.5, 1.6], [2.0, 3.0])
    assert_bit_equal(unpack_columns(packed_from_body(2, body)), expected)


@pytest.mark.parametrize("count", [1, 4, 5, 8, 9, 64, 2048])
def test_packed_worst_case_body_round_trip(count):
    # Decimal integers near 2**50 with a quarter of the values as exceptions
    # need width-8 streams and the maximum number of exceptions. The
    # decoder's size bound must admit this worst case.
    rng = np.random.default_rng(count)
    columns = []
    for _ in VALUE_COLUMNS:
        integers = rng.integers(-(2**50), 2**50, count)
        column = integers / 10**12
        column[::4] = rng.random(len(column[::4])) * 1e-300
        columns.append(column)
    ts = rng.integers(-(2**62), 2**62, count)
    example = BarColumns.from_arrays(ts, *columns)
    assert_bit_equal(unpack_columns(pack_columns(example)), example)


@given(st.integers(0, 5), st.binary(max_size=300))
@settings(deadline=None)
def test_packed_random_body_fails_cleanly(count, body):
    # A valid zstd frame around random bytes reaches the body parser.
    try:
        unpacked = unpack_columns(packed_from_body(count, body))
    except ValueError:
        return
    assert len(unpacked) == count


@given(st.data())
@settings(deadline=None, max_examples=300)
def test_packed_mutated_body_fails_cleanly(data):
    example = data.draw(bars(max_count=12))
    body = bytearray(body_of(pack_columns(example)))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(body) - 1))
        body[position] = data.draw(st.integers(0, 255))
    try:
        unpacked = unpack_columns(packed_from_body(len(example), bytes(body)))
    except ValueError:
        return
    assert len(unpacked) == len(example)
