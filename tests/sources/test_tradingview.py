"""Tests of the tradingview source against a server on 127.0.0.1 that replays recorded TradingView frames."""

import json
import logging
import math
import socket
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tvcat.catalog.bars import BarColumns
from tvcat.catalog.series import Series
from tvcat.engine.config.schema import Config, SyncConfig, TradingViewConfig
from tvcat.engine.sources.base import (FetchOutcome, FetchRequest, InvalidSourceData, SourceUnavailable,
                                       SymbolNotFound)
from tvcat.engine.sources.tradingview import TradingViewSource, create
from tvcat.engine.sources.tradingview import protocol
from tvcat.errors import InvalidOption

from .tv_replay_server import ReplayServer, frame, message_frame, read_frames_file, recorded_series

DATA = Path(__file__).resolve().parents[1] / "data" / "tradingview-ws"
# The larger recording is not copied into the repository, so its tests skip in a bare checkout.
SHARED_DATA = (Path(__file__).resolve().parents[2] / "../shared/data").resolve()
SOCKET_MESSAGES = SHARED_DATA / "tradingview-ws" / "tradingview-rs_socket_messages.txt"

HOSE = Series("HOSE:VCB", "60")
TOKEN = "tv-test-token-5b1e07c9d2"
PAGE_BARS = 100
RECONNECT_ATTEMPTS = 2


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def hose_recording():
    messages = json.loads((DATA / "tradingview-rs_events.json").read_text(encoding="utf-8"))
    return recorded_series(messages, "HOSE:VCB")


@pytest.fixture(scope="module")
def socket_messages():
    if not SOCKET_MESSAGES.is_file():
        pytest.skip(f"recorded frames not found at {SOCKET_MESSAGES}")
    return read_frames_file(SOCKET_MESSAGES)


@pytest.fixture
async def server(anyio_backend, hose_recording):
    server = ReplayServer({"HOSE:VCB": hose_recording})
    await server.start()
    yield server
    await server.stop()


def make_source(url: str, *, page_bars: int = PAGE_BARS, timeout_seconds: float = 5.0,
                token: str | None = None) -> TradingViewSource:
    config = TradingViewConfig(url=url, page_bars=page_bars, timeout_seconds=timeout_seconds, token=token)
    return TradingViewSource(config, reconnect_attempts=RECONNECT_ATTEMPTS, reconnect_delay=0.01)


async def fetch_all(source: TradingViewSource, series: Series = HOSE, since: int | None = None):
    """Return the pages of one fetch and its outcome, closing the source afterwards."""
    outcome = FetchOutcome()
    try:
        pages = [page async for page in source.fetch(FetchRequest(series, since=since), outcome)]
    finally:
        await source.aclose()
    return pages, outcome


def recorded_columns(recording) -> BarColumns:
    rows = [(*values, math.nan) if len(values) == 5 else values for values in recording.bars]
    return BarColumns.from_arrays(*zip(*rows))


def merge_pages(pages) -> BarColumns:
    """Join the pages of a fetch and sort the bars by time, keeping duplicates so that checks see them."""
    parts = [page.bars for page in pages]
    joined = BarColumns(*(np.concatenate(columns) for columns in zip(*(part.columns() for part in parts))))
    return joined.take(np.argsort(joined.ts, kind="stable"))


def assert_pages_well_formed(pages) -> None:
    for page in pages:
        assert np.all(np.diff(page.bars.ts) > 0), "a page is not sorted or repeats a time"
    times = np.concatenate([page.bars.ts for page in pages])
    assert len(np.unique(times)) == len(times), "pages repeat a bar"


def exception_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error) + str(error)


# ---------------------------------------------------------------------------
# Fetching


@pytest.mark.anyio
async def test_fetch_returns_recorded_bars(server, hose_recording):
    pages, outcome = await fetch_all(make_source(server.url), since=hose_recording.times[0])

    assert_pages_well_formed(pages)
    assert merge_pages(pages).bit_equal(recorded_columns(hose_recording))
    assert server.methods(0).count("request_more_data") == 2
    assert len(pages) == 4
    assert not any(page.last_bar_forming for page in pages)
    assert outcome.history_exhausted is False
    assert outcome.notes == []


