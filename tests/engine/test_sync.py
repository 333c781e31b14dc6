"""The sync engine from a source into the cache: overlaps, seams, forming bars, revisions, bad data, retries."""

import sqlite3
from pathlib import Path

import anyio
import msgspec
import numpy as np
import pytest

from tvcat.catalog import events as ev
from tvcat.catalog.bars import BarColumns
from tvcat.catalog.series import Series
from tvcat.engine.backup import BackupType, create_backup
from tvcat.engine.cache import BarCache
from tvcat.engine.config import default_config
from tvcat.engine.importers import read_bar_file
from tvcat.engine.sources.base import InvalidSourceData, Page, Source, SourceUnavailable
from tvcat.engine.sources.registry import register_source
from tvcat.engine.sync.runner import run_queued
from tvcat.engine.sync.tasks import SyncTask, cancel_tasks, queue_task, task_rows

SAMPLE = Path(__file__).resolve().parents[2] / "engine" / "sample_data" / "EURUSD60.csv"
SERIES = Series("FX:EURUSD", "60")


@pytest.fixture(scope="module")
def sample_bars() -> BarColumns:
    """The bundled real EURUSD hourly bars."""
    return read_bar_file(SAMPLE, symbol=SERIES.symbol, timeframe=SERIES.timeframe, tz="UTC").bars


class ScriptedSource(Source):
    """A source that gives pages prepared by the test, one list of pages per fetch, and may fail first."""

    name = "scripted"

    def __init__(self) -> None:
        self.fetches: list[list[Page]] = []
        self.failures: list[BaseException] = []
        self.requests = []

    async def list_series(self):
        return [SERIES]

    async def fetch(self, request, outcome):
        self.requests.append(request)
        if self.failures:
            raise self.failures.pop(0)
        for page in self.fetches.pop(0):
            yield page


@pytest.fixture
def scripted():
    source = ScriptedSource()
    register_source("scripted", lambda argument, config: source)
    return source


def run_sync(repository, cache_path, task: SyncTask, config=None):
    config = config or default_config()
    queue_task(repository, task)
    [outcome] = anyio.run(lambda: run_queued(repository, cache_path, config, [task.task_id]))
    return outcome


def task(**fields) -> SyncTask:
    return SyncTask(source="scripted", target="cache", **fields)


def stored(cache_path: Path) -> BarColumns:
    cache = BarCache(cache_path)
    try:
        return cache.read_bars(SERIES)
    finally:
        cache.close()


def events_of(repository, kind: str) -> list:
    return [record.decode() for record in ev.iter_events(repository.connection) if record.kind == kind]


def edited(bars: BarColumns, index: int, **values) -> BarColumns:
    columns = {name: column.copy() for name, column in zip(("ts", "open", "high", "low", "close", "volume"),
                                                           bars.columns())}
    for name, value in values.items():
        columns[name][index] = value
    return BarColumns(**columns)


# --- overlaps and seams

def test_overlapping_syncs_one_row_per_bar(repository, cache_path, scripted, sample_bars):
    scripted.fetches = [[Page(sample_bars.slice(0, 3000))], [Page(sample_bars.slice(2500, len(sample_bars)))]]

    first = run_sync(repository, cache_path, task())
    cache = BarCache(cache_path)
    backup = create_backup(repository, cache, BackupType.FULL)
    second = run_sync(repository, cache_path, task())
    again = create_backup(repository, BarCache(cache_path), BackupType.INCREMENTAL)

    assert first.error is None
    assert second.error is None
    assert stored(cache_path).bit_equal(sample_bars)
    assert backup.bar_count == 3000
    assert again.windows_written == 1
    [result] = second.completed.series
    assert result.bars_inserted == len(sample_bars) - 3000
    assert result.bars_unchanged == 3
    assert result.bars_updated == 0


def test_incremental_fetch_starts_at_overlap(repository, cache_path, scripted, sample_bars):
    scripted.fetches = [[Page(sample_bars.slice(0, 100))], [Page(sample_bars.slice(0, 100))]]

    run_sync(repository, cache_path, task())
    outcome = run_sync(repository, cache_path, task())

    assert scripted.requests[0].since is None
    assert scripted.requests[1].since == int(sample_bars.ts[97])
    [result] = outcome.completed.series
    assert result.bars_fetched == 3
    assert result.bars_unchanged == 3


def test_second_identical_sync_no_chunk_change(repository, cache_path, scripted, sample_bars):
    scripted.fetches = [[Page(sample_bars)], [Page(sample_bars)]]
    run_sync(repository, cache_path, task())
    create_backup(repository, BarCache(cache_path), BackupType.FULL)

    run_sync(repository, cache_path, task())
    incremental = create_backup(repository, BarCache(cache_path), BackupType.INCREMENTAL)

    assert incremental.windows_written == 0
    assert incremental.chunks_written == 0


