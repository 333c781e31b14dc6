"""The interface every bar source implements, and the errors a source raises.

A source gives the bars of the series it has, page by page, oldest page first
or newest first as its protocol allows. The sync engine merges the pages,
drops the overlap with what the cache holds, checks the bars and writes them
in batches, so a source only reads and parses.

A third party adds a source by subclassing `Source` and registering a factory
under a name, either with `register_source` or under the `tvcat.sources`
entry-point group of its package.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ...catalog.bars import BarColumns
from ...catalog.series import Series
from ...errors import InvalidInput, NotFound, TvcatError
from ...i18n import N_


@dataclass(frozen=True)
class SeriesInfo:
    """Facts a source gives about a series besides its bars; None where the source gives none."""

    series: Series
    # IANA zone of the exchange, such as America/New_York.
    timezone: str | None = None
    # Trading session in the exchange's zone, in TradingView's form such as `0930-1600`
    # or `0930-1600:23456`; None means the source gave none (treat as 24x7).
    session: str | None = None
    # Dates (YYYYMMDD, exchange zone) with no session.
    holidays: tuple[str, ...] = ()
    # Source-specific descriptive fields worth keeping, such as TradingView's `description`.
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """One batch of bars of one series, sorted by time, with no duplicate times inside the page.

    Pages of one fetch may overlap at their seams; the engine keeps one bar per time.
    """

    bars: BarColumns
    # True when the newest bar of this page is still forming (the live bar of a
    # streaming source, or the last bar of an export cut mid-bar when the source can tell).
    last_bar_forming: bool = False


@dataclass
class FetchRequest:
    """The bars a sync wants: `since` and `until` are bar-open Unix seconds, inclusive and exclusive."""

    series: Series
    # None means as far back as the source goes.
    since: int | None = None
    until: int | None = None
    # Content hashes (blake3 hex) of files already read into this cache; a
    # file-based source skips a file whose hash is here.
    skip_file_hashes: frozenset[str] = frozenset()


@dataclass
class FetchOutcome:
    """Facts a fetch learns on the way, filled in by the source while it yields pages."""

    info: SeriesInfo | None = None
    # True when the source has no bars older than those it gave, such as
    # TradingView's rolling history limit, so `since` could not be reached.
    history_exhausted: bool = False
    notes: list[str] = field(default_factory=list)
    # (path, blake3 hex) of every file a file-based source read, skipped ones excluded.
    files_read: list[tuple[str, str]] = field(default_factory=list)


class Source:
    """A place bars come from. Subclasses set `name` and implement the two methods."""

    name: str = ""

    async def list_series(self) -> list[Series]:
        """Return the series this source offers without a request naming them, such as the files of a directory.

        A source that serves any symbol on request, such as a network
        service, returns the series its configuration names, or [].
        """
        raise NotImplementedError

    def fetch(self, request: FetchRequest, outcome: FetchOutcome) -> AsyncIterator[Page]:
        """Yield pages with the bars of `request.series` from `request.since` on.

        A source may yield bars older than `since` or newer than `until`; the
        engine trims them. Raises SourceUnavailable for a transient failure
        (connection lost, timeout) that a retry may fix, SymbolNotFound when
        the source does not know the series, and InvalidSourceData for data
        it cannot parse, naming source, series, time and value.
        """
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections and files. The default does nothing."""


class SourceUnavailable(TvcatError):
    """A transient source failure: the task is retried with backoff."""

    template = N_("source {source} is unavailable: {reason}")


class SymbolNotFound(NotFound):
    """The source does not know the requested series."""

    template = N_("source {source} has no series {symbol} {timeframe}: {reason}")


class InvalidSourceData(InvalidInput):
    """Data a source returned that cannot be parsed; never retried."""

    template = N_("source {source}, series {symbol} {timeframe}, bar {time}: {reason}")
