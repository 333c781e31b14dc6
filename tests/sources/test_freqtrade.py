"""Tests of the freqtrade source against real freqtrade candle files.

Expected values come from reading the real files here with pyarrow, json and
gzip. Variants (other formats, candle types, bad values) are built in
tmp_path from the real rows.
"""

import gzip
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as pa_feather
import pyarrow.parquet as pa_parquet
import pytest

from tvcat.catalog.bars import BarColumns
from tvcat.catalog.series import Series
from tvcat.engine.sources.base import FetchOutcome, FetchRequest, InvalidSourceData, SymbolNotFound
from tvcat.engine.sources.binance import SourceArgumentMissing, SourceDirectoryNotFound
from tvcat.engine.sources.files import hash_file
from tvcat.engine.sources.freqtrade import ExchangeNameMissing, FreqtradeSource, create, exchange_name

FREQTRADE_DATA = (Path(__file__).resolve().parents[2] / "../shared/data/freqtrade").resolve()
BTC_5M = "UNITTEST_BTC-5m.feather"
XRP_1M = "XRP_ETH-1m.feather"
XRP_5M = "XRP_ETH-5m.json"
FUTURES_1H = "futures/XRP_USDT_USDT-1h-futures.json.gz"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def real_dir() -> Path:
    for name in (BTC_5M, XRP_1M, XRP_5M, FUTURES_1H):
        if not (FREQTRADE_DATA / name).is_file():
            pytest.skip(f"real freqtrade file {name} not found in {FREQTRADE_DATA}")
    return FREQTRADE_DATA


@pytest.fixture
def binance_dir(real_dir, tmp_path) -> Path:
    """A copy of the real files in a directory named like freqtrade's exchange directories."""
    directory = tmp_path / "binance"
    shutil.copytree(real_dir, directory)
    return directory


def feather_bars(path: Path) -> BarColumns:
    """Return the bars of a feather file, read independently of the source through Python datetimes."""
    rows = pa_feather.read_table(path).to_pylist()
    return BarColumns.from_arrays(
        [int(row["date"].timestamp()) for row in rows],
        *([row[name] for row in rows] for name in ("open", "high", "low", "close", "volume")),
    )


def json_rows(path: Path) -> list[list]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as file:
        return json.load(file)