@pytest.mark.anyio
async def test_fetch_keeps_resolved_symbol_info(server, hose_recording):
    _, outcome = await fetch_all(make_source(server.url), since=hose_recording.times[-1])

    info = outcome.info
    assert info.series == HOSE
    assert info.timezone == "Asia/Ho_Chi_Minh"
    assert info.session == "0900-1500"
    assert info.holidays == tuple(hose_recording.resolved["session_holidays"].split(","))
    assert info.holidays[:2] == ("20180101", "20180214")
    assert info.extra["exchange"] == "HOSE"
    assert info.extra["pro_name"] == "HOSE:VCB"


@pytest.mark.anyio
async def test_fetch_sends_chart_requests(server, hose_recording):
    await fetch_all(make_source(server.url), since=hose_recording.times[0])

    first = server.requests[:4]
    assert [method for _, method, _ in first] == [
        "set_auth_token", "chart_create_session", "resolve_symbol", "create_series"]
    assert first[0][2] == ["unauthorized_user_token"]
    session_id = first[1][2][0]
    assert session_id.startswith("cs_")
    assert first[2][2] == [session_id, "sds_sym_1", '={"symbol":"HOSE:VCB","adjustment":"splits"}']
    assert first[3][2] == [session_id, "sds_1", "s1", "sds_sym_1", "60", PAGE_BARS, ""]
    more = [parameters for _, method, parameters in server.requests if method == "request_more_data"]
    assert more == [[session_id, "sds_1", PAGE_BARS]] * 2


@pytest.mark.anyio
async def test_fetch_asks_fewer_bars_for_recent_since(server, hose_recording):
    source = make_source(server.url, page_bars=5000)
    since = int(time.time()) - 20 * 3600

    await fetch_all(source, since=since)

    create = next(parameters for _, method, parameters in server.requests if method == "create_series")
    # 20 hours of 60-minute bars, the bar that contains `since` and one to spare.
    assert create[5] == 22


@pytest.mark.anyio
async def test_forming_bar_comes_last(server, hose_recording):
    server.forming = True
    server.live_close = 57000.0

    pages, _ = await fetch_all(make_source(server.url), since=hose_recording.times[0])

    assert_pages_well_formed(pages)
    assert [page.last_bar_forming for page in pages] == [False] * (len(pages) - 1) + [True]
    last = pages[-1].bars
    assert last.ts[-1] == hose_recording.times[-1]
    assert last.close[-1] == 57000.0
    assert last.high[-1] >= 57000.0
    assert len(merge_pages(pages)) == len(hose_recording.bars)


@pytest.mark.anyio
async def test_heartbeats_are_echoed(server, hose_recording):
    server.heartbeats = True

    pages, _ = await fetch_all(make_source(server.url), since=hose_recording.times[0])

    # One heartbeat before the symbol, the first load and each of two more pages.
    assert server.heartbeat_echoes == ["~h~1", "~h~2", "~h~3", "~h~4"]
    assert merge_pages(pages).bit_equal(recorded_columns(hose_recording))


@pytest.mark.anyio
async def test_history_exhausted_before_since(server, hose_recording):
    since = hose_recording.times[0] - 30 * 86_400

    pages, outcome = await fetch_all(make_source(server.url), since=since)

    assert merge_pages(pages).bit_equal(recorded_columns(hose_recording))
    assert outcome.history_exhausted is True
    assert len(outcome.notes) == 1
    note = outcome.notes[0]
    assert "300 bars" in note
    assert "HOSE:VCB 60" in note
    assert "2025-02-25T07:00:00Z" in note
    assert "2025-03-27T07:00:00Z" in note
    # A request for more bars came back empty before the client gave up.
    assert server.methods(0).count("request_more_data") == 3


