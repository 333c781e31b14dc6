"""Measure the sync paths against reading the same data with pyarrow alone, in the same run.

Run with `python benchmarks/bench_sync.py [--data ../shared/data] [--series 100]`.
Steps, each repeated three times and reported by its fastest run:

1. CSV: `tvcat sync --source csv:DIR` of the real TradingView exports into
   an empty cache, against `pyarrow.csv.read_csv` of the same files.
2. Feather: `tvcat sync --source freqtrade:DIR` of the real freqtrade files
   into an empty cache, against `pyarrow.feather.read_table` of the same files.
3. Websocket: `tvcat sync --source tradingview` of the recorded TVC:RUT
   one-minute series from the replay server of the tests on 127.0.0.1,
   against `pyarrow.json.read_json` of the same bars written as JSON lines.
4. No-change sync: 100 one-minute series of 10,000 bars in the cache and a
   source that gives the same bars. Two syncs are timed: an incremental one
   (overlap 2 bars) and one of the last day (1440 bars per series, all
   unchanged).

It prints bars per second, the ratios, whether each target is met, and
writes every figure to benchmarks/results/sync-<UTC time>.json.
"""

import argparse
import asyncio
import json
import platform
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import anyio
import msgspec
import numpy as np
import pyarrow.csv
import pyarrow.feather
import pyarrow.json

from tvcat.catalog.bars import BarColumns
from tvcat.catalog.repository import Repository
from tvcat.catalog.series import Series
from tvcat.engine.cache import BarCache
from tvcat.engine.config import default_config
from tvcat.engine.sources.base import Page, Source
from tvcat.engine.sources.registry import register_source
from tvcat.engine.sync.runner import run_queued
from tvcat.engine.sync.tasks import SyncTask, queue_task

REPEATS = 3
BARS_PER_SERIES = 10_000
BARS_PER_DAY = 1440
START_TS = 1_672_531_200  # 2023-01-01T00:00Z
IMPORT_TARGET = 0.25
NO_CHANGE_TARGET_SECONDS = 1.0
# The batch_size of the second run of each file path, against the default of 100.
LARGE_BATCH = 5000


def run_sync(work: Path, source: str, config=None, since: int | None = None, fresh: bool = True,
             symbols: list[str] | None = None, timeframes: list[str] | None = None) -> float:
    """Run one sync task in this process and return its wall time in seconds."""
    if fresh and (work / "cache.db").exists():
        for name in ("cache.db", "cache.db-wal", "cache.db-shm"):
            (work / name).unlink(missing_ok=True)
        shutil.rmtree(work / "repo", ignore_errors=True)
    repository = Repository(work / "repo")
    try:
        task = queue_task(repository, SyncTask(source=source, target="cache", since=since, symbols=symbols,
                                               timeframes=timeframes))
        started = time.perf_counter()
        [outcome] = anyio.run(lambda: run_queued(repository, work / "cache.db", config or default_config(),
                                                 [task.task_id]))
        elapsed = time.perf_counter() - started
    finally:
        repository.close()
    if outcome.error is not None:
        raise outcome.error
    return elapsed


def fastest(function) -> float:
    return min(function() for _ in range(REPEATS))


def bench_files(work: Path, spec: str, files: list[Path], read) -> dict:
    """Time pyarrow reading `files` and a sync of `spec` at the default and at a large batch size."""
    bars = sum(read(path).num_rows for path in files)
    baseline = fastest(lambda: _timed(files, read))
    synced = fastest(lambda: run_sync(work, spec))
    large = _with_batch_size(LARGE_BATCH)
    synced_large = fastest(lambda: run_sync(work, spec, large))
    return {"bars": bars, "pyarrow_seconds": baseline, "tvcat_seconds": synced,
            "pyarrow_bars_per_second": bars / baseline, "tvcat_bars_per_second": bars / synced,
            "ratio": baseline / synced, "large_batch_seconds": synced_large,
            "large_batch_bars_per_second": bars / synced_large, "large_batch_ratio": baseline / synced_large}


def _with_batch_size(batch_size: int):
    config = default_config()
    return msgspec.structs.replace(config, sync_config=msgspec.structs.replace(
        config.sync_config, batch_size=batch_size))


def _timed(files, read) -> float:
    started = time.perf_counter()
    for path in files:
        read(path)
    return time.perf_counter() - started


class SameBarsSource(Source):
    """A source that gives each series the bars it was built with, honouring `since`."""

    name = "bench"

    def __init__(self, bars: dict[Series, BarColumns]) -> None:
        self.bars = bars

    async def list_series(self):
        return sorted(self.bars)

    async def fetch(self, request, outcome):
        bars = self.bars[request.series]
        start = int(np.searchsorted(bars.ts, request.since)) if request.since is not None else 0
        yield Page(bars.slice(start, len(bars)))


def synthetic_series(count: int) -> dict[Series, BarColumns]:
    random = np.random.default_rng(1)
    result = {}
    for index in range(count):
        close = 100 + np.cumsum(random.normal(0, 0.1, BARS_PER_SERIES))
        spread = np.abs(random.normal(0, 0.05, BARS_PER_SERIES))
        ts = START_TS + 60 * np.arange(BARS_PER_SERIES, dtype=np.int64)
        result[Series(f"BENCH:S{index:03d}", "1")] = BarColumns.from_arrays(
            ts, close, close + spread, close - spread, close, random.integers(1, 1000, BARS_PER_SERIES))
    return result