def json_bars(rows: list[list]) -> BarColumns:
    return BarColumns.from_arrays(
        [row[0] // 1000 for row in rows], *([row[index] for row in rows] for index in range(1, 6))
    )


def write_json(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return path


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp())


async def fetch_all(source, request: FetchRequest) -> tuple[BarColumns, list, FetchOutcome]:
    outcome = FetchOutcome()
    pages = [page async for page in source.fetch(request, outcome)]
    parts = [page.bars for page in pages]
    joined = BarColumns(*(np.concatenate(columns) for columns in zip(*(part.columns() for part in parts)))) \
        if parts else BarColumns.empty()
    return joined, pages, outcome


@pytest.mark.anyio
async def test_list_series_real_files(real_dir):
    assert await FreqtradeSource(real_dir).list_series() == [
        Series("FREQTRADE:UNITTESTBTC", "5"),
        Series("FREQTRADE:XRPETH", "1"),
        Series("FREQTRADE:XRPETH", "5"),
        Series("FREQTRADE:XRPUSDT.P", "60"),
    ]


@pytest.mark.anyio
async def test_feather_gap_free_series(real_dir):
    source = FreqtradeSource(real_dir)
    bars, pages, outcome = await fetch_all(source, FetchRequest(Series("FREQTRADE:UNITTESTBTC", "5")))

    assert bars.bit_equal(feather_bars(real_dir / BTC_5M))
    assert len(bars) == 5760
    assert bars.ts[0] == utc("2018-01-10T04:55:00")
    assert bars.ts[-1] == utc("2018-01-30T04:50:00")
    assert (bars.open[0], bars.close[0], bars.volume[0]) == (0.0984, 0.0994766, 1820.54447418)
    assert bool(np.all(np.diff(bars.ts) == 300))
    assert [len(page.bars) for page in pages] == [5760]
    assert not pages[0].last_bar_forming
    assert outcome.history_exhausted
    assert outcome.files_read == [(str(real_dir / BTC_5M), hash_file(real_dir / BTC_5M))]


@pytest.mark.anyio
async def test_feather_with_gaps(real_dir):
    source = FreqtradeSource(real_dir)
    bars, _pages, _outcome = await fetch_all(source, FetchRequest(Series("FREQTRADE:XRPETH", "1")))

    assert bars.bit_equal(feather_bars(real_dir / XRP_1M))
    assert len(bars) == 2469
    assert bars.ts[0] == utc("2019-10-11T00:00:00")
    assert bars.ts[-1] == utc("2019-10-13T11:19:00")
    steps = np.diff(bars.ts)
    assert int(np.sum(steps == 60)) == 1792
    assert int(np.sum(steps == 120)) == 440


@pytest.mark.anyio
async def test_json_keeps_gap_filled_bars(real_dir):
    source = FreqtradeSource(real_dir)
    bars, _pages, _outcome = await fetch_all(source, FetchRequest(Series("FREQTRADE:XRPETH", "5")))

    assert bars.bit_equal(json_bars(json_rows(real_dir / XRP_5M)))
    assert len(bars) == 712
    assert bars.ts[-1] == utc("2019-10-13T11:15:00")
    assert int(np.sum(bars.volume == 0)) == 6
    filled = int(np.searchsorted(bars.ts, utc("2019-10-11T23:55:00")))
    assert bars.volume[filled] == 0
    assert bars.open[filled] == bars.high[filled] == bars.low[filled] == bars.close[filled] == bars.close[filled - 1]


@pytest.mark.anyio
async def test_futures_json_gz(real_dir):
    source = FreqtradeSource(real_dir)
    bars, _pages, _outcome = await fetch_all(source, FetchRequest(Series("FREQTRADE:XRPUSDT.P", "60")))

    assert bars.bit_equal(json_bars(json_rows(real_dir / FUTURES_1H)))
    assert len(bars) == 100
    assert bars.ts[0] == utc("2021-11-17T01:00:00")
    assert bars.ts[-1] == utc("2021-11-21T04:00:00")
    assert float("2697616.0709080002") in bars.volume.tolist()


@pytest.mark.anyio
async def test_exchange_from_directory_name(binance_dir):
    assert Series("BINANCE:XRPETH", "5") in await FreqtradeSource(binance_dir).list_series()


@pytest.mark.parametrize(
    ("name", "exchange"),
    [("binance", "BINANCE"), ("okx", "OKX"), ("binance-us", "BINANCE_US"), ("gate.io", "GATE_IO"), ("ödex", "_DEX")],
)
def test_exchange_name_sanitised(tmp_path, name, exchange):
    assert exchange_name(tmp_path / name) == exchange


def test_exchange_name_missing():
    with pytest.raises(ExchangeNameMissing):
        create("/", None)


@pytest.mark.anyio
async def test_since_and_until(real_dir):
    since = utc("2019-10-12T00:00:00")
    until = utc("2019-10-12T01:00:00")
    request = FetchRequest(Series("FREQTRADE:XRPETH", "5"), since=since, until=until)
    bars, _pages, outcome = await fetch_all(FreqtradeSource(real_dir), request)

    assert bars.ts.tolist() == list(range(since, until, 300))
    assert not outcome.history_exhausted


@pytest.mark.anyio
async def test_pages_at_most_page_bars(real_dir):
    source = FreqtradeSource(real_dir, page_bars=1000)
    bars, pages, _outcome = await fetch_all(source, FetchRequest(Series("FREQTRADE:UNITTESTBTC", "5")))

    assert [len(page.bars) for page in pages] == [1000] * 5 + [760]
    assert bars.bit_equal(feather_bars(real_dir / BTC_5M))


@pytest.mark.anyio
async def test_parquet_file(real_dir, tmp_path):
    directory = tmp_path / "kraken"
    directory.mkdir()
    pa_parquet.write_table(pa_feather.read_table(real_dir / XRP_1M), directory / "XRP_ETH-1m.parquet")

    bars, _pages, _outcome = await fetch_all(FreqtradeSource(directory), FetchRequest(Series("KRAKEN:XRPETH", "1")))
    assert bars.bit_equal(feather_bars(real_dir / XRP_1M))


@pytest.mark.anyio
async def test_json_and_feather_merged(real_dir, binance_dir):
    rows = json_rows(real_dir / XRP_5M)
    table = pa.table({
        "date": pa.array([row[0] for row in rows], pa.timestamp("ms", tz="UTC")),
        **{name: pa.array([row[index] for row in rows], pa.float64())
           for index, name in enumerate(("open", "high", "low", "close", "volume"), start=1)},
    })
    pa_feather.write_feather(table.slice(300), binance_dir / "XRP_ETH-5m.feather")

    bars, _pages, outcome = await fetch_all(FreqtradeSource(binance_dir), FetchRequest(Series("BINANCE:XRPETH", "5")))
    assert bars.bit_equal(json_bars(rows))
    assert len(outcome.files_read) == 2


@pytest.mark.anyio
async def test_conflicting_files_name_both(real_dir, binance_dir):
    rows = json_rows(real_dir / XRP_5M)
    rows[10][4] = rows[10][4] * 2
    (binance_dir / "XRP_ETH-5m.json.gz").write_bytes(gzip.compress(json.dumps(rows).encode()))

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(FreqtradeSource(binance_dir), FetchRequest(Series("BINANCE:XRPETH", "5")))
    reason = caught.value.fields["reason"]
    assert f"{binance_dir / 'XRP_ETH-5m.json'}, row index 10" in reason
    assert f"{binance_dir / 'XRP_ETH-5m.json.gz'}, row index 10" in reason
    assert caught.value.fields["time"] == "2019-10-11T00:50:00Z"


@pytest.mark.anyio
async def test_non_ohlcv_candle_types_skipped(real_dir, binance_dir):
    futures = binance_dir / "futures"
    shutil.copy(real_dir / FUTURES_1H, futures / "XRP_USDT_USDT-1h-mark.json.gz")
    shutil.copy(real_dir / FUTURES_1H, futures / "XRP_USDT_USDT-8h-funding_rate.json.gz")
    shutil.copy(real_dir / FUTURES_1H, futures / "ADA_USDT_USDT-1h-index.json.gz")

    source = FreqtradeSource(binance_dir)
    assert await source.list_series() == [
        Series("BINANCE:UNITTESTBTC", "5"),
        Series("BINANCE:XRPETH", "1"),
        Series("BINANCE:XRPETH", "5"),
        Series("BINANCE:XRPUSDT.P", "60"),
    ]
    bars, _pages, outcome = await fetch_all(source, FetchRequest(Series("BINANCE:XRPUSDT.P", "60")))
    assert bars.bit_equal(json_bars(json_rows(real_dir / FUTURES_1H)))
    assert len(outcome.notes) == 1
    assert "XRP_USDT_USDT-1h-mark.json.gz" in outcome.notes[0]
    assert "'mark'" in outcome.notes[0]


@pytest.mark.anyio
async def test_only_skipped_candle_type(real_dir, tmp_path):
    directory = tmp_path / "bybit"
    (directory / "futures").mkdir(parents=True)
    shutil.copy(real_dir / FUTURES_1H, directory / "futures" / "XRP_USDT_USDT-1h-mark.json.gz")

    source = FreqtradeSource(directory)
    assert await source.list_series() == []
    with pytest.raises(SymbolNotFound):
        await fetch_all(source, FetchRequest(Series("BYBIT:XRPUSDT.P", "60")))


@pytest.mark.anyio
async def test_hdf5_file_skipped_with_note(real_dir, binance_dir):
    (binance_dir / "XRP_ETH-5m.h5").write_bytes(b"\x89HDF\r\n\x1a\n")

    source = FreqtradeSource(binance_dir)
    _bars, _pages, outcome = await fetch_all(source, FetchRequest(Series("BINANCE:XRPETH", "5")))
    assert len(outcome.notes) == 1
    assert "HDF5" in outcome.notes[0]


@pytest.mark.anyio
async def test_month_timeframe_file_name(real_dir, tmp_path):
    directory = tmp_path / "binance"
    row = json_rows(real_dir / XRP_5M)[0]
    write_json(directory / "XRP_ETH-1Mo.json", [[utc("2019-10-01T00:00:00") * 1000, *row[1:]]])
    write_json(directory / "XRP_ETH-1m.json", [row])

    assert await FreqtradeSource(directory).list_series() == [
        Series("BINANCE:XRPETH", "1"), Series("BINANCE:XRPETH", "1M")
    ]


@pytest.mark.anyio
async def test_skip_file_hashes(real_dir):
    series = Series("FREQTRADE:XRPETH", "5")
    request = FetchRequest(series, skip_file_hashes=frozenset({hash_file(real_dir / XRP_5M)}))
    bars, pages, outcome = await fetch_all(FreqtradeSource(real_dir), request)

    assert len(bars) == 0
    assert pages == []
    assert outcome.files_read == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        (4, "abc", "row index 3, column close: invalid value 'abc'"),
        (2, True, "row index 3, column high: invalid value True"),
        (0, "1570752900000", "row index 3, column date: invalid value '1570752900000'"),
        (0, 1570752900500, "not a whole second"),
        (0, 1570752900000.0, "row index 3, column date: invalid value 1570752900000.0"),
    ],
    ids=["text-price", "bool-price", "text-time", "fraction", "float-time"],
)
async def test_json_bad_value(real_dir, tmp_path, column, value, expected):
    rows = json_rows(real_dir / XRP_5M)
    rows[3][column] = value
    directory = tmp_path / "binance"
    write_json(directory / XRP_5M, rows)

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(FreqtradeSource(directory), FetchRequest(Series("BINANCE:XRPETH", "5")))
    assert caught.value.fields["source"] == f"freqtrade:{directory}"
    assert str(directory / XRP_5M) in caught.value.fields["reason"]
    assert expected in caught.value.fields["reason"]