def test_page_seam_repeat_stored_once(repository, cache_path, scripted, sample_bars):
    pages = [Page(sample_bars.slice(start, min(start + 501, len(sample_bars))))
             for start in range(0, len(sample_bars), 500)]
    scripted.fetches = [pages]

    outcome = run_sync(repository, cache_path, task())

    assert outcome.error is None
    assert stored(cache_path).bit_equal(sample_bars)
    [result] = outcome.completed.series
    assert result.bars_inserted == len(sample_bars)
    assert result.bars_unchanged == len(pages) - 1


def test_since_fetches_earlier_range(repository, cache_path, scripted, sample_bars):
    scripted.fetches = [[Page(sample_bars.slice(1000, len(sample_bars)))], [Page(sample_bars)]]
    run_sync(repository, cache_path, task())

    outcome = run_sync(repository, cache_path, task(since=int(sample_bars.ts[0])))

    assert scripted.requests[1].since == int(sample_bars.ts[0])
    assert stored(cache_path).bit_equal(sample_bars)
    assert outcome.completed.series[0].bars_inserted == 1000


# --- forming bars and revisions

def test_forming_bar_provisional(repository, cache_path, scripted, sample_bars):
    bars = sample_bars.slice(0, 50)
    forming_later = edited(bars, 49, close=float(bars.close[49]) + 0.001, high=float(bars.high[49]) + 0.001)
    scripted.fetches = [[Page(bars, last_bar_forming=True)], [Page(forming_later.slice(47, 50))]]

    first = run_sync(repository, cache_path, task())
    second = run_sync(repository, cache_path, task())

    assert first.completed.series[0].provisional_ts == int(bars.ts[49])
    assert second.completed.series[0].bars_updated == 1
    assert second.completed.series[0].bars_revised == 0
    assert second.completed.series[0].provisional_ts is None
    assert events_of(repository, "bars.revised") == []
    assert stored(cache_path).bit_equal(forming_later)


def test_closed_only_skips_forming(repository, cache_path, scripted, sample_bars):
    bars = sample_bars.slice(0, 50)
    scripted.fetches = [[Page(bars, last_bar_forming=True)]]

    outcome = run_sync(repository, cache_path, task(closed_only=True))

    assert outcome.completed.series[0].provisional_ts is None
    assert stored(cache_path).bit_equal(bars.slice(0, 49))


def test_revised_closed_bar_recorded(repository, cache_path, scripted, sample_bars):
    bars = sample_bars.slice(0, 50)
    revised = edited(bars, 48, close=1.5, high=1.5)
    scripted.fetches = [[Page(bars)], [Page(revised.slice(47, 50))]]

    run_sync(repository, cache_path, task())
    outcome = run_sync(repository, cache_path, task())

    assert outcome.completed.series[0].bars_revised == 1
    [event] = events_of(repository, "bars.revised")
    assert event.count == 1
    assert event.first_ts == int(bars.ts[48])
    assert event.first_old.close == float(bars.close[48])
    assert event.first_new.close == 1.5
    assert event.first_new.high == 1.5


def test_missing_volume_stays_null(repository, cache_path, scripted, sample_bars):
    bars = sample_bars.slice(0, 10)
    no_volume = BarColumns(bars.ts, bars.open, bars.high, bars.low, bars.close, np.full(10, np.nan))
    scripted.fetches = [[Page(no_volume)]]

    run_sync(repository, cache_path, task())

    connection = sqlite3.connect(cache_path)
    try:
        volumes = connection.execute("SELECT volume FROM bars").fetchall()
    finally:
        connection.close()
    assert volumes == [(None,)] * 10


# --- bad data

def test_invalid_bar_fails_page(repository, cache_path, scripted, sample_bars):
    good = sample_bars.slice(0, 20)
    bad = edited(sample_bars.slice(20, 40), 5, high=0.5)
    scripted.fetches = [[Page(good), Page(bad)]]

    outcome = run_sync(repository, cache_path, task())

    assert isinstance(outcome.error, InvalidSourceData)
    message = str(outcome.error)
    assert "source scripted" in message
    assert "FX:EURUSD 60" in message
    assert "2019-02-" in message
    assert "high 0.5 is below low" in message
    assert stored(cache_path).bit_equal(good)
    [row] = [row for row in task_rows(repository) if row["task_id"] == outcome.task.task_id]
    assert row["status"] == "failed"
    assert row["attempts"] == 1


def test_invalid_bar_accepted_with_warning(repository, cache_path, scripted, sample_bars):
    bad = edited(sample_bars.slice(0, 20), 5, low=9.0)
    scripted.fetches = [[Page(bad)]]

    outcome = run_sync(repository, cache_path, task(accept_invalid_bars=True))

    assert outcome.error is None
    assert stored(cache_path).bit_equal(bad)
    [warning] = events_of(repository, "bars.invalid_accepted")
    assert warning.count == 1
    assert "below low 9.0" in warning.reason


