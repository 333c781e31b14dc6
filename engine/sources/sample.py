"""The `sample` source: the real EURUSD hourly bars bundled with tvcat, the default primary source."""

from collections.abc import AsyncIterator

from ...catalog.series import Series
from ...i18n import _
from ..config import Config
from ..importers import read_bar_file
from ..quickstart import SAMPLE_FILE, SAMPLE_SYMBOL, SAMPLE_TIMEFRAME, SAMPLE_ZONE
from .base import FetchOutcome, FetchRequest, Page, Source, SymbolNotFound
from .files import hash_file, pages_since

SAMPLE_SERIES = Series(SAMPLE_SYMBOL, SAMPLE_TIMEFRAME)


class SampleSource(Source):
    """One series, FX:EURUSD 60, read from the MetaTrader export in the package."""

    name = "sample"

    async def list_series(self) -> list[Series]:
        return [SAMPLE_SERIES]

    async def fetch(self, request: FetchRequest, outcome: FetchOutcome) -> AsyncIterator[Page]:
        if request.series != SAMPLE_SERIES:
            raise SymbolNotFound(source="sample", symbol=request.series.symbol, timeframe=request.series.timeframe,
                                 reason=_("the sample has only {symbol} {timeframe}").format(
                                     symbol=SAMPLE_SYMBOL, timeframe=SAMPLE_TIMEFRAME))
        file_hash = hash_file(SAMPLE_FILE)
        if file_hash in request.skip_file_hashes:
            return
        imported = read_bar_file(SAMPLE_FILE, symbol=SAMPLE_SYMBOL, timeframe=SAMPLE_TIMEFRAME, tz=SAMPLE_ZONE)
        outcome.files_read.append((str(SAMPLE_FILE), file_hash))
        for page in pages_since(imported.bars, request.since):
            yield page


def create(argument: str | None, config: Config) -> SampleSource:
    """Build the source of the spec `sample`; an argument is ignored."""
    return SampleSource()
