"""Tests of the binance source against real data.binance.vision kline files.

Expected values come from reading the real CSV files here with the csv
module. Variants (header, microseconds, zip, monthly, bad cells) are built in
tmp_path from the real rows.
"""

import csv
import zipfile
from pathlib import Path

import anyio
import numpy as np
import pytest

from tvcat.catalog.bars import BarColumns
from tvcat.catalog.series import Series
from tvcat.engine.sources import binance
from tvcat.engine.sources.base import FetchOutcome, FetchRequest, InvalidSourceData, SymbolNotFound
from tvcat.engine.sources.binance import (
    BinanceSource,
    SourceArgumentMissing,
    SourceDirectoryNotFound,
    create,
    interval_to_timeframe,
)
from tvcat.engine.sources.files import hash_file

BINANCE_DATA = (Path(__file__).resolve().parents[2] / "../shared/data/binance").resolve()
DAY_27 = "ADABTC-1m-2021-11-27.csv"
DAY_28 = "ADABTC-1m-2021-11-28.csv"
SERIES = Series("BINANCE:ADABTC", "1")

# 2021-11-27T00:00Z and 2021-11-28T00:00Z in Unix seconds.
START_27 = 1_637_971_200
START_28 = 1_638_057_600


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def real_dir() -> Path:
    if not (BINANCE_DATA / DAY_27).is_file() or not (BINANCE_DATA / DAY_28).is_file():
        pytest.skip(f"real Binance kline files not found in {BINANCE_DATA}")
    return BINANCE_DATA


def real_rows(real_dir: Path, name: str) -> list[list[str]]:
    with open(real_dir / name, newline="") as file:
        return [row for row in csv.reader(file) if row]