@pytest.mark.anyio
async def test_history_exhausted_without_since(server, hose_recording):
    pages, outcome = await fetch_all(make_source(server.url, page_bars=5000))

    assert merge_pages(pages).bit_equal(recorded_columns(hose_recording))
    assert outcome.history_exhausted is True
    assert "300 bars" in outcome.notes[0]
    assert "no older bars" in outcome.notes[0]


# ---------------------------------------------------------------------------
# Errors from the server


@pytest.mark.anyio
async def test_unknown_symbol_raises_symbol_not_found(server):
    with pytest.raises(SymbolNotFound) as raised:
        await fetch_all(make_source(server.url), series=Series("HOSE:NOSUCH", "60"))

    message = str(raised.value)
    assert "tradingview" in message
    assert "HOSE:NOSUCH 60" in message
    assert "invalid symbol" in message


@pytest.mark.anyio
async def test_series_error_raises_symbol_not_found(server):
    server.replies["create_series"] = lambda parameters: message_frame(
        "series_error", [parameters[0], parameters[1], parameters[2], "resolution is not supported"])

    with pytest.raises(SymbolNotFound) as raised:
        await fetch_all(make_source(server.url))

    assert "resolution is not supported" in str(raised.value)


@pytest.mark.anyio
async def test_critical_error_raises_source_unavailable(server):
    server.replies["create_series"] = lambda parameters: message_frame(
        "critical_error", [parameters[0], "internal_error", "create_series"])

    with pytest.raises(SourceUnavailable) as raised:
        await fetch_all(make_source(server.url))

    message = str(raised.value)
    assert "tradingview" in message
    assert "HOSE:VCB 60" in message
    assert "internal_error" in message


@pytest.mark.anyio
async def test_protocol_error_raises_invalid_source_data(server):
    server.replies["create_series"] = lambda parameters: message_frame("protocol_error", ["wrong data"])

    with pytest.raises(InvalidSourceData) as raised:
        await fetch_all(make_source(server.url))

    assert "wrong data" in str(raised.value)
    assert server.connections == 1


def _bars_reply(values: list) -> Callable[[list], str]:
    return lambda parameters: message_frame(
        "timescale_update", [parameters[0], {parameters[1]: {"s": [{"i": 0, "v": values}], "t": parameters[2]}}, {}])


