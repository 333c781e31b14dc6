"""primary → cache: fetch the bars of each series from a source and upsert them into the cache.

For one series: fetch from `--since`, or from the bar `overlap_bars` before
the newest stored one, so revised recent bars are caught. Check each page,
compare it with the stored bars, and write it in `batch_size` transactions.
A bar equal to the stored one is not written. A changed closed bar is a
revision, recorded as `bars.revised`. The forming newest bar is stored as
provisional and replaced by the next sync, or skipped with `closed_only`.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel
import numpy as np

from ...catalog import events as ev
from ...catalog.bars import BarColumns
from ...catalog.repository import Repository
from ...catalog.series import Series
from ...i18n import _
from ..cache import BarCache
from ..importers.timeparse import format_utc
from ..sources.base import FetchOutcome, FetchRequest, InvalidSourceData, Source
from .checks import find_invalid, find_unsorted
from .tasks import SyncTask

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[Series, int], None]


@dataclass
class SeriesSync:
    """Counters of one series while its pages are written."""

    series: Series
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    revised: int = 0
    first_revision: tuple[int, tuple, tuple] | None = None
    invalid_accepted: int = 0
    first_invalid: tuple[int, str] | None = None
    forming_ts: int | None = None
    fetched_ts: list[int] = field(default_factory=list)

    def result(self, outcome: FetchOutcome, provisional_ts: int | None) -> ev.SyncSeriesResult:
        return ev.SyncSeriesResult(
            symbol=self.series.symbol, timeframe=self.series.timeframe, bars_fetched=self.fetched,
            bars_inserted=self.inserted, bars_updated=self.updated, bars_unchanged=self.unchanged,
            bars_revised=self.revised, provisional_ts=provisional_ts,
            first_ts=min(self.fetched_ts) if self.fetched_ts else None,
            last_ts=max(self.fetched_ts) if self.fetched_ts else None,
            history_exhausted=outcome.history_exhausted,
        )


async def sync_series(
    repository: Repository,
    cache: BarCache,
    source: Source,
    source_spec: str,
    series: Series,
    task: SyncTask,
    settings,
    skip_file_hashes: frozenset[str] = frozenset(),
    progress: ProgressCallback | None = None,
) -> tuple[ev.SyncSeriesResult, FetchOutcome]:
    """Sync one series from `source` into `cache`; `settings` is the sync_config section.

    Raises InvalidSourceData for bad data unless the task accepts invalid
    bars; the page that contains it is not written.
    """
    previous_provisional = cache.provisional_ts(series)
    since = task.since if task.since is not None else _incremental_start(cache, series, settings.overlap_bars)
    outcome = FetchOutcome()
    request = FetchRequest(series, since=since, skip_file_hashes=skip_file_hashes)
    state = SeriesSync(series)
    closed_only = task.closed_only or settings.closed_only

    try:
        await _write_pages(cache, source, source_spec, series, task, settings, request, outcome, state,
                           previous_provisional, closed_only, since, progress)
    except BaseException as error:
        if state.fetched:
            # The batches written before the failure stay; the failure event lists them.
            error.partial_series = [state.result(outcome, previous_provisional)]
        raise

    provisional = _settle_provisional(cache, series, previous_provisional, state, task.dry_run)
    if outcome.info is not None and not task.dry_run:
        cache.save_series_info(source_spec, outcome.info)
    _record_warnings(repository, task, state)
    logger.info("synced series=%s %s fetched=%d inserted=%d updated=%d revised=%d", series.symbol,
                series.timeframe, state.fetched, state.inserted, state.updated, state.revised)
    return state.result(outcome, provisional), outcome


async def _write_pages(cache, source, source_spec, series, task, settings, request, outcome, state,
                       previous_provisional, closed_only, since, progress) -> None:
    """Fetch every page of the series, check it, and write it in batches, counting into `state`."""
    async for page in source.fetch(request, outcome):
        bars = _trim(page.bars, since)
        if len(bars) == 0:
            continue
        if page.last_bar_forming and bars.ts[-1] == page.bars.ts[-1]:
            if closed_only:
                bars = bars.slice(0, len(bars) - 1)
            else:
                state.forming_ts = max(int(bars.ts[-1]), state.forming_ts or int(bars.ts[-1]))

        _check_page(source_spec, series, bars, task, state)
        state.fetched += len(bars)
        state.fetched_ts.extend((int(bars.ts[0]), int(bars.ts[-1])) if len(bars) else ())
        for start in range(0, len(bars), settings.batch_size):
            _write_batch(cache, series, bars.slice(start, start + settings.batch_size), previous_provisional,
                         state, task.dry_run)
            # A sync that never awaits could not be cancelled: Ctrl-C takes effect here, between batches.
            await anyio.lowlevel.checkpoint()
        if progress is not None:
            progress(series, state.fetched)


def _incremental_start(cache: BarCache, series: Series, overlap_bars: int) -> int | None:
    """Return the time of the stored bar `overlap_bars` before the newest, or None for an empty series."""
    last = cache.last_bars(series, overlap_bars + 1)
    return int(last.ts[0]) if len(last) else None


def _trim(bars: BarColumns, since: int | None) -> BarColumns:
    if since is None or len(bars) == 0 or bars.ts[0] >= since:
        return bars
    return bars.slice(int(np.searchsorted(bars.ts, since, side="left")), len(bars))


def _check_page(source_spec: str, series: Series, bars: BarColumns, task: SyncTask, state: SeriesSync) -> None:
    unsorted = find_unsorted(bars)
    if unsorted is not None:
        raise InvalidSourceData(
            source=source_spec, symbol=series.symbol, timeframe=series.timeframe,
            time=format_utc(int(bars.ts[unsorted])), reason=_("bar times are not increasing within one page"),
        )
    invalid = find_invalid(bars)
    if invalid is None:
        return
    if not task.accept_invalid_bars:
        raise InvalidSourceData(
            source=source_spec, symbol=series.symbol, timeframe=series.timeframe,
            time=format_utc(int(bars.ts[invalid.first_index])),
            reason=_("{reason}; nothing of this page was stored, while pages written before stay and are "
                     "listed in the sync.failed event. Fix the source data, or pass --accept-invalid-bars "
                     "(sync_config.accept_invalid_bars) to store such bars").format(
                reason=invalid.reason),
        )
    state.invalid_accepted += invalid.count
    if state.first_invalid is None:
        state.first_invalid = (int(bars.ts[invalid.first_index]), invalid.reason)


def _write_batch(cache: BarCache, series: Series, batch: BarColumns, provisional_ts: int | None,
                 state: SeriesSync, dry_run: bool) -> None:
    """Upsert one batch unless `dry_run`, and count it against the bars stored before, noting revisions."""
    if dry_run:
        stored = cache.read_bars(series, int(batch.ts[0]), int(batch.ts[-1]) + 1)
    else:
        # The upsert reads the stored bars inside its transaction anyway, so they are not read twice.
        stored = cache.upsert(series, batch).previous
    in_stored = np.isin(batch.ts, stored.ts)
    positions = np.searchsorted(stored.ts, batch.ts[in_stored])
    old = [column[positions] for column in stored.columns()[1:]]
    new = [column[in_stored] for column in batch.columns()[1:]]
    differs = np.zeros(len(positions), dtype=bool)
    for old_column, new_column in zip(old, new):
        differs |= ~_same_bits(old_column, new_column)

    state.inserted += int((~in_stored).sum())
    state.updated += int(differs.sum())
    state.unchanged += int((~differs).sum())

    revised = differs & (batch.ts[in_stored] != (provisional_ts if provisional_ts is not None else -1 << 62))
    if revised.any():
        state.revised += int(revised.sum())
        if state.first_revision is None:
            index = int(np.flatnonzero(revised)[0])
            state.first_revision = (
                int(batch.ts[in_stored][index]),
                tuple(float(column[index]) for column in old),
                tuple(float(column[index]) for column in new),
            )


def _same_bits(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Compare values as the cache stores them: NaN equals NaN, and -0.0 is written as +0.0."""
    both_null = np.isnan(old) & np.isnan(new)
    return both_null | (old == new) & (np.signbit(old) == np.signbit(new + 0.0))


