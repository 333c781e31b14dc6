"""The `tradingview` source: bars from TradingView's chart websocket, paged back in history.

One fetch opens one websocket with one chart session on it. The client
authenticates, resolves the symbol, creates the series with the newest bars
and then pages back with `request_more_data` until the bars reach
`FetchRequest.since` or the server sends no older bars. Each server reply
ends with `series_completed`, and every reply becomes one page, newest first.

The newest bar is held back and yielded last, in a page of its own with any
bars that opened during the fetch, because it may still be forming and
`du` updates change it while the older pages are loading.

When the connection drops, the client reconnects with backoff, loads the
series again and pages back past the oldest bar it has yielded, so the
pages of all attempts together hold every bar once.
"""

import asyncio
import logging
import secrets
import string
import time
from collections import deque
from collections.abc import AsyncIterator

import websockets
from websockets.asyncio.client import ClientConnection, connect

from ....catalog.bars import BarColumns
from ....catalog.series import Series, timeframe_seconds
from ....errors import InvalidOption
from ....i18n import N_, _
from ...config.checks import redact_url
from ...config.schema import Config, TradingViewConfig
from ...importers.timeparse import format_utc
from ..base import (FetchOutcome, FetchRequest, InvalidSourceData, Page, Source, SourceUnavailable,
                    SymbolNotFound)
from . import protocol
from .protocol import BarError, FrameError

logger = logging.getLogger(__name__)

SOURCE_NAME = "tradingview"
# The token TradingView's own chart sends for a visitor who is not logged in.
ANONYMOUS_TOKEN = "unauthorized_user_token"
# Reconnects after consecutive failures; a page yielded resets the count.
DEFAULT_RECONNECT_ATTEMPTS = 3
# Seconds before the first reconnect, doubled before each further one.
DEFAULT_RECONNECT_DELAY = 1.0
# 20,000 bars with volume take about 2.5 MB of JSON, far above websockets' default limit of 1 MiB.
MAX_MESSAGE_BYTES = 64 * 2**20
CLOSE_TIMEOUT_SECONDS = 2.0
# Minimum bar count of the first request of an incremental fetch.
MIN_INITIAL_BARS = 10

# Each connection has one chart session with one series, so the ids are constants.
SYMBOL_ID = "sds_sym_1"
SERIES_ID = "sds_1"
# TradingView tags the replies to one create_series or modify_series with this id.
TURNAROUND_ID = "s1"
_SESSION_ID_LENGTH = 12

# websockets logs every frame at DEBUG level, and the first frame sent carries
# the auth token. Its frames go to this logger, which stays at INFO unless
# someone sets its level on purpose.
_frame_logger = logging.getLogger(__name__ + ".frames")
_frame_logger.setLevel(logging.INFO)


class InvalidServerMessage(InvalidSourceData):
    """A websocket message from TradingView that breaks the protocol, not tied to one bar."""

    template = N_("source {source}, series {symbol} {timeframe}: invalid message from the server: {reason}")


class _ConnectionLost(Exception):
    """The connection failed or timed out; the fetch may reconnect and resume."""


class TradingViewSource(Source):
    """Bars of any symbol that TradingView serves, read from its chart websocket.

    `config` is the `sync_config.tradingview` section. `reconnect_attempts`
    and `reconnect_delay` bound how a fetch recovers from a lost connection.
    """

    name = SOURCE_NAME

    def __init__(self, config: TradingViewConfig, *, reconnect_attempts: int = DEFAULT_RECONNECT_ATTEMPTS,
                 reconnect_delay: float = DEFAULT_RECONNECT_DELAY) -> None:
        self.config = config
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_delay = reconnect_delay
        self._connections: set[_ChartConnection] = set()

    async def list_series(self) -> list[Series]:
        """Return []: TradingView serves any symbol on request and lists none."""
        return []

    async def fetch(self, request: FetchRequest, outcome: FetchOutcome) -> AsyncIterator[Page]:
        """Yield pages of `request.series`, newest history first and the newest bar last.

        Sets `outcome.info` from `symbol_resolved`. When the server has no bars
        older than those it gave, sets `outcome.history_exhausted` and adds a
        note. Raises SymbolNotFound, InvalidSourceData, and SourceUnavailable
        once reconnects are used up.
        """
        run = _SeriesFetch(self, request, outcome)
        failures = 0
        try:
            while True:
                try:
                    page = await run.next_history_page()
                except _ConnectionLost as lost:
                    await run.disconnect()
                    failures += 1
                    if failures > self.reconnect_attempts:
                        raise SourceUnavailable(source=self.name, reason=_(
                            "the connection for {series} failed {count} times in a row. Last error: {error}"
                        ).format(series=request.series, count=failures, error=lost)) from lost
                    delay = self.reconnect_delay * 2 ** (failures - 1)
                    logger.warning("connection lost, reconnecting series=%s attempt=%d delay=%.2fs error=%s",
                                   request.series, failures, delay, lost)
                    await asyncio.sleep(delay)
                    continue
                if page is None:
                    break
                failures = 0
                yield page

            newest = run.take_newest_bars()
            run.record_exhaustion()
            if newest is not None:
                yield newest
        finally:
            await run.disconnect()

    async def aclose(self) -> None:
        """Close every websocket that a running fetch has open. A second call does nothing."""
        connections = list(self._connections)
        self._connections.clear()
        for connection in connections:
            await connection.close()

    def _token(self) -> str:
        return self.config.token or ANONYMOUS_TOKEN

    def redact(self, text: str) -> str:
        """Return `text` with the configured token masked, for server text that goes into errors."""
        token = self.config.token
        return text.replace(token, "***") if token else text


