"""Tests of the TradingView and MetaTrader CSV importer, run against real exports."""

import csv
import os
import random
import shutil
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import numpy as np
import pytest

from tvcat.catalog.bars import BarColumns
from tvcat.engine.importers import ImportedSeries, parse_series_name, read_bar_file
from tvcat.errors import InvalidFile, InvalidInput, InvalidRow, InvalidSymbol, InvalidTimeframe, NotFound

# CI clones the shared data beside the repository, so it may be missing in a bare checkout.
DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TRADINGVIEW_DIR = DATA_DIR / "tradingview"
METATRADER_FILE = DATA_DIR / "other" / "EURUSD60.csv"

requires_data = pytest.mark.skipif(
    not TRADINGVIEW_DIR.is_dir(), reason=f"real bar files not found at {DATA_DIR}"
)


def utc(text: str) -> int:
    """Return the Unix seconds of an ISO 8601 time in UTC such as 2024-01-21T14:00."""
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp())


def float_bits(value: float) -> int:
    return int(np.array([value], dtype=np.float64).view(np.int64)[0])


def copy_export(tmp_path: Path, name: str) -> Path:
    """Copy a real export into tmp_path under its own name and return the copy."""
    target = tmp_path / name
    shutil.copyfile(TRADINGVIEW_DIR / name, target)
    return target


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_export(tmp_path: Path, name: str, header: str, rows: list[str]) -> Path:
    return write_lines(tmp_path / name, [header, *rows])


# Expected facts of every real export: series, row count, first and last bar
# time in UTC, and what the volume column contains ("values" with a count of
# zero volumes, "zero" on every row, or "null" on every row).
REAL_EXPORTS = {
    "CME_MINI_ES1!, 1D.csv": ("CME_MINI:ES1!", "1D", 7037, "1997-09-08T22:00", "2025-07-03T22:00", "values", 5),
    "CME_MINI_ES1!, 60.csv": ("CME_MINI:ES1!", "60", 20709, "2022-01-02T23:00", "2025-07-07T07:00", "values", 0),
    "CME_MINI_ES1!, 1min.csv": ("CME_MINI:ES1!", "1", 20547, "2025-06-15T22:00", "2025-07-07T07:13", "values", 0),
    "COMEX_GOLD, 1D.csv": ("COMEX:GOLD", "1D", 3968, "2005-03-22T23:00", "2020-12-10T23:00", "null", 0),
    "CBOT_CORN, 1D.csv": ("CBOT:CORN", "1D", 3968, "2005-03-22T01:00", "2020-12-11T01:00", "null", 0),
    "BINANCE_BTCUSDT, 1D.csv": ("BINANCE:BTCUSDT", "1D", 564, "2022-09-24T00:00", "2024-04-09T00:00", "values", 0),
    "BINANCE_BTCUSDT, 60.csv": ("BINANCE:BTCUSDT", "60", 1902, "2024-01-21T14:00", "2024-04-09T19:00", "values", 0),
    "FX_EURUSD, 1D.csv": ("FX:EURUSD", "1D", 1277, "2020-04-01T21:00", "2025-02-26T22:00", "null", 0),
    "TVC_SILVER, 1W.csv": ("TVC:SILVER", "1W", 300, "2018-08-26T22:00", "2024-05-19T22:00", "zero", 300),
    "CRYPTO_SOLUSD, 1D.csv": ("CRYPTO:SOLUSD", "1D", 300, "2023-08-01T00:00", "2024-05-26T00:00", "null", 0),
}
CLOSE_ONLY_EXPORTS = {"TVC_SILVER, 1W.csv", "CRYPTO_SOLUSD, 1D.csv"}


@requires_data
def test_real_export_table_is_complete():
    on_disk = {path.name for path in TRADINGVIEW_DIR.glob("*.csv")}
    assert on_disk == set(REAL_EXPORTS)


@requires_data
@pytest.mark.parametrize("name", sorted(REAL_EXPORTS), ids=lambda name: name.removesuffix(".csv"))
def test_real_export_imports(name):
    symbol, timeframe, rows, first, last, volume_kind, zero_volumes = REAL_EXPORTS[name]

    result = read_bar_file(TRADINGVIEW_DIR / name)
    bars = result.bars

    assert isinstance(result, ImportedSeries)
    assert result.symbol == symbol
    assert result.timeframe == timeframe
    assert result.path == str(TRADINGVIEW_DIR / name)
    assert result.rows_read == rows
    assert result.duplicates_merged == 0
    assert len(bars) == rows
    assert bars.ts.dtype == np.int64
    assert bars.ts[0] == utc(first)
    assert bars.ts[-1] == utc(last)
    assert np.all(np.diff(bars.ts) > 0)
    assert not np.isnan(bars.close).any()

    if name in CLOSE_ONLY_EXPORTS:
        assert np.isnan(bars.open).all()
        assert np.isnan(bars.high).all()
        assert np.isnan(bars.low).all()
    else:
        assert not np.isnan(bars.open).any()
        assert not np.isnan(bars.high).any()
        assert not np.isnan(bars.low).any()

    if volume_kind == "null":
        assert np.isnan(bars.volume).all()
    else:
        assert not np.isnan(bars.volume).any()
        assert int((bars.volume == 0).sum()) == zero_volumes