def _settle_provisional(cache: BarCache, series: Series, previous: int | None, state: SeriesSync,
                        dry_run: bool) -> int | None:
    """Set the provisional mark after a sync; return the provisional bar's time, if any."""
    if state.forming_ts is not None:
        if not dry_run:
            cache.set_provisional(series, state.forming_ts)
        return state.forming_ts
    fetched_previous = previous is not None and any(
        first <= previous <= last for first, last in zip(state.fetched_ts[::2], state.fetched_ts[1::2])
    )
    if fetched_previous and not dry_run:
        cache.set_provisional(series, None)
        return None
    return previous


def _record_warnings(repository: Repository, task: SyncTask, state: SeriesSync) -> None:
    if state.first_revision is not None:
        first_ts, old, new = state.first_revision
        repository.record(ev.BarsRevised(
            task_id=task.task_id, symbol=state.series.symbol, timeframe=state.series.timeframe,
            count=state.revised, first_ts=first_ts, first_old=_bar_values(old), first_new=_bar_values(new),
        ))
        logger.warning("bars revised series=%s %s count=%d first=%s", state.series.symbol,
                       state.series.timeframe, state.revised, format_utc(first_ts))
    if state.first_invalid is not None:
        first_ts, reason = state.first_invalid
        repository.record(ev.InvalidBarsAccepted(
            task_id=task.task_id, symbol=state.series.symbol, timeframe=state.series.timeframe,
            count=state.invalid_accepted, first_ts=first_ts, reason=reason,
        ))


def _bar_values(values: tuple) -> ev.BarValues:
    return ev.BarValues(*(None if np.isnan(value) else value for value in values))