def create(argument: str | None, config: Config) -> TradingViewSource:
    """Build the source that `primary: tradingview` names, from the whole tvcat configuration."""
    if argument:
        raise InvalidOption(detail=_(
            "the tradingview source takes no argument, but got {argument!r}: "
            "set the server in sync_config.tradingview.url"
        ).format(argument=argument))
    return TradingViewSource(config.sync_config.tradingview)


class _ChartConnection:
    """One websocket to the chart server, with the frames of the last message not read yet."""

    def __init__(self, websocket: ClientConnection) -> None:
        self.websocket = websocket
        self.session_id = "cs_" + "".join(secrets.choice(string.ascii_letters + string.digits)
                                          for _ in range(_SESSION_ID_LENGTH))
        self._payloads: deque[str] = deque()

    @classmethod
    async def open(cls, url: str, origin: str, timeout: float) -> "_ChartConnection":
        """Connect to `url`; raises _ConnectionLost, or SourceUnavailable for a URL that cannot work."""
        try:
            websocket = await connect(
                url, origin=origin, open_timeout=timeout, close_timeout=CLOSE_TIMEOUT_SECONDS,
                max_size=MAX_MESSAGE_BYTES, logger=_frame_logger,
                # NOTE: no proxy, not even one from HTTPS_PROXY, because the
                # configuration has no proxy setting yet.
                proxy=None,
            )
        except websockets.InvalidURI as error:
            raise SourceUnavailable(source=SOURCE_NAME, reason=_(
                "invalid websocket URL {url!r} in sync_config.tradingview.url: {error}"
            ).format(url=redact_url(url), error=error)) from None
        except (OSError, TimeoutError, websockets.WebSocketException) as error:
            raise _ConnectionLost(_("connection to {url} failed: {error}").format(
                url=redact_url(url), error=_describe(error))) from error
        return cls(websocket)

    async def send(self, frame: str) -> None:
        try:
            await self.websocket.send(frame)
        except (OSError, websockets.ConnectionClosed) as error:
            raise _ConnectionLost(_("sending to the server failed: {error}").format(
                error=_describe(error))) from error

    async def receive(self) -> dict:
        """Return the next message, sending heartbeats back and skipping the server's greeting.

        Raises FrameError for a message that breaks the framing and _ConnectionLost
        when the connection closes.
        """
        while True:
            while self._payloads:
                payload = self._payloads.popleft()
                if protocol.is_heartbeat(payload):
                    await self.send(protocol.encode_frame(payload))
                    continue
                message = protocol.decode_payload(payload)
                if "m" in message:
                    return message
            self._payloads.extend(protocol.split_frames(await self._receive_text()))

    async def _receive_text(self) -> str:
        try:
            data = await self.websocket.recv()
        except (OSError, websockets.ConnectionClosed) as error:
            raise _ConnectionLost(_("the connection closed: {error}").format(error=_describe(error))) from error
        if isinstance(data, bytes):
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError as error:
                raise FrameError(_("a binary message is not UTF-8 text: {error}").format(error=error)) from None
        return data

    async def close(self) -> None:
        await self.websocket.close()