@requires_data
def test_real_export_values_match_text():
    es_hourly = read_bar_file(TRADINGVIEW_DIR / "CME_MINI_ES1!, 60.csv").bars
    btc_hourly = read_bar_file(TRADINGVIEW_DIR / "BINANCE_BTCUSDT, 60.csv").bars

    # Last ES bar: 1751871600,6294.75,6297.25,6293.5,6294,1865
    assert es_hourly.open[-1] == 6294.75
    assert es_hourly.close[-1] == 6294.0
    assert es_hourly.volume[-1] == 1865.0
    # Volume is the last of 13 columns, after Plot and CJK indicator columns.
    assert btc_hourly.volume[0] == 630.51659
    assert btc_hourly.volume[-1] == 333.41032
    assert btc_hourly.close[0] == 41787.5


@requires_data
def test_prices_keep_exact_doubles():
    bars = read_bar_file(TRADINGVIEW_DIR / "FX_EURUSD, 1D.csv").bars

    # Line 3 is 1585861200,1.08548,1.0865,1.0772599999999999,1.08063,...
    assert bars.ts[1] == 1585861200
    assert float_bits(bars.low[1]) == float_bits(float("1.0772599999999999"))
    assert float_bits(bars.low[1]) != float_bits(1.07726)


@requires_data
def test_offset_times_convert_to_utc():
    bars = read_bar_file(TRADINGVIEW_DIR / "BINANCE_BTCUSDT, 60.csv").bars

    # 2024-01-21T23:00:00+09:00 is 14:00 UTC, and 2024-04-10T04:00:00+09:00 is 19:00 UTC.
    assert bars.ts[0] == utc("2024-01-21T14:00")
    assert bars.ts[-1] == utc("2024-04-09T19:00")
    assert np.all(np.diff(bars.ts) == 3600)


@requires_data
def test_bare_dates_read_as_midnight_utc():
    bars = read_bar_file(TRADINGVIEW_DIR / "BINANCE_BTCUSDT, 1D.csv").bars

    assert np.all(bars.ts % 86_400 == 0)
    assert bars.ts[0] == utc("2022-09-24T00:00")
    assert np.all(np.diff(bars.ts) == 86_400)


@requires_data
def test_bare_dates_ignore_tz():
    plain = read_bar_file(TRADINGVIEW_DIR / "BINANCE_BTCUSDT, 1D.csv")
    with_zone = read_bar_file(TRADINGVIEW_DIR / "BINANCE_BTCUSDT, 1D.csv", tz="Asia/Tokyo")

    assert with_zone.bars.bit_equal(plain.bars)


def test_bare_date_rejected_for_intraday(tmp_path):
    path = write_export(tmp_path, "BINANCE_BTCUSDT, 60.csv", "time,close", ["2024-04-09,1"])

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert "line 2, column time" in message
    assert "'2024-04-09'" in message
    assert "daily, weekly or monthly" in message


@requires_data
def test_offsetless_times_read_in_tz(tmp_path):
    original = read_bar_file(TRADINGVIEW_DIR / "BINANCE_BTCUSDT, 60.csv")
    path = copy_export(tmp_path, "BINANCE_BTCUSDT, 60.csv")
    path.write_text(path.read_text(encoding="utf-8").replace("+09:00", ""), encoding="utf-8")

    result = read_bar_file(path, tz="Asia/Tokyo")

    assert result.bars.bit_equal(original.bars)