def expected_bars(rows: list[list[str]]) -> BarColumns:
    """Return the bars of kline rows, read independently of the source: ms times, float() values."""
    return BarColumns.from_arrays(
        [int(row[0]) // 1000 for row in rows], *([float(row[index]) for row in rows] for index in range(1, 6))
    )


def write_rows(path: Path, rows: list[list[str]], header: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        if header:
            writer.writerow(binance.KLINE_COLUMNS)
        writer.writerows(rows)
    return path


def to_microseconds(rows: list[list[str]]) -> list[list[str]]:
    return [[str(int(row[0]) * 1000), *row[1:6], str(int(row[6]) * 1000), *row[7:]] for row in rows]


def shift_days(rows: list[list[str]], days: int) -> list[list[str]]:
    shift = days * 86_400_000
    return [[str(int(row[0]) + shift), *row[1:6], str(int(row[6]) + shift), *row[7:]] for row in rows]


async def fetch_all(source, request: FetchRequest) -> tuple[BarColumns, list, FetchOutcome]:
    outcome = FetchOutcome()
    pages = [page async for page in source.fetch(request, outcome)]
    parts = [page.bars for page in pages]
    joined = BarColumns(*(np.concatenate(columns) for columns in zip(*(part.columns() for part in parts)))) \
        if parts else BarColumns.empty()
    return joined, pages, outcome


@pytest.mark.parametrize(
    ("interval", "timeframe"),
    [
        ("1s", "1S"), ("1m", "1"), ("3m", "3"), ("15m", "15"), ("1h", "60"), ("4h", "240"), ("12h", "720"),
        ("1d", "1D"), ("3d", "3D"), ("1w", "1W"), ("1M", "1M"), ("1mo", "1M"), ("1Mo", "1M"),
    ],
)
def test_interval_names_map(interval, timeframe):
    assert interval_to_timeframe(interval) == timeframe


@pytest.mark.parametrize("interval", ["0m", "1y", "1min", "1H", "m", "1", "99999999999m"])
def test_interval_names_invalid(interval):
    assert interval_to_timeframe(interval) is None


def test_month_interval_is_never_minute(tmp_path):
    row = ["1635724800000", "0.1", "0.2", "0.05", "0.15", "10", "1638316799999", "1", "5", "4", "0.5", "0"]
    write_rows(tmp_path / "ADABTC-1M-2021-11.csv", [row])
    write_rows(tmp_path / "ADABTC-1mo-2021-12.csv", [shift_days([row], 30)[0]])

    series = anyio.run(BinanceSource(tmp_path).list_series)
    assert series == [Series("BINANCE:ADABTC", "1M")]


@pytest.mark.anyio
async def test_list_series_real_files(real_dir):
    assert await BinanceSource(real_dir).list_series() == [SERIES]


@pytest.mark.anyio
async def test_fetch_real_files(real_dir):
    rows = real_rows(real_dir, DAY_27) + real_rows(real_dir, DAY_28)
    bars, pages, outcome = await fetch_all(BinanceSource(real_dir), FetchRequest(SERIES))

    assert len(rows) == 21
    assert bars.bit_equal(expected_bars(rows))
    assert len(pages) == 1
    assert not pages[0].last_bar_forming
    assert outcome.history_exhausted
    assert outcome.info.timezone == "Etc/UTC"
    assert [path for path, _hash in outcome.files_read] == [str(real_dir / DAY_27), str(real_dir / DAY_28)]
    assert outcome.files_read[0][1] == hash_file(real_dir / DAY_27)


@pytest.mark.anyio
async def test_fetch_real_first_and_last_bar(real_dir):
    bars, _pages, _outcome = await fetch_all(BinanceSource(real_dir), FetchRequest(SERIES))

    # First row of the 11-27 file and last row of the 11-28 file.
    assert bars.ts[0] == START_27
    assert (bars.open[0], bars.high[0], bars.low[0], bars.close[0], bars.volume[0]) == (
        0.00002853, 0.00002854, 0.00002851, 0.00002854, 36304.2
    )
    assert bars.ts[-1] == START_28 + 10 * 60
    assert len(bars) == 21
    # The two files are not adjacent: almost 24 hours lie between them.
    assert bars.ts[10] - bars.ts[9] == 86_400 - 9 * 60


@pytest.mark.anyio
async def test_fetch_since_skips_older_file(real_dir):
    bars, _pages, outcome = await fetch_all(BinanceSource(real_dir), FetchRequest(SERIES, since=START_28))

    assert bars.bit_equal(expected_bars(real_rows(real_dir, DAY_28)))
    assert [path for path, _hash in outcome.files_read] == [str(real_dir / DAY_28)]
    assert not outcome.history_exhausted


@pytest.mark.anyio
async def test_fetch_since_until_mid_file(real_dir):
    request = FetchRequest(SERIES, since=START_27 + 5 * 60, until=START_28 + 3 * 60)
    bars, _pages, _outcome = await fetch_all(BinanceSource(real_dir), request)

    expected = real_rows(real_dir, DAY_27)[5:] + real_rows(real_dir, DAY_28)[:3]
    assert bars.bit_equal(expected_bars(expected))


@pytest.mark.parametrize("name", [DAY_27, DAY_28])
def test_fast_and_row_parsers_agree(real_dir, name):
    kline_file = binance.parse_kline_file_name(real_dir / name)
    with open(kline_file.path, "rb") as raw:
        fast = binance._read_csv_fast(kline_file, name, raw, header_lines=0)
    with open(kline_file.path, encoding="utf-8", newline="") as text:
        slow = binance._KlineRowParser("binance:test", kline_file, name).read(text)

    assert fast is not None
    assert np.array_equal(fast.ts, slow.ts)
    assert np.array_equal(fast.values.view(np.int64), slow.values.view(np.int64))
    assert np.array_equal(fast.positions, slow.positions)
    assert bool(np.all(fast.ts % 60 == 0))


@pytest.mark.anyio
async def test_header_and_microseconds(real_dir, tmp_path):
    rows_27 = real_rows(real_dir, DAY_27)
    rows_28 = real_rows(real_dir, DAY_28)
    write_rows(tmp_path / DAY_27, rows_27, header=True)
    write_rows(tmp_path / DAY_28, to_microseconds(rows_28), header=True)

    bars, _pages, _outcome = await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    assert bars.bit_equal(expected_bars(rows_27 + rows_28))


@pytest.mark.anyio
async def test_microseconds_without_header(real_dir, tmp_path):
    rows = real_rows(real_dir, DAY_28)
    write_rows(tmp_path / DAY_28, to_microseconds(rows))

    bars, _pages, _outcome = await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    assert bars.bit_equal(expected_bars(rows))


@pytest.mark.anyio
async def test_zip_archive(real_dir, tmp_path):
    with zipfile.ZipFile(tmp_path / "ADABTC-1m-2021-11-28.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(real_dir / DAY_28, DAY_28)

    bars, _pages, outcome = await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    assert bars.bit_equal(expected_bars(real_rows(real_dir, DAY_28)))
    assert outcome.files_read[0][0] == str(tmp_path / "ADABTC-1m-2021-11-28.zip")


@pytest.mark.anyio
async def test_zip_bad_price_names_member(real_dir, tmp_path):
    rows = real_rows(real_dir, DAY_28)
    rows[2][3] = ""
    csv_path = write_rows(tmp_path / DAY_28, rows)
    archive_path = tmp_path / "vision" / "ADABTC-1m-2021-11-28.zip"
    archive_path.parent.mkdir()
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(csv_path, DAY_28)

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(BinanceSource(archive_path.parent), FetchRequest(SERIES))
    assert f"{archive_path}/{DAY_28}, line 3, column low: invalid value ''" in caught.value.fields["reason"]


@pytest.mark.anyio
async def test_zip_beside_its_csv(real_dir, tmp_path):
    write_rows(tmp_path / DAY_28, real_rows(real_dir, DAY_28))
    with zipfile.ZipFile(tmp_path / "ADABTC-1m-2021-11-28.zip", "w") as archive:
        archive.write(real_dir / DAY_28, DAY_28)

    bars, _pages, outcome = await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    assert bars.bit_equal(expected_bars(real_rows(real_dir, DAY_28)))
    assert len(outcome.files_read) == 2


@pytest.mark.anyio
async def test_zip_with_two_csv_files(real_dir, tmp_path):
    with zipfile.ZipFile(tmp_path / "ADABTC-1m-2021-11-28.zip", "w") as archive:
        archive.write(real_dir / DAY_28, DAY_28)
        archive.write(real_dir / DAY_28, "copy.csv")

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    assert "ADABTC-1m-2021-11-28.zip" in caught.value.fields["reason"]
    assert "2 CSV files" in caught.value.fields["reason"]


@pytest.mark.anyio
async def test_zip_corrupt(tmp_path):
    (tmp_path / "ADABTC-1m-2021-11-28.zip").write_bytes(b"PK\x03\x04 not really a zip archive")

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    assert "not a valid zip archive" in caught.value.fields["reason"]


@pytest.mark.anyio
async def test_monthly_overlaps_daily_files(real_dir, tmp_path):
    rows = real_rows(real_dir, DAY_27) + real_rows(real_dir, DAY_28)
    write_rows(tmp_path / "monthly" / "ADABTC-1m-2021-11.csv", rows)
    write_rows(tmp_path / "daily" / DAY_27, real_rows(real_dir, DAY_27))
    write_rows(tmp_path / "daily" / DAY_28, real_rows(real_dir, DAY_28))

    bars, _pages, outcome = await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    assert bars.bit_equal(expected_bars(rows))
    assert len(outcome.files_read) == 3


@pytest.mark.anyio
async def test_conflicting_copies_name_both_files(real_dir, tmp_path):
    rows = real_rows(real_dir, DAY_27) + real_rows(real_dir, DAY_28)
    changed = [list(row) for row in rows]
    changed[12][4] = "0.00002999"
    write_rows(tmp_path / "ADABTC-1m-2021-11.csv", changed)
    write_rows(tmp_path / DAY_28, real_rows(real_dir, DAY_28))

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    error = caught.value
    assert error.fields["time"] == "2021-11-28T00:02:00Z"
    assert f"{tmp_path / 'ADABTC-1m-2021-11.csv'}, line 13" in error.fields["reason"]
    assert f"{tmp_path / DAY_28}, line 3" in error.fields["reason"]
    assert "2.999e-05" in error.fields["reason"]


@pytest.mark.anyio
async def test_conflict_inside_one_file(real_dir, tmp_path):
    rows = real_rows(real_dir, DAY_28)
    duplicate = list(rows[4])
    duplicate[5] = "1.0"
    write_rows(tmp_path / DAY_28, [*rows[:5], duplicate, *rows[5:]])

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    assert "line 5" in caught.value.fields["reason"]
    assert "line 6" in caught.value.fields["reason"]


@pytest.mark.anyio
async def test_identical_duplicate_row_merged(real_dir, tmp_path):
    rows = real_rows(real_dir, DAY_28)
    write_rows(tmp_path / DAY_28, [*rows[:5], rows[4], *rows[5:]])

    bars, _pages, _outcome = await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    assert bars.bit_equal(expected_bars(rows))


@pytest.mark.anyio
async def test_bad_price_names_cell(real_dir, tmp_path):
    rows = real_rows(real_dir, DAY_28)
    rows[2][4] = "abc"
    write_rows(tmp_path / DAY_28, rows)

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    error = caught.value
    assert error.fields["source"] == f"binance:{tmp_path}"
    assert error.fields["symbol"] == "BINANCE:ADABTC"
    assert error.fields["time"] == "2021-11-28T00:02:00Z"
    assert f"{tmp_path / DAY_28}, line 3, column close: invalid value 'abc'" in error.fields["reason"]


@pytest.mark.anyio
async def test_bad_price_after_blank_line(real_dir, tmp_path):
    rows = real_rows(real_dir, DAY_28)
    rows[2][2] = "1e999"
    path = write_rows(tmp_path / DAY_28, rows, header=True)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*lines[:2], "\n", *lines[2:]]))

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    # Header on line 1, two rows, a blank line 4, then the third row on line 5.
    assert "line 5, column high: invalid value '1e999'" in caught.value.fields["reason"]