class _SeriesFetch:
    """One fetch of one series, with what it has yielded, kept across reconnects.

    The pages yielded so far hold every bar from `yielded_low` to `yielded_high`
    once. Older pages extend that range down, and the last page contains the bars
    after `yielded_high`, so no attempt yields a bar twice or skips one.
    """

    def __init__(self, source: TradingViewSource, request: FetchRequest, outcome: FetchOutcome) -> None:
        self.source = source
        self.config = source.config
        self.request = request
        self.outcome = outcome
        self.series = request.series
        self.connection: _ChartConnection | None = None
        # Bars of the current connection by bar-open time, updated by every reply.
        self.bars: dict[int, tuple[float, ...]] = {}
        self.bar_close_time: int | None = None
        self.yielded_low: int | None = None
        self.yielded_high: int | None = None
        self.yielded_count = 0
        self.exhausted = False

    # -- paging ------------------------------------------------------------

    async def next_history_page(self) -> Page | None:
        """Return the next page of bars older than those yielded, or None when paging is done.

        Connects first when no connection is open. Raises _ConnectionLost,
        SymbolNotFound, InvalidSourceData or SourceUnavailable.
        """
        if self.connection is None:
            await self._connect()
        while True:
            page = self._take_older_bars()
            if page is not None:
                return page
            if self._reached_since():
                return None
            if not await self._request_more():
                self.exhausted = True
                return None

    def _take_older_bars(self) -> Page | None:
        if not self.bars:
            return None
        newest = max(self.bars)
        times = [ts for ts in self.bars
                 if ts != newest and (self.yielded_low is None or ts < self.yielded_low)]
        if not times:
            return None
        times.sort()
        self.yielded_low = times[0]
        if self.yielded_high is None:
            self.yielded_high = times[-1]
        return self._page(times, last_bar_forming=False)

    def take_newest_bars(self) -> Page | None:
        """Return the page of bars after those yielded, its newest bar marked when still forming."""
        times = sorted(ts for ts in self.bars if self.yielded_high is None or ts > self.yielded_high)
        if not times:
            return None
        if self.yielded_low is None:
            self.yielded_low = times[0]
        self.yielded_high = times[-1]
        return self._page(times, last_bar_forming=self._is_forming(times[-1]))

    def _page(self, times: list[int], last_bar_forming: bool) -> Page:
        self.yielded_count += len(times)
        rows = [(ts, *self.bars[ts]) for ts in times]
        bars = BarColumns.from_arrays(*zip(*rows))
        return Page(bars=bars, last_bar_forming=last_bar_forming)

    def _is_forming(self, newest: int) -> bool:
        """Tell whether the bar opening at `newest` has not closed yet on this feed."""
        now = time.time()
        if self.bar_close_time is not None:
            return now < self.bar_close_time
        # NOTE: without `lbs.bar_close_time`, the close is estimated from the
        # timeframe's nominal length, which is 30 days for a month.
        return now < newest + timeframe_seconds(self.series.timeframe)

    def _reached_since(self) -> bool:
        since = self.request.since
        return since is not None and bool(self.bars) and min(self.bars) <= since

    def record_exhaustion(self) -> None:
        """Set history_exhausted and add a note when the server ran out of older bars."""
        if not self.exhausted:
            return
        self.outcome.history_exhausted = True
        if self.yielded_low is None:
            note = _("TradingView returned no bars for {series}").format(series=self.series)
        elif self.request.since is None:
            note = _(
                "TradingView returned {count} bars for {series}, back to {oldest}, and has no older bars: "
                "it serves only a rolling window of history"
            ).format(count=self.yielded_count, series=self.series, oldest=format_utc(self.yielded_low))
        else:
            newest = self.yielded_high if self.yielded_high is not None else self.yielded_low
            expected = (newest - self.request.since) // timeframe_seconds(self.series.timeframe) + 1
            note = _(
                "TradingView returned {count} bars for {series}, back to {oldest}, but the request asked "
                "for bars from {since} on (up to {expected} bars): it serves only a rolling window of history"
            ).format(count=self.yielded_count, series=self.series, oldest=format_utc(self.yielded_low),
                     since=format_utc(self.request.since), expected=expected)
        self.outcome.notes.append(note)
        logger.info("history exhausted series=%s bars=%d oldest=%s", self.series, self.yielded_count,
                    self.yielded_low)

    # -- connection ----------------------------------------------------------

    async def _connect(self) -> None:
        self.bars = {}
        self.bar_close_time = None
        connection = await _ChartConnection.open(self.config.url, self.config.origin, self.config.timeout_seconds)
        self.connection = connection
        self.source._connections.add(connection)
        logger.info("connected url=%s series=%s session=%s", redact_url(self.config.url), self.series,
                    connection.session_id)

        session = connection.session_id
        await connection.send(protocol.set_auth_token(self.source._token()))
        await connection.send(protocol.chart_create_session(session))
        await connection.send(protocol.resolve_symbol(session, SYMBOL_ID, self.series.symbol))
        await connection.send(protocol.create_series(session, SERIES_ID, TURNAROUND_ID, SYMBOL_ID,
                                                     self.series.timeframe, self._initial_bar_count()))
        await self._await_completion()

    def _initial_bar_count(self) -> int:
        """Return the bar count of the first request: page_bars, or fewer when `since` is recent."""
        page_bars = self.config.page_bars
        if self.request.since is None:
            return page_bars
        span = max(0, int(time.time()) - self.request.since)
        # Bars from the one that contains `since` to the forming one, plus one to spare.
        needed = span // timeframe_seconds(self.series.timeframe) + 2
        return max(MIN_INITIAL_BARS, min(page_bars, needed))

    async def _request_more(self) -> bool:
        """Ask for page_bars older bars and return whether any arrived."""
        oldest_before = min(self.bars) if self.bars else None
        await self.connection.send(protocol.request_more_data(self.connection.session_id, SERIES_ID,
                                                              self.config.page_bars))
        await self._await_completion()
        # NOTE: this relies on the server sending series_completed even when it
        # has no older bars. If it sent nothing, the wait would time out and
        # count as a lost connection.
        return bool(self.bars) and (oldest_before is None or min(self.bars) < oldest_before)

    async def disconnect(self) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        self.source._connections.discard(connection)
        await connection.close()

    # -- server messages -------------------------------------------------------

    async def _await_completion(self) -> None:
        """Read messages until `series_completed` of the series, taking in bars and symbol details."""
        seconds = self.config.timeout_seconds
        try:
            async with asyncio.timeout(seconds):
                while not self._handle(await self.connection.receive()):
                    pass
        except TimeoutError as error:
            raise _ConnectionLost(_("timed out after {seconds} seconds waiting for a reply").format(
                seconds=seconds)) from error
        except FrameError as error:
            raise self._invalid_message(str(error)) from None

    def _handle(self, message: dict) -> bool:
        """Apply one server message; return True when it completes the pending request.

        The connection has one chart session, so every chart message on it
        belongs to this fetch.
        """
        method = message.get("m")
        parameters = message.get("p")
        if not isinstance(parameters, list):
            raise self._invalid_message(_("message {method!r} has no parameter list").format(method=method))

        if method in ("timescale_update", "du"):
            self._take_update(parameters)
        elif method == "symbol_resolved":
            if len(parameters) >= 3 and parameters[1] == SYMBOL_ID:
                self.outcome.info = protocol.parse_symbol_info(self.series, parameters[2])
        elif method == "series_completed":
            if len(parameters) >= 2 and parameters[1] == SERIES_ID:
                logger.debug("series completed series=%s status=%s bars=%d", self.series,
                             parameters[2] if len(parameters) > 2 else None, len(self.bars))
                return True
        elif method == "symbol_error":
            raise SymbolNotFound(source=SOURCE_NAME, symbol=self.series.symbol, timeframe=self.series.timeframe,
                                 reason=_("the server rejected the symbol: {detail}").format(
                                     detail=self._server_detail(parameters[2:])))
        elif method == "series_error":
            raise SymbolNotFound(source=SOURCE_NAME, symbol=self.series.symbol, timeframe=self.series.timeframe,
                                 reason=_("the server could not create the series: {detail}").format(
                                     detail=self._server_detail(parameters[3:] or parameters[1:])))
        elif method == "critical_error":
            detail = self._server_detail(parameters[1:])
            logger.warning("critical error from server series=%s detail=%s", self.series, detail)
            raise SourceUnavailable(source=SOURCE_NAME, reason=_(
                "the server reported a critical error for {series}: {detail}"
            ).format(series=self.series, detail=detail))
        elif method == "protocol_error":
            raise self._invalid_message(_("the server rejected a request with a protocol error: {detail}").format(
                detail=self._server_detail(parameters)))
        return False

    def _take_update(self, parameters: list) -> None:
        try:
            update = protocol.parse_series_update(parameters, SERIES_ID)
        except BarError as error:
            time_text = format_utc(error.time) if error.time is not None else "?"
            raise InvalidSourceData(source=SOURCE_NAME, symbol=self.series.symbol, timeframe=self.series.timeframe,
                                    time=time_text, reason=self.source.redact(error.reason)) from None
        if update is None:
            return
        for ts, *values in update.bars:
            self.bars[ts] = tuple(values)
        if update.bar_close_time is not None:
            self.bar_close_time = update.bar_close_time

    def _invalid_message(self, reason: str) -> InvalidServerMessage:
        return InvalidServerMessage(source=SOURCE_NAME, symbol=self.series.symbol,
                                    timeframe=self.series.timeframe, reason=self.source.redact(reason))

    def _server_detail(self, values: list) -> str:
        """Return the text parameters of a server error, joined, with the token masked."""
        text = "; ".join(str(value) for value in values if isinstance(value, (str, int, float)))
        return self.source.redact(text) or _("no detail given")


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__