@requires_data
def test_offsetless_time_needs_tz(tmp_path):
    path = copy_export(tmp_path, "BINANCE_BTCUSDT, 60.csv")
    path.write_text(path.read_text(encoding="utf-8").replace("+09:00", ""), encoding="utf-8")

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert message.startswith(f"{path}, line 2, column time: invalid value '2024-01-21T23:00:00': ")
    assert "--tz" in message


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("1700000000", 1_700_000_000),
        ("1700000000.0", 1_700_000_000),
        ("1700000000.000", 1_700_000_000),
        ("-86400", -86_400),
        ("2024-01-21T23:00:00+09:00", utc("2024-01-21T14:00")),
        ("2024-01-21T23:00:00+0900", utc("2024-01-21T14:00")),
        ("2024-01-21T23:00:00+09", utc("2024-01-21T14:00")),
        ("2024-01-21T23:00:00-05:30", utc("2024-01-22T04:30")),
        ("2024-01-21 23:00:00+09:00", utc("2024-01-21T14:00")),
        ("2024-01-21T23:00+09:00", utc("2024-01-21T14:00")),
        ("2005-03-22T23:00:00Z", utc("2005-03-22T23:00")),
        ("2005-03-22T23:00:00.000Z", utc("2005-03-22T23:00")),
        ("2005-03-22T23:00:00.000000000Z", utc("2005-03-22T23:00")),
    ],
)
def test_time_cell_formats(tmp_path, cell, expected):
    path = write_export(tmp_path, "BINANCE_BTCUSDT, 60.csv", "time,close", [f"{cell},1"])

    bars = read_bar_file(path).bars

    assert bars.ts.tolist() == [expected]


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("1700000000.5", "whole seconds"),
        ("2005-03-22T23:00:00.5Z", "whole seconds"),
        ("1700000000000", "milliseconds"),
        ("2024-02-30T00:00:00Z", "not a valid calendar date"),
        ("2024-01-01T24:00:00Z", "not a valid calendar date"),
        ("2024-01-01T00:00:00+24:00", "UTC offset"),
        ("yesterday", "not a valid time"),
        ("1.7e9", "not a valid time"),
        ("", "not a valid time"),
    ],
    ids=["fraction-unix", "fraction-iso", "milliseconds", "feb-30", "hour-24", "offset-24h", "word", "exponent", "empty"],
)
def test_invalid_time_cells(tmp_path, cell, reason):
    path = write_export(tmp_path, "BINANCE_BTCUSDT, 60.csv", "time,close", ["1700000000,1", f"{cell},2"])

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert message.startswith(f"{path}, line 3, column time: invalid value {cell!r}: ")
    assert reason in message


def test_dst_gap_rejected(tmp_path):
    path = write_export(
        tmp_path,
        "CME_MINI_ES1!, 1.csv",
        "time,close",
        ["2024-03-10T01:59:00,1", "2024-03-10T02:30:00,2"],
    )

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path, tz="America/New_York")

    message = str(caught.value)
    assert message.startswith(f"{path}, line 3, column time: invalid value '2024-03-10T02:30:00': ")
    assert "does not exist in America/New_York" in message


def test_repeated_hour_rejected(tmp_path):
    path = write_export(
        tmp_path,
        "CME_MINI_ES1!, 1.csv",
        "time,close",
        ["2024-11-03T00:59:00,1", "2024-11-03T01:30:00,2"],
    )

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path, tz="America/New_York")

    message = str(caught.value)
    assert message.startswith(f"{path}, line 3, column time: invalid value '2024-11-03T01:30:00': ")
    assert "ambiguous in America/New_York" in message


def test_dst_edges_accepted(tmp_path):
    path = write_export(
        tmp_path,
        "CME_MINI_ES1!, 1.csv",
        "time,close",
        [
            "2024-03-10T01:59:00,1",
            "2024-03-10T03:00:00,2",
            "2024-11-03T00:59:00,3",
            "2024-11-03T02:00:00,4",
        ],
    )

    bars = read_bar_file(path, tz="America/New_York").bars

    assert bars.ts.tolist() == [
        utc("2024-03-10T06:59"),
        utc("2024-03-10T07:00"),
        utc("2024-11-03T04:59"),
        utc("2024-11-03T07:00"),
    ]


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "America", "", "../etc/passwd", "/etc/localtime"])
def test_unknown_zone_rejected(tmp_path, zone):
    path = write_export(tmp_path, "BINANCE_BTCUSDT, 60.csv", "time,close", ["1700000000,1"])

    with pytest.raises(InvalidInput) as caught:
        read_bar_file(path, tz=zone)

    message = str(caught.value)
    assert f"unknown time zone {zone!r}" in message


@requires_data
def test_metatrader_export_with_utc():
    result = read_bar_file(METATRADER_FILE, symbol="FX:EURUSD", timeframe="60", tz="UTC")
    bars = result.bars

    assert result.symbol == "FX:EURUSD"
    assert result.timeframe == "60"
    assert result.rows_read == 3728
    assert len(bars) == 3728
    assert bars.ts[0] == utc("2019-02-15T14:00")
    assert bars.ts[-1] == utc("2019-09-20T20:00")
    assert np.all(np.diff(bars.ts) > 0)
    # First row: 2019.02.15,14:00,1.12525,1.12851,1.12514,1.12686,9915
    assert bars.open[0] == 1.12525
    assert bars.close[0] == 1.12686
    assert bars.volume[0] == 9915.0
    # Bars off the hour, such as 22:05, are kept as they are.
    assert int((bars.ts % 3600 == 300).sum()) == 450