@pytest.mark.anyio
async def test_blank_lines_and_spaces_accepted(real_dir, tmp_path):
    rows = real_rows(real_dir, DAY_28)
    text = "\n".join(", ".join(row) + ("\n" if index == 3 else "") for index, row in enumerate(rows)) + "\n"
    (tmp_path / DAY_28).write_text(text)

    bars, _pages, _outcome = await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    assert bars.bit_equal(expected_bars(rows))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("16379x", "expected the bar open time"),
        ("-1638057600000", "expected the bar open time"),
        ("1638057600500", "not a whole second"),
        ("1638057600000000", "the other unit"),
        ("1638144000000", "outside the period from 2021-11-28T00:00:00Z to 2021-11-29T00:00:00Z"),
    ],
    ids=["text", "negative", "fraction", "mixed-units", "outside-period"],
)
async def test_bad_open_time(real_dir, tmp_path, cell, expected):
    rows = real_rows(real_dir, DAY_28)
    rows[1][0] = cell
    write_rows(tmp_path / DAY_28, rows)

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    reason = caught.value.fields["reason"]
    assert f"line 2, column open_time: invalid value {cell!r}" in reason
    assert expected in reason


@pytest.mark.anyio
async def test_row_with_missing_cells(real_dir, tmp_path):
    rows = real_rows(real_dir, DAY_28)
    rows[6] = rows[6][:5]
    write_rows(tmp_path / DAY_28, rows)

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    reason = caught.value.fields["reason"]
    assert "line 7, column volume" in reason
    assert "5 cells" in reason