@pytest.mark.anyio
async def test_json_null_value_is_missing(real_dir, tmp_path):
    rows = json_rows(real_dir / XRP_5M)
    rows[3][5] = None
    directory = tmp_path / "binance"
    write_json(directory / XRP_5M, rows)

    bars, _pages, _outcome = await fetch_all(FreqtradeSource(directory), FetchRequest(Series("BINANCE:XRPETH", "5")))
    assert np.isnan(bars.volume[3])
    assert int(np.isnan(bars.volume).sum()) == 1


@pytest.mark.anyio
async def test_json_short_row(real_dir, tmp_path):
    rows = json_rows(real_dir / XRP_5M)
    rows[7] = rows[7][:5]
    directory = tmp_path / "binance"
    write_json(directory / XRP_5M, rows)

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(FreqtradeSource(directory), FetchRequest(Series("BINANCE:XRPETH", "5")))
    assert "row index 7, column row" in caught.value.fields["reason"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (XRP_5M, b"[[1570752000000, 0.1", "not valid JSON"),
        (XRP_5M, b'{"date": []}', "expected a JSON array"),
        ("XRP_ETH-5m.json.gz", b"not gzip", "not valid gzip data"),
        ("XRP_ETH-5m.feather", b"not arrow", "not a valid feather file"),
        ("XRP_ETH-5m.parquet", b"not parquet", "not a valid parquet file"),
    ],
    ids=["truncated-json", "json-object", "gzip", "feather", "parquet"],
)
async def test_unreadable_file(tmp_path, name, content, expected):
    directory = tmp_path / "binance"
    directory.mkdir()
    (directory / name).write_bytes(content)

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(FreqtradeSource(directory), FetchRequest(Series("BINANCE:XRPETH", "5")))
    assert str(directory / name) in caught.value.fields["reason"]
    assert expected in caught.value.fields["reason"]