@requires_data
def test_metatrader_export_in_new_york():
    in_utc = read_bar_file(METATRADER_FILE, symbol="FX:EURUSD", timeframe="60", tz="UTC").bars
    in_new_york = read_bar_file(METATRADER_FILE, symbol="FX:EURUSD", timeframe="60", tz="America/New_York").bars

    # New York is UTC-5 before 2019-03-10 and UTC-4 for the rest of the file.
    shift = in_new_york.ts - in_utc.ts
    assert shift[0] == 5 * 3600
    assert shift[-1] == 4 * 3600
    assert set(shift.tolist()) == {4 * 3600, 5 * 3600}


@requires_data
def test_metatrader_export_needs_tz():
    with pytest.raises(InvalidRow) as caught:
        read_bar_file(METATRADER_FILE, symbol="FX:EURUSD", timeframe="60")

    message = str(caught.value)
    assert message.startswith(f"{METATRADER_FILE}, line 2, column Time: invalid value '2019.02.15 14:00': ")
    assert "--tz" in message


@requires_data
def test_metatrader_export_needs_series():
    with pytest.raises(InvalidFile) as caught:
        read_bar_file(METATRADER_FILE, tz="UTC")

    message = str(caught.value)
    assert message.startswith(f"{METATRADER_FILE}: ")
    assert "--symbol and --timeframe" in message


@requires_data
def test_metatrader_export_needs_timeframe():
    with pytest.raises(InvalidFile) as caught:
        read_bar_file(METATRADER_FILE, symbol="FX:EURUSD", tz="UTC")

    message = str(caught.value)
    assert "pass --timeframe" in message
    assert "--symbol" not in message


@pytest.mark.parametrize(
    ("date_cell", "time_cell", "column", "value"),
    [
        ("2019.02.30", "14:00", "Date", "2019.02.30"),
        ("15.02.2019", "14:00", "Date", "15.02.2019"),
        ("2019.02.15", "14h", "Time", "14h"),
        ("2019.02.15", "25:00", "Time", "25:00"),
    ],
    ids=["feb-30", "day-first", "time-word", "hour-25"],
)
def test_metatrader_bad_cells(tmp_path, date_cell, time_cell, column, value):
    path = write_export(
        tmp_path,
        "EURUSD60.csv",
        "Date,Time,Open,High,Low,Close,Volume",
        [f"{date_cell},{time_cell},1,1,1,1,1"],
    )

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path, symbol="FX:EURUSD", timeframe="60", tz="UTC")

    assert str(caught.value).startswith(f"{path}, line 2, column {column}: invalid value {value!r}: ")


@requires_data
@pytest.mark.parametrize(
    "bad_value",
    ["abc", '"1,5"', "inf", "-Infinity", "1_000", "0x10", "1e999"],
    ids=["word", "decimal-comma", "inf", "minus-infinity", "underscore", "hex", "overflow"],
)
def test_bad_value_names_cell(tmp_path, bad_value):
    path = copy_export(tmp_path, "FX_EURUSD, 1D.csv")
    lines = read_lines(path)
    cells = lines[9].split(",")
    cells[2] = bad_value
    lines[9] = ",".join(cells)
    write_lines(path, lines)
    shown_value = bad_value.strip('"')

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert "FX_EURUSD, 1D.csv" in message
    assert message.startswith(f"{path}, line 10, column high: invalid value {shown_value!r}: ")


@requires_data
def test_unquoted_decimal_comma_rejected(tmp_path):
    path = copy_export(tmp_path, "CME_MINI_ES1!, 1D.csv")
    lines = read_lines(path)
    cells = lines[4].split(",")
    cells[4] = "934,5"
    lines[4] = ",".join(cells)
    write_lines(path, lines)

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert message.startswith(f"{path}, line 5, column 7: invalid value ")
    assert "the row has 7 cells but the header has 6" in message


def test_short_row_rejected(tmp_path):
    path = write_export(
        tmp_path,
        "CME_MINI_ES1!, 1D.csv",
        "time,open,high,low,close,Volume",
        ["873756000,933.75,941.25,932.75,934,11387", "873842400,933.75,934.25,914.5"],
    )

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert message.startswith(f"{path}, line 3, column close: invalid value '': ")
    assert "the row has 4 cells but the header has 6" in message