@pytest.mark.anyio
async def test_file_named_for_other_day(real_dir, tmp_path):
    write_rows(tmp_path / "ADABTC-1m-2021-11-29.csv", real_rows(real_dir, DAY_28))

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    assert "line 1, column open_time" in caught.value.fields["reason"]
    assert "outside the period" in caught.value.fields["reason"]


@pytest.mark.anyio
async def test_files_read_lazily(real_dir, tmp_path, monkeypatch):
    rows_28 = real_rows(real_dir, DAY_28)
    write_rows(tmp_path / DAY_27, real_rows(real_dir, DAY_27))
    write_rows(tmp_path / DAY_28, rows_28)
    write_rows(tmp_path / "ADABTC-1m-2021-11-29.csv", shift_days(rows_28, 1))
    read_paths = []
    original = binance.read_kline_file

    def spy(spec, kline_file):
        read_paths.append(kline_file.path.name)
        return original(spec, kline_file)

    monkeypatch.setattr(binance, "read_kline_file", spy)
    source = BinanceSource(tmp_path, page_bars=5)
    outcome = FetchOutcome()
    pages = source.fetch(FetchRequest(SERIES), outcome)

    first = await pages.__anext__()
    assert len(first.bars) == 5
    assert read_paths == [DAY_27]
    rest = [page async for page in pages]
    assert read_paths == [DAY_27, DAY_28, "ADABTC-1m-2021-11-29.csv"]
    assert all(len(page.bars) <= 5 for page in rest)
    assert len(first.bars) + sum(len(page.bars) for page in rest) == 32


