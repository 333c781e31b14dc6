"""The `csv` source: a directory of TradingView "Export chart data" files.

Each `EXCHANGE_TICKER, TF.csv` file (also `... (1).csv`, as browsers name a
second download) gives one series. Files of one series are merged in the
order of their modification times, so a newer export's bar wins. A file
whose content hash is in the request's skip set was read into this cache
before and is left out.
"""

from collections.abc import AsyncIterator
from pathlib import Path

from ...catalog.series import Series
from ...errors import InvalidOption, TvcatError
from ...i18n import _
from ..config import Config
from ..importers import parse_series_name, read_bar_file
from .base import FetchOutcome, FetchRequest, Page, Source, SymbolNotFound
from .files import hash_file, merge_newest_wins, pages_since


class CsvExportSource(Source):
    """TradingView exports in `directory`, not searched recursively."""

    name = "csv"

    def __init__(self, directory: Path, tz: str | None = None) -> None:
        self.directory = directory
        # The time zone of exports whose times carry no offset, as `tvcat import --tz`.
        self.tz = tz

    def spec(self) -> str:
        return f"csv:{self.directory}"

    def _files_by_series(self) -> dict[Series, list[Path]]:
        if not self.directory.is_dir():
            raise SymbolNotFound(source=self.spec(), symbol="*", timeframe="*", reason=_(
                "the directory does not exist"))
        found: dict[Series, list[Path]] = {}
        for path in sorted(self.directory.glob("*.csv")):
            try:
                symbol, timeframe = parse_series_name(path.name)
            except TvcatError:
                continue
            found.setdefault(Series(symbol, timeframe), []).append(path)
        return found

    async def list_series(self) -> list[Series]:
        return sorted(self._files_by_series())

    async def fetch(self, request: FetchRequest, outcome: FetchOutcome) -> AsyncIterator[Page]:
        paths = self._files_by_series().get(request.series)
        if not paths:
            raise SymbolNotFound(source=self.spec(), symbol=request.series.symbol,
                                 timeframe=request.series.timeframe, reason=_("no export file of this series"))

        parts = []
        for path in sorted(paths, key=lambda candidate: (candidate.stat().st_mtime_ns, candidate.name)):
            file_hash = hash_file(path)
            if file_hash in request.skip_file_hashes:
                continue
            # The engine checks OHLC rules, so that --accept-invalid-bars can keep such bars.
            imported = read_bar_file(path, symbol=request.series.symbol, timeframe=request.series.timeframe,
                                     tz=self.tz, check_high_low=False)
            parts.append(imported.bars)
            outcome.files_read.append((str(path), file_hash))

        for page in pages_since(merge_newest_wins(parts), request.since):
            yield page


def create(argument: str | None, config: Config) -> CsvExportSource:
    """Build the source of the spec `csv:DIR`."""
    if not argument:
        raise InvalidOption(detail=_("the csv source needs a directory: write csv:DIR, such as csv:./exports"))
    return CsvExportSource(Path(argument).expanduser())