@requires_data
def test_conflicting_duplicates_rejected(tmp_path):
    path = copy_export(tmp_path, "CME_MINI_ES1!, 1D.csv")
    lines = read_lines(path)
    # Line 3 is 873842400,933.75,934.25,914.5,915.25,2523. Repeat it with another close.
    changed = lines[2].replace(",915.25,", ",916.25,")
    assert changed != lines[2]
    lines.append(changed)
    write_lines(path, lines)
    added_line = len(lines)

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert message.startswith(f"{path}, line {added_line}, column close: invalid value '916.25': ")
    assert "line 3 has a different bar" in message
    assert "1997-09-09T22:00:00Z" in message
    assert "915.25" in message


def test_duplicate_null_against_value_rejected(tmp_path):
    path = write_export(
        tmp_path,
        "CRYPTO_SOLUSD, 1D.csv",
        "time,close,Volume",
        ["1690848000,24.0312,NaN", "1690848000,24.0312,5"],
    )

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert message.startswith(f"{path}, line 3, column Volume: invalid value '5.0': ")
    assert "line 2 has a different bar" in message


@requires_data
def test_identical_duplicates_merged(tmp_path):
    original = read_bar_file(TRADINGVIEW_DIR / "CRYPTO_SOLUSD, 1D.csv")
    path = copy_export(tmp_path, "CRYPTO_SOLUSD, 1D.csv")
    lines = read_lines(path)
    # Repeat two rows, one of them twice, with NULL volume in all of them.
    lines.extend([lines[1], lines[50], lines[50]])
    write_lines(path, lines)

    result = read_bar_file(path)

    assert result.rows_read == 303
    assert result.duplicates_merged == 3
    assert result.bars.bit_equal(original.bars)


@requires_data
def test_shuffled_rows_sorted(tmp_path):
    original = read_bar_file(TRADINGVIEW_DIR / "BINANCE_BTCUSDT, 60.csv")
    path = copy_export(tmp_path, "BINANCE_BTCUSDT, 60.csv")
    header, *rows = read_lines(path)
    random.Random(20240121).shuffle(rows)
    write_lines(path, [header, *rows])

    result = read_bar_file(path)

    assert result.rows_read == 1902
    assert result.duplicates_merged == 0
    assert result.bars.bit_equal(original.bars)