@pytest.mark.anyio
async def test_pages_split_and_sorted(real_dir):
    bars, pages, _outcome = await fetch_all(BinanceSource(real_dir, page_bars=4), FetchRequest(SERIES))

    assert [len(page.bars) for page in pages] == [4, 4, 4, 4, 4, 1]
    assert bool(np.all(np.diff(bars.ts) > 0))


@pytest.mark.anyio
async def test_other_series_not_read(real_dir, tmp_path):
    write_rows(tmp_path / DAY_28, real_rows(real_dir, DAY_28))
    (tmp_path / "BTCUSDT-1m-2021-11-28.csv").write_text("not,a,kline,file\n")
    (tmp_path / "ADABTC-5m-2021-11-28.csv").write_text("garbage\n")
    (tmp_path / "README.txt").write_text("downloaded from data.binance.vision\n")
    (tmp_path / "ADABTC-1m-2021-11-28.zip.CHECKSUM").write_text("0000  ADABTC-1m-2021-11-28.zip\n")

    source = BinanceSource(tmp_path)
    assert await source.list_series() == [
        Series("BINANCE:ADABTC", "1"), Series("BINANCE:ADABTC", "5"), Series("BINANCE:BTCUSDT", "1")
    ]
    bars, _pages, _outcome = await fetch_all(source, FetchRequest(SERIES))
    assert len(bars) == 11


@pytest.mark.anyio
async def test_skip_file_hashes(real_dir):
    request = FetchRequest(SERIES, skip_file_hashes=frozenset({hash_file(real_dir / DAY_27)}))
    bars, _pages, outcome = await fetch_all(BinanceSource(real_dir), request)

    assert bars.bit_equal(expected_bars(real_rows(real_dir, DAY_28)))
    assert [path for path, _hash in outcome.files_read] == [str(real_dir / DAY_28)]


@pytest.mark.anyio
async def test_empty_and_header_only_files(real_dir, tmp_path):
    (tmp_path / DAY_27).write_text("")
    write_rows(tmp_path / "ADABTC-1m-2021-11-29.csv", [], header=True)
    write_rows(tmp_path / DAY_28, real_rows(real_dir, DAY_28))

    bars, _pages, _outcome = await fetch_all(BinanceSource(tmp_path), FetchRequest(SERIES))
    assert bars.bit_equal(expected_bars(real_rows(real_dir, DAY_28)))


@pytest.mark.anyio
async def test_missing_directory(tmp_path):
    source = create(str(tmp_path / "absent"), None)

    with pytest.raises(SourceDirectoryNotFound) as listed:
        await source.list_series()
    assert str(tmp_path / "absent") in str(listed.value)
    with pytest.raises(SymbolNotFound) as fetched:
        await fetch_all(source, FetchRequest(SERIES))
    assert str(tmp_path / "absent") in str(fetched.value)


@pytest.mark.anyio
async def test_unknown_series(real_dir):
    with pytest.raises(SymbolNotFound) as caught:
        await fetch_all(BinanceSource(real_dir), FetchRequest(Series("BINANCE:BTCUSDT", "1")))
    assert caught.value.fields["symbol"] == "BINANCE:BTCUSDT"
    assert str(real_dir) in caught.value.fields["reason"]


@pytest.mark.parametrize("argument", [None, "", "  "])
def test_create_without_directory(argument):
    with pytest.raises(SourceArgumentMissing) as caught:
        create(argument, None)
    assert "binance:DIR" in str(caught.value)