def bench_no_change(work: Path, count: int) -> dict:
    bars = synthetic_series(count)
    register_source("bench", lambda argument, config: SameBarsSource(bars))
    config = _with_batch_size(LARGE_BATCH)
    initial = run_sync(work, "bench", config)
    incremental = fastest(lambda: run_sync(work, "bench", config, fresh=False))
    last_day = START_TS + 60 * (BARS_PER_SERIES - BARS_PER_DAY)
    one_day = fastest(lambda: run_sync(work, "bench", config, since=last_day, fresh=False))
    cache = BarCache(work / "cache.db")
    stored = cache.connection.execute("SELECT count(*) FROM bars").fetchone()[0]
    cache.close()
    return {"series": count, "bars_stored": stored, "initial_seconds": initial,
            "no_change_incremental_seconds": incremental, "one_day_overlap_seconds": one_day,
            "one_day_overlap_bars_per_second": count * BARS_PER_DAY / one_day}


REPLAY_SERVER_DIR = Path(__file__).resolve().parents[1] / "tests" / "sources"
RECORDED_SYMBOL = "TVC:RUT"


def bench_websocket(work: Path, data: Path) -> dict | None:
    """Time a tradingview sync from the replay server against pyarrow reading the same bars as JSON lines."""
    recording_file = data / "tradingview-ws" / "tradingview-rs_socket_messages.txt"
    if not recording_file.is_file() or not REPLAY_SERVER_DIR.is_dir():
        return None
    sys.path.insert(0, str(REPLAY_SERVER_DIR))
    from tv_replay_server import ReplayServer, read_frames_file, recorded_series

    recording = recorded_series(read_frames_file(recording_file), RECORDED_SYMBOL)
    lines = work / "bars.jsonl"
    with open(lines, "w", encoding="utf-8") as output:
        for values in recording.bars:
            output.write(json.dumps(dict(zip(("ts", "open", "high", "low", "close", "volume"), values))) + "\n")
    baseline = fastest(lambda: _timed([lines], pyarrow.json.read_json))

    server = ReplayServer({RECORDED_SYMBOL: recording})
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        config = default_config()
        tradingview = msgspec.structs.replace(config.sync_config.tradingview, url=server.url, page_bars=1000)
        config = msgspec.structs.replace(config, sync_config=msgspec.structs.replace(
            config.sync_config, tradingview=tradingview, batch_size=LARGE_BATCH))
        synced = fastest(lambda: run_sync(work, "tradingview", config, symbols=[RECORDED_SYMBOL], timeframes=["1"]))
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
    bars = len(recording.bars)
    return {"bars": bars, "pyarrow_seconds": baseline, "tvcat_seconds": synced,
            "pyarrow_bars_per_second": bars / baseline, "tvcat_bars_per_second": bars / synced,
            "ratio": baseline / synced, "batch_size": LARGE_BATCH}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "../shared/data")
    parser.add_argument("--series", type=int, default=100)
    arguments = parser.parse_args()

    results = {"machine": platform.platform(), "python": platform.python_version(),
               "time": datetime.now(timezone.utc).isoformat()}
    with tempfile.TemporaryDirectory(prefix="tvcat-bench-sync-") as directory:
        work = Path(directory)
        exports = sorted((arguments.data / "tradingview").glob("*.csv"))
        if exports:
            results["csv"] = bench_files(work, f"csv:{arguments.data / 'tradingview'}", exports,
                                         pyarrow.csv.read_csv)
        feathers = sorted((arguments.data / "freqtrade").glob("*.feather"))
        if feathers:
            feather_dir = work / "freqtrade" / "binance"
            feather_dir.mkdir(parents=True)
            for path in feathers:
                shutil.copy2(path, feather_dir / path.name)
            results["feather"] = bench_files(work, f"freqtrade:{feather_dir}",
                                             sorted(feather_dir.glob("*.feather")), pyarrow.feather.read_table)
        websocket = bench_websocket(work, arguments.data)
        if websocket is not None:
            results["websocket"] = websocket
        results["no_change"] = bench_no_change(work, arguments.series)

    for name in ("csv", "feather"):
        if name in results:
            figures = results[name]
            print(f"{name}: {figures['bars']} bars, tvcat {figures['tvcat_bars_per_second']:,.0f} bars/s, "
                  f"pyarrow {figures['pyarrow_bars_per_second']:,.0f} bars/s, ratio {figures['ratio']:.3f} "
                  f"(target {IMPORT_TARGET}: {'met' if figures['ratio'] >= IMPORT_TARGET else 'missed'}); "
                  f"batch_size {LARGE_BATCH}: {figures['large_batch_bars_per_second']:,.0f} bars/s, "
                  f"ratio {figures['large_batch_ratio']:.3f}")
        else:
            print(f"{name}: skipped, no real files under {arguments.data}")
    if "websocket" in results:
        figures = results["websocket"]
        print(f"websocket: {figures['bars']} bars, tvcat {figures['tvcat_bars_per_second']:,.0f} bars/s, "
              f"pyarrow JSON {figures['pyarrow_bars_per_second']:,.0f} bars/s, ratio {figures['ratio']:.3f} "
              f"(target {IMPORT_TARGET}: {'met' if figures['ratio'] >= IMPORT_TARGET else 'missed'})")
    else:
        print(f"websocket: skipped, no recording under {arguments.data} or no tests/sources")
    figures = results["no_change"]
    print(f"no-change sync of {figures['series']} series: {figures['no_change_incremental_seconds']:.3f} s "
          f"(target < {NO_CHANGE_TARGET_SECONDS} s: "
          f"{'met' if figures['no_change_incremental_seconds'] < NO_CHANGE_TARGET_SECONDS else 'missed'}); "
          f"one-day overlap {figures['one_day_overlap_seconds']:.3f} s, "
          f"{figures['one_day_overlap_bars_per_second']:,.0f} bars/s compared")

    output = Path(__file__).resolve().parent / "results"
    output.mkdir(exist_ok=True)
    name = f"sync-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    (output / name).write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