@requires_data
@pytest.mark.parametrize("line_ending", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("bom", [False, True], ids=["no-bom", "bom"])
@pytest.mark.parametrize("trailing_newline", [False, True], ids=["no-final-newline", "final-newline"])
def test_line_endings_and_bom(tmp_path, line_ending, bom, trailing_newline):
    original = read_bar_file(TRADINGVIEW_DIR / "TVC_SILVER, 1W.csv")
    lines = read_lines(TRADINGVIEW_DIR / "TVC_SILVER, 1W.csv")
    text = line_ending.join(lines) + (line_ending if trailing_newline else "")
    path = tmp_path / "TVC_SILVER, 1W.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))

    result = read_bar_file(path)

    assert result.rows_read == 300
    assert result.bars.bit_equal(original.bars)


def test_first_duplicate_column_wins(tmp_path):
    path = write_export(
        tmp_path,
        "CME_MINI_ES1!, 1D.csv",
        "time,open,high,low,close,Volume,close,Volume,MA,MA",
        ["873756000,933.75,941.25,932.75,934,11387,1,2,3,4"],
    )

    bars = read_bar_file(path).bars

    assert bars.close.tolist() == [934.0]
    assert bars.volume.tolist() == [11387.0]


def test_header_matched_case_insensitively(tmp_path):
    path = write_export(
        tmp_path,
        "CME_MINI_ES1!, 1D.csv",
        " TIME ,Open,HIGH,low,Close,VOLUME,价格",
        ["873756000,933.75,941.25,932.75,934,11387,1"],
    )

    bars = read_bar_file(path).bars

    assert bars.open.tolist() == [933.75]
    assert bars.high.tolist() == [941.25]
    assert bars.low.tolist() == [932.75]
    assert bars.close.tolist() == [934.0]
    assert bars.volume.tolist() == [11387.0]


def test_null_cells(tmp_path):
    path = write_export(
        tmp_path,
        "CME_MINI_ES1!, 1D.csv",
        "time,open,high,low,close,Volume",
        [
            "873756000,933.75,941.25,932.75,934,",
            "873842400,NaN,nan,,915.25,NaN",
            "873928800,1,2,0.5,1.5,7",
        ],
    )

    bars = read_bar_file(path).bars

    assert np.isnan(bars.volume[:2]).all()
    assert np.isnan(bars.open[1])
    assert np.isnan(bars.high[1])
    assert np.isnan(bars.low[1])
    assert bars.close.tolist() == [934.0, 915.25, 1.5]
    assert bars.volume[2] == 7.0


def test_volume_column_optional(tmp_path):
    path = write_export(tmp_path, "FX_EURUSD, 1D.csv", "time,open,high,low,close", ["1585774800,1,2,0.5,1.5"])

    bars = read_bar_file(path).bars

    assert np.isnan(bars.volume).all()
    assert bars.close.tolist() == [1.5]


@pytest.mark.parametrize("missing", ["time", "close"])
def test_missing_required_column(tmp_path, missing):
    columns = ["time", "open", "high", "low", "close", "Volume"]
    header = ",".join(column for column in columns if column != missing)
    path = write_export(tmp_path, "CME_MINI_ES1!, 1D.csv", header, ["1,2,3,4,5"])

    with pytest.raises(InvalidFile) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: missing column {missing!r} in the header {header!r}")


def test_header_without_rows(tmp_path):
    path = tmp_path / "CME_MINI_ES1!, 1D.csv"
    path.write_text("time,open,high,low,close,Volume\n\n", encoding="utf-8")

    with pytest.raises(InvalidFile) as caught:
        read_bar_file(path)

    assert str(caught.value) == f"{path}: no bars: the file has a header but no data rows"


def test_empty_file(tmp_path):
    path = tmp_path / "CME_MINI_ES1!, 1D.csv"
    path.write_bytes(b"")

    with pytest.raises(InvalidFile) as caught:
        read_bar_file(path)

    assert "the file is empty" in str(caught.value)


def test_file_not_utf8(tmp_path):
    path = tmp_path / "CME_MINI_ES1!, 1D.csv"
    path.write_bytes("time,close\n873756000,934\n873842400,9\xe9\n".encode("latin-1"))

    with pytest.raises(InvalidFile) as caught:
        read_bar_file(path)

    assert "not UTF-8" in str(caught.value)


def test_missing_file(tmp_path):
    path = tmp_path / "CME_MINI_ES1!, 1D.csv"

    with pytest.raises(NotFound) as caught:
        read_bar_file(path)

    assert str(caught.value) == f"file not found: {path}"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("BINANCE_BTCUSDT, 15.csv", ("BINANCE:BTCUSDT", "15")),
        ("BINANCE_BTCUSDT, 15 (1).csv", ("BINANCE:BTCUSDT", "15")),
        ("BINANCE_BTCUSDT, 15(12).CSV", ("BINANCE:BTCUSDT", "15")),
        ("CME_MINI_ES1!, 1D.csv", ("CME_MINI:ES1!", "1D")),
        ("CME_MINI_ES1!, 1min.csv", ("CME_MINI:ES1!", "1")),
        ("CBOT_CORN, 1D.csv", ("CBOT:CORN", "1D")),
        ("TVC_SILVER, 1W.csv", ("TVC:SILVER", "1W")),
        ("OANDA_XAUUSD, 4h.csv", ("OANDA:XAUUSD", "240")),
        ("/data/exports/FX_EURUSD, D.csv", ("FX:EURUSD", "1D")),
    ],
)
def test_parse_series_name(filename, expected):
    assert parse_series_name(filename) == expected


@pytest.mark.parametrize(
    "filename",
    [
        "EURUSD60.csv",
        "BTCUSDT, 15.csv",
        "_BTCUSDT, 15.csv",
        "BINANCE_, 15.csv",
        "BINANCE_BTCUSDT, 15.txt",
        "BINANCE_BTCUSDT, 7X.csv",
        "BINANCE_BTCUSDT, 0.csv",
        "BINANCE_BTC USDT, 15.csv",
        "BINANCE_BTCUSDT 15.csv",
    ],
)
def test_parse_series_name_rejects(filename):
    with pytest.raises(InvalidFile) as caught:
        parse_series_name(filename)

    message = str(caught.value)
    assert message.startswith(f"{filename}: ")
    assert "--symbol and --timeframe" in message


@requires_data
def test_arguments_override_name():
    result = read_bar_file(TRADINGVIEW_DIR / "TVC_SILVER, 1W.csv", symbol="OANDA:XAGUSD", timeframe="W")

    assert result.symbol == "OANDA:XAGUSD"
    assert result.timeframe == "1W"
    assert result.rows_read == 300


@requires_data
def test_invalid_overrides_rejected():
    with pytest.raises(InvalidSymbol):
        read_bar_file(TRADINGVIEW_DIR / "TVC_SILVER, 1W.csv", symbol="SILVER")
    with pytest.raises(InvalidTimeframe):
        read_bar_file(TRADINGVIEW_DIR / "TVC_SILVER, 1W.csv", timeframe="weekly")