@pytest.mark.anyio
async def test_feather_missing_column(real_dir, tmp_path):
    directory = tmp_path / "binance"
    directory.mkdir()
    table = pa_feather.read_table(real_dir / XRP_1M).drop_columns(["volume"])
    pa_feather.write_feather(table, directory / XRP_1M)

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(FreqtradeSource(directory), FetchRequest(Series("BINANCE:XRPETH", "1")))
    assert "missing column 'volume'" in caught.value.fields["reason"]


@pytest.mark.anyio
async def test_feather_text_price_column(real_dir, tmp_path):
    directory = tmp_path / "binance"
    directory.mkdir()
    table = pa_feather.read_table(real_dir / XRP_1M)
    table = table.set_column(4, "close", table.column("close").cast(pa.string()))
    pa_feather.write_feather(table, directory / XRP_1M)

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(FreqtradeSource(directory), FetchRequest(Series("BINANCE:XRPETH", "1")))
    reason = caught.value.fields["reason"]
    assert "row index 0, column close" in reason
    assert "expected a number column" in reason


@pytest.mark.anyio
async def test_feather_missing_time(real_dir, tmp_path):
    directory = tmp_path / "binance"
    directory.mkdir()
    table = pa_feather.read_table(real_dir / XRP_1M)
    dates = table.column("date").to_pylist()
    dates[42] = None
    table = table.set_column(0, "date", pa.array(dates, pa.timestamp("ns", tz="UTC")))
    pa_feather.write_feather(table, directory / XRP_1M)

    with pytest.raises(InvalidSourceData) as caught:
        await fetch_all(FreqtradeSource(directory), FetchRequest(Series("BINANCE:XRPETH", "1")))
    assert "row index 42, column date" in caught.value.fields["reason"]