def test_unaligned_bar_times_accepted(repository, cache_path, scripted, sample_bars):
    bars = sample_bars.slice(0, 10)
    shifted = BarColumns(bars.ts + 15 * 60, *bars.columns()[1:])
    scripted.fetches = [[Page(shifted)]]

    outcome = run_sync(repository, cache_path, task())

    assert outcome.error is None
    assert stored(cache_path).bit_equal(shifted)


# --- retries and the queue

def test_transient_failure_retried(repository, cache_path, scripted, sample_bars):
    scripted.failures = [SourceUnavailable(source="scripted", reason="connection reset")]
    scripted.fetches = [[Page(sample_bars.slice(0, 10))]]
    config = msgspec.structs.replace(
        default_config(), sync_config=msgspec.structs.replace(default_config().sync_config, retry_delay_base=1.01)
    )

    outcome = run_sync(repository, cache_path, task(), config)

    assert outcome.error is None
    [retry] = events_of(repository, "sync.retried")
    assert "connection reset" in retry.error
    assert len(events_of(repository, "sync.started")) == 2


def test_bad_data_not_retried(repository, cache_path, scripted, sample_bars):
    scripted.failures = [InvalidSourceData(source="scripted", symbol="FX:EURUSD", timeframe="60",
                                           time="2019-02-15T14:00:00Z", reason="close 'abc' is not a number")]

    outcome = run_sync(repository, cache_path, task())

    assert isinstance(outcome.error, InvalidSourceData)
    assert events_of(repository, "sync.retried") == []


def test_dry_run_writes_nothing(repository, cache_path, scripted, sample_bars):
    scripted.fetches = [[Page(sample_bars.slice(0, 10))]]

    outcome = run_sync(repository, cache_path, task(dry_run=True))

    assert outcome.completed.series[0].bars_inserted == 10
    assert len(stored(cache_path)) == 0


def test_cancel_queued_task(repository):
    queued = queue_task(repository, task())

    cancelled = cancel_tasks(repository, None, "test")

    assert cancelled == [queued.task_id]
    [row] = task_rows(repository)
    assert row["status"] == "cancelled"


def test_queue_runs_high_priority_first(repository, cache_path, scripted, sample_bars):
    scripted.fetches = [[Page(sample_bars.slice(0, 5))] for _ in range(3)]
    low = queue_task(repository, task(priority=3))
    high = queue_task(repository, task(priority=1))
    medium = queue_task(repository, task(priority=2))
    config = msgspec.structs.replace(
        default_config(), sync_config=msgspec.structs.replace(default_config().sync_config, max_concurrent_tasks=1)
    )

    anyio.run(lambda: run_queued(repository, cache_path, config))

    started = [event.task_id for event in events_of(repository, "sync.started")]
    assert started == [high.task_id, medium.task_id, low.task_id]


def test_cancel_while_waiting_stops_task(repository, cache_path, scripted, sample_bars):
    scripted.fetches = [[Page(sample_bars.slice(0, 10))]]
    defaults = default_config()
    limits = msgspec.structs.replace(defaults.sync_config.resource_limits, min_free_disk_gb=1e9, max_wait_seconds=30)
    config = msgspec.structs.replace(defaults, sync_config=msgspec.structs.replace(
        defaults.sync_config, resource_limits=limits))
    waiting = queue_task(repository, task())
    outcomes = []

    async def run_and_cancel():
        async with anyio.create_task_group() as group:
            async def run():
                outcomes.extend(await run_queued(repository, cache_path, config, [waiting.task_id]))
            group.start_soon(run)
            await anyio.sleep(0.3)
            cancel_tasks(repository, waiting.task_id, "test")

    anyio.run(run_and_cancel)

    [outcome] = outcomes
    assert "did not run: it is cancelled" in str(outcome.error)
    assert events_of(repository, "sync.started") == []
    assert len(stored(cache_path)) == 0


def test_failure_lists_written_series(repository, cache_path, sample_bars):
    other = Series("FX:EURUSD", "1D")

    class TwoSeriesSource(ScriptedSource):
        async def list_series(self):
            return [SERIES, other]

        async def fetch(self, request, outcome):
            if request.series == SERIES:
                yield Page(sample_bars.slice(0, 30))
            else:
                raise InvalidSourceData(source="two", symbol=other.symbol, timeframe=other.timeframe,
                                        time="2019-02-15T00:00:00Z", reason="close 'x' is not a number")

    register_source("two", lambda argument, config: TwoSeriesSource())

    outcome = run_sync(repository, cache_path, SyncTask(source="two", target="cache"))

    assert isinstance(outcome.error, InvalidSourceData)
    [failed] = events_of(repository, "sync.failed")
    [written] = failed.series
    assert (written.symbol, written.timeframe, written.bars_inserted) == ("FX:EURUSD", "60", 30)
    assert len(stored(cache_path)) == 30