@requires_data
def test_renamed_export_needs_series(tmp_path):
    path = tmp_path / "silver.csv"
    shutil.copyfile(TRADINGVIEW_DIR / "TVC_SILVER, 1W.csv", path)

    with pytest.raises(InvalidFile) as caught:
        read_bar_file(path)

    assert "--symbol and --timeframe" in str(caught.value)

    result = read_bar_file(path, symbol="TVC:SILVER", timeframe="1W")
    assert result.rows_read == 300


@requires_data
def test_result_columns_are_bar_columns():
    bars = read_bar_file(TRADINGVIEW_DIR / "COMEX_GOLD, 1D.csv").bars

    assert isinstance(bars, BarColumns)
    for column in bars.columns()[1:]:
        assert column.dtype == np.float64
        assert column.flags.c_contiguous
        assert len(column) == 3968


def test_missing_file_reported_before_name(tmp_path):
    path = tmp_path / "prices.csv"

    with pytest.raises(NotFound):
        read_bar_file(path)


def test_line_numbers_after_multiline_cell(tmp_path):
    path = tmp_path / "CME_MINI_ES1!, 1D.csv"
    path.write_text('time,close,Note\n873756000,934,"two\nlines"\n873842400,abc,x\n', encoding="utf-8")

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path)

    assert str(caught.value).startswith(f"{path}, line 4, column close: invalid value 'abc': ")


@pytest.mark.parametrize("close_cell", ["", "NaN", "nan", " "], ids=["empty", "nan", "lower-nan", "space"])
def test_missing_close_rejected(tmp_path, close_cell):
    path = write_export(
        tmp_path,
        "CME_MINI_ES1!, 1D.csv",
        "time,open,high,low,close,Volume",
        ["873756000,933.75,941.25,932.75,934,11387", f"873842400,933.75,934.25,914.5,{close_cell},2523"],
    )

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert message.startswith(f"{path}, line 3, column close: invalid value {close_cell!r}: ")
    assert "the close is missing" in message


def test_missing_close_rejected_close_only(tmp_path):
    path = write_export(tmp_path, "CRYPTO_SOLUSD, 1D.csv", "time,close", ["1690848000,24.0312", "1690934400,"])

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path)

    assert str(caught.value).startswith(f"{path}, line 3, column close: invalid value '': ")


def test_missing_close_rejected_metatrader(tmp_path):
    path = write_export(
        tmp_path,
        "EURUSD60.csv",
        "Date,Time,Open,High,Low,Close,Volume",
        ["2019.02.15,14:00,1.12525,1.12851,1.12514,NaN,9915"],
    )

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path, symbol="FX:EURUSD", timeframe="60", tz="UTC")

    assert str(caught.value).startswith(f"{path}, line 2, column Close: invalid value 'NaN': ")


def test_high_below_low_rejected(tmp_path):
    path = write_export(
        tmp_path,
        "CME_MINI_ES1!, 1D.csv",
        "time,open,high,low,close,Volume",
        ["873756000,933.75,941.25,932.75,934,11387", "873842400,933.75,914.5,934.25,915.25,2523"],
    )

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert message.startswith(f"{path}, line 3, column high: invalid value '914.5': ")
    assert "high 914.5 is below low 934.25" in message


@pytest.mark.parametrize(
    "row",
    [
        "873756000,1,2,1.5,3,7",
        "873756000,1,2,1.5,1,7",
        "873756000,5,2,1.5,1.8,7",
        "873756000,1.5,1.5,1.5,1.5,0",
        "873756000,,,1.5,1.8,",
        "873756000,,1,,1.8,",
    ],
    ids=["close-above-high", "close-below-low", "open-above-high", "high-equals-low", "null-high", "null-low"],
)
def test_other_price_relations_kept(tmp_path, row):
    path = write_export(tmp_path, "CME_MINI_ES1!, 1D.csv", "time,open,high,low,close,Volume", [row])

    bars = read_bar_file(path).bars

    expected = [np.nan if cell == "" else float(cell) for cell in row.split(",")[1:]]
    actual = [bars.open[0], bars.high[0], bars.low[0], bars.close[0], bars.volume[0]]
    np.testing.assert_array_equal(actual, expected)


@requires_data
def test_real_files_pass_price_checks():
    for path in sorted(TRADINGVIEW_DIR.glob("*.csv")):
        assert len(read_bar_file(path).bars) == REAL_EXPORTS[path.name][2]
    assert len(read_bar_file(METATRADER_FILE, symbol="FX:EURUSD", timeframe="60", tz="UTC").bars) == 3728