@pytest.mark.anyio
async def test_feather_null_price_is_missing(real_dir, tmp_path):
    directory = tmp_path / "binance"
    directory.mkdir()
    table = pa_feather.read_table(real_dir / XRP_1M)
    opens = table.column("open").to_pylist()
    opens[5] = None
    table = table.set_column(1, "open", pa.array(opens, pa.float64()))
    pa_feather.write_feather(table, directory / XRP_1M)

    bars, _pages, _outcome = await fetch_all(FreqtradeSource(directory), FetchRequest(Series("BINANCE:XRPETH", "1")))
    assert np.isnan(bars.open[5])
    assert int(np.isnan(bars.open).sum()) == 1


@pytest.mark.anyio
async def test_missing_directory(tmp_path):
    source = create(str(tmp_path / "binance"), None)

    with pytest.raises(SourceDirectoryNotFound) as listed:
        await source.list_series()
    assert str(tmp_path / "binance") in str(listed.value)
    with pytest.raises(SymbolNotFound) as fetched:
        await fetch_all(source, FetchRequest(Series("BINANCE:XRPETH", "5")))
    assert str(tmp_path / "binance") in str(fetched.value)


@pytest.mark.anyio
async def test_unknown_series(real_dir):
    with pytest.raises(SymbolNotFound) as caught:
        await fetch_all(FreqtradeSource(real_dir), FetchRequest(Series("FREQTRADE:XRPETH", "15")))
    assert caught.value.fields["timeframe"] == "15"
    assert str(real_dir) in caught.value.fields["reason"]


@pytest.mark.parametrize("argument", [None, ""])
def test_create_without_directory(argument):
    with pytest.raises(SourceArgumentMissing) as caught:
        create(argument, None)
    assert "freqtrade:DIR" in str(caught.value)