MALFORMED_REPLIES = {
    "length past end": (lambda parameters: '~m~999~m~{"m":"series_loading","p":[]}', "declares 999 characters"),
    "length not a number": (lambda parameters: '~m~12x~m~{"m":"du"}', "invalid frame length"),
    "length too short": (lambda parameters: '~m~5~m~{"m":"du","p":[]}', "no frame ends there"),
    "no frame mark": (lambda parameters: '{"m":"du","p":[]}', "expected the frame mark"),
    "invalid json": (lambda parameters: frame('{"m":"du","p":['), "invalid JSON"),
    "json not an object": (lambda parameters: frame("[1,2,3]"), "not an object"),
    "bar value not a number": (_bars_reply([1750834800, 56700.0, "high", 56600.0, 56600.0]),
                               "invalid high value 'high'"),
    "bar with four values": (_bars_reply([1750834800, 1.0, 2.0, 0.5]), "has 4 values"),
    "bar time not whole": (_bars_reply([1750834800.5, 1.0, 2.0, 0.5, 1.5]), "invalid bar time"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(MALFORMED_REPLIES))
async def test_malformed_message_raises_invalid_source_data(server, case):
    reply, reason = MALFORMED_REPLIES[case]
    server.replies["create_series"] = reply

    with pytest.raises(InvalidSourceData) as raised:
        await fetch_all(make_source(server.url))

    message = str(raised.value)
    assert message.startswith("source tradingview, series HOSE:VCB 60")
    assert reason in message
    # Broken data is not retried.
    assert server.connections == 1


@pytest.mark.anyio
async def test_bar_error_names_bar_time(server):
    server.replies["create_series"] = _bars_reply([1750834800, 56700.0, None, 56600.0, "x"])

    with pytest.raises(InvalidSourceData) as raised:
        await fetch_all(make_source(server.url))

    assert "bar 2025-06-25T07:00:00Z" in str(raised.value)
    assert "invalid close value 'x'" in str(raised.value)


# ---------------------------------------------------------------------------
# Lost connections


@pytest.mark.anyio
@pytest.mark.parametrize(("request_number", "bars_before_cut"), [(1, True), (1, False), (2, True), (2, False)],
                         ids=["first-more-mid-page", "first-more-no-reply", "second-more-mid-page",
                              "second-more-no-reply"])
async def test_disconnect_resumes_without_gaps(server, hose_recording, request_number, bars_before_cut):
    server.cuts[0] = (request_number, bars_before_cut)

    pages, outcome = await fetch_all(make_source(server.url), since=hose_recording.times[0])

    assert server.connections == 2
    assert_pages_well_formed(pages)
    assert merge_pages(pages).bit_equal(recorded_columns(hose_recording))
    assert outcome.history_exhausted is False


@pytest.mark.anyio
async def test_disconnects_twice_then_resumes(server, hose_recording):
    server.cuts[0] = (1, True)
    server.cuts[1] = (2, False)

    pages, _ = await fetch_all(make_source(server.url), since=hose_recording.times[0])

    assert server.connections == 3
    assert_pages_well_formed(pages)
    assert merge_pages(pages).bit_equal(recorded_columns(hose_recording))


@pytest.mark.anyio
async def test_reconnects_used_up_raise_source_unavailable(server):
    server.cut_every_create = True

    with pytest.raises(SourceUnavailable) as raised:
        await fetch_all(make_source(server.url))

    assert server.connections == RECONNECT_ATTEMPTS + 1
    assert "failed 3 times in a row" in str(raised.value)


@pytest.mark.anyio
async def test_silent_server_times_out(server):
    server.replies["create_series"] = lambda parameters: None

    with pytest.raises(SourceUnavailable) as raised:
        await fetch_all(make_source(server.url, timeout_seconds=0.2))

    assert "timed out after 0.2 seconds" in str(raised.value)
    assert server.connections == RECONNECT_ATTEMPTS + 1


@pytest.mark.anyio
async def test_closed_port_raises_source_unavailable(anyio_backend):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(SourceUnavailable) as raised:
        await fetch_all(make_source(f"ws://127.0.0.1:{port}/socket.io/websocket"))

    assert "connection to ws://127.0.0.1:" in str(raised.value)


@pytest.mark.anyio
async def test_stopping_early_closes_connection(server, hose_recording):
    source = make_source(server.url)
    pages = source.fetch(FetchRequest(HOSE, since=hose_recording.times[0]), FetchOutcome())

    first = await anext(pages)
    await pages.aclose()

    assert len(first.bars) == PAGE_BARS - 1
    assert source._connections == set()


# ---------------------------------------------------------------------------
# The token


@pytest.mark.anyio
async def test_token_never_logged_or_raised(server, hose_recording, caplog):
    caplog.set_level(logging.DEBUG)
    errors = []

    pages, _ = await fetch_all(make_source(server.url, token=TOKEN), since=hose_recording.times[0])
    assert len(merge_pages(pages)) == len(hose_recording.bars)
    assert server.tokens == [TOKEN]

    # A server that repeats the token in its error text.
    server.replies["create_series"] = lambda parameters: message_frame(
        "critical_error", [parameters[0], f"token {server.tokens[-1]} expired"])
    with pytest.raises(SourceUnavailable) as raised:
        await fetch_all(make_source(server.url, token=TOKEN))
    errors.append(raised.value)
    assert "token *** expired" in str(raised.value)

    server.replies["create_series"] = lambda parameters: frame(f'{{"m":"du","p":["{server.tokens[-1]}"')
    with pytest.raises(InvalidSourceData) as raised:
        await fetch_all(make_source(server.url, token=TOKEN))
    errors.append(raised.value)

    server.replies.clear()
    server.cut_every_create = True
    with pytest.raises(SourceUnavailable) as raised:
        await fetch_all(make_source(server.url, token=TOKEN))
    errors.append(raised.value)

    assert caplog.records, "the fetches logged nothing, so the check proves nothing"
    assert TOKEN not in caplog.text
    for error in errors:
        assert TOKEN not in exception_text(error)


# ---------------------------------------------------------------------------
# Other recorded sessions


@pytest.mark.anyio
async def test_bars_without_volume_get_nan(anyio_backend, socket_messages):
    recording = recorded_series(socket_messages, "TVC:RUT")
    server = ReplayServer({"TVC:RUT": recording})
    await server.start()
    try:
        pages, outcome = await fetch_all(make_source(server.url, page_bars=1000), Series("TVC:RUT", "1"),
                                         since=recording.times[0])
    finally:
        await server.stop()

    assert_pages_well_formed(pages)
    bars = merge_pages(pages)
    assert len(bars) == 2637
    assert bars.bit_equal(recorded_columns(recording))
    assert np.isnan(bars.volume).all()
    assert outcome.info.timezone == "America/New_York"
    assert outcome.info.session == "0900-1615"


@pytest.mark.anyio
async def test_daily_bars_with_volume(anyio_backend, socket_messages):
    recording = recorded_series(socket_messages, "SP:SPX")
    server = ReplayServer({"SP:SPX": recording})
    server.heartbeats = True
    await server.start()
    try:
        pages, outcome = await fetch_all(make_source(server.url, page_bars=50), Series("SP:SPX", "1D"))
    finally:
        await server.stop()

    assert_pages_well_formed(pages)
    bars = merge_pages(pages)
    assert bars.bit_equal(recorded_columns(recording))
    assert len(bars) == 368
    assert not np.isnan(bars.volume).any()
    assert outcome.history_exhausted is True
    assert outcome.info.session == "0930-1610"


# ---------------------------------------------------------------------------
# Construction and the protocol module


@pytest.mark.anyio
async def test_list_series_is_empty():
    source = make_source("ws://127.0.0.1:9/")

    assert source.name == "tradingview"
    assert await source.list_series() == []


def test_create_uses_sync_config_section():
    section = TradingViewConfig(url="ws://127.0.0.1:9/", page_bars=250)
    source = create(None, Config(sync_config=SyncConfig(tradingview=section)))

    assert isinstance(source, TradingViewSource)
    assert source.config is section


def test_create_rejects_argument():
    with pytest.raises(InvalidOption) as raised:
        create("somewhere", Config())

    assert "somewhere" in str(raised.value)


def test_split_frames_reads_several_frames():
    text = protocol.encode_frame('{"m":"a","p":[]}') + "~m~4~m~~h~7" + protocol.encode_frame("{}")

    assert protocol.split_frames(text) == ['{"m":"a","p":[]}', "~h~7", "{}"]
    assert protocol.is_heartbeat("~h~7")


def test_split_frames_accepts_utf16_lengths():
    payload = '{"d":"\U0001F4C8 chart"}'
    utf16_length = len(payload.encode("utf-16-le")) // 2
    text = f"~m~{utf16_length}~m~{payload}" + protocol.encode_frame("{}")

    assert utf16_length == len(payload) + 1
    assert protocol.split_frames(text) == [payload, "{}"]


def test_encode_message_is_ascii_framing():
    text = protocol.resolve_symbol("cs_x", "sds_sym_1", "HOSE:VCB")

    assert text.isascii()
    assert protocol.split_frames(text) == [text[text.index("{"):]]
    assert json.loads(protocol.split_frames(text)[0])["m"] == "resolve_symbol"


def test_parse_bar_without_volume():
    bar = protocol.parse_bar({"i": 3, "v": [1686340860.0, 1.5, 2.0, 1.0, 1.75]})

    assert bar[:5] == (1686340860, 1.5, 2.0, 1.0, 1.75)
    assert math.isnan(bar[5])