@pytest.mark.parametrize("delimiter", [";", "\t"], ids=["semicolon", "tab"])
def test_wrong_delimiter_rejected(tmp_path, delimiter):
    header = delimiter.join(["time", "open", "high", "low", "close", "Volume"])
    row = delimiter.join(["873756000", "933.75", "941.25", "932.75", "934", "11387"])
    path = write_export(tmp_path, "CME_MINI_ES1!, 1D.csv", header, [row])

    with pytest.raises(InvalidFile) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: the delimiter of the header {header!r} is {delimiter!r}, not a comma")
    assert "missing column" not in message


def test_semicolon_in_header_cell_allowed(tmp_path):
    path = write_export(tmp_path, "CME_MINI_ES1!, 1D.csv", "time,close,a;b", ["873756000,934,x"])

    assert read_bar_file(path).bars.close.tolist() == [934.0]


@pytest.mark.parametrize("line", [1, 3], ids=["header", "data-row"])
def test_field_over_csv_limit_rejected(tmp_path, line):
    limit = csv.field_size_limit()
    lines = ["time,close", "873756000,934", "873842400,915"]
    lines[line - 1] += ",x" + "9" * limit
    path = write_lines(tmp_path / "CME_MINI_ES1!, 1D.csv", lines)

    with pytest.raises(InvalidFile) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: line {line}: a cell is longer than {limit} characters")
    assert "not a TradingView or MetaTrader bar export" in message
    assert "malformed" not in message


def test_undecodable_folder_name_imports(tmp_path):
    folder = tmp_path / os.fsdecode(b"exports\xfe")
    folder.mkdir()
    path = write_export(folder, "BINANCE_BTCUSDT, 60.csv", "time,close", ["1700000000,1"])

    result = read_bar_file(path)

    assert result.symbol == "BINANCE:BTCUSDT"
    assert result.path == str(tmp_path / "exports\ufffd" / "BINANCE_BTCUSDT, 60.csv")
    # Events are msgspec JSON, which rejects the surrogate escapes of undecodable bytes.
    assert msgspec.json.decode(msgspec.json.encode({"path": result.path}))["path"] == result.path


def test_undecodable_file_name_needs_symbol(tmp_path):
    path = write_export(tmp_path, os.fsdecode(b"BINANCE_BTC\xfe, 60.csv"), "time,close", ["1700000000,1"])
    shown_path = str(tmp_path / "BINANCE_BTC\ufffd, 60.csv")

    with pytest.raises(InvalidFile) as caught:
        read_bar_file(path)

    message = str(caught.value)
    assert message.startswith(f"{shown_path}: ")
    assert "pass --symbol" in message
    message.encode("utf-8")

    result = read_bar_file(path, symbol="BINANCE:BTC")
    assert result.path == shown_path
    assert result.timeframe == "60"


def test_undecodable_name_in_errors(tmp_path):
    path = write_export(tmp_path, os.fsdecode(b"BINANCE_BTC\xfe, 60.csv"), "time,close", ["1700000000,abc"])
    shown_path = str(tmp_path / "BINANCE_BTC\ufffd, 60.csv")

    with pytest.raises(InvalidRow) as caught:
        read_bar_file(path, symbol="BINANCE:BTC")
    assert str(caught.value).startswith(f"{shown_path}, line 2, column close: ")

    with pytest.raises(NotFound) as missing:
        read_bar_file(tmp_path / os.fsdecode(b"gone\xfe.csv"))
    assert str(missing.value) == f"file not found: {tmp_path / 'gone'}\ufffd.csv"

    with pytest.raises(InvalidFile) as unparsed:
        parse_series_name(os.fsdecode(b"\xfe.csv"))
    assert str(unparsed.value).startswith("\ufffd.csv: ")


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("OANDA_XAUUSD, 4H.csv", ("OANDA:XAUUSD", "240")),
        ("BINANCE_BTCUSDT, 15m.csv", ("BINANCE:BTCUSDT", "15")),
        ("BINANCE_BTCUSDT, 1MIN.csv", ("BINANCE:BTCUSDT", "1")),
        ("TVC_SILVER, 1M.csv", ("TVC:SILVER", "1M")),
        ("NYSE_BRK.B, 1D.csv", ("NYSE:BRK.B", "1D")),
        ("NASDAQ_AT&T, 1D.csv", ("NASDAQ:AT&T", "1D")),
    ],
)
def test_parse_series_name_new_forms(filename, expected):
    assert parse_series_name(filename) == expected


@pytest.mark.parametrize(
    "filename",
    ["BINANCE_BTC\u00a0USDT, 15.csv", "BINANCE_BTC\x01USDT, 15.csv", "BINANCE_BTCUSDT, 100000000000000000000000.csv"],
    ids=["no-break-space", "control", "huge-timeframe"],
)
def test_parse_series_name_rejects_new_forms(filename):
    with pytest.raises(InvalidFile):
        parse_series_name(filename)
