"""`tvcat sync --source tradingview` end to end: config, engine, cache and gaps against the replay server."""

import asyncio
import json
import threading
from pathlib import Path

import pytest

from .tv_replay_server import ReplayServer, recorded_series

DATA = Path(__file__).resolve().parents[1] / "data" / "tradingview-ws"


@pytest.fixture
def replay_url():
    """The URL of a replay server of the recorded HOSE:VCB session, running in its own thread."""
    messages = json.loads((DATA / "tradingview-rs_events.json").read_text(encoding="utf-8"))
    server = ReplayServer({"HOSE:VCB": recorded_series(messages, "HOSE:VCB")})
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    yield server.url, server
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_sync_tradingview_into_cache(cli, replay_url):
    url, server = replay_url
    settings = {"TVCAT_SYNC_CONFIG__TRADINGVIEW__URL": url, "TVCAT_SYNC_CONFIG__TRADINGVIEW__PAGE_BARS": "100"}

    first = cli("sync", "--source", "tradingview", "--target", "cache", "--symbols", "HOSE:VCB",
                "--timeframes", "60", "--json", env=settings)
    second = cli("sync", "--source", "tradingview", "--target", "cache", "--symbols", "HOSE:VCB",
                 "--timeframes", "60", "--json", env=settings)
    gaps = cli("gaps", "HOSE:VCB", "60", "--json")

    assert first.returncode == 0, first.stderr
    [series] = json.loads(first.stdout)["series"]
    assert series["bars_inserted"] == 300
    assert series["history_exhausted"] is True
    assert second.returncode == 0, second.stderr
    [again] = json.loads(second.stdout)["series"]
    assert again["bars_inserted"] == 0
    assert again["bars_revised"] == 0
    assert gaps.returncode == 0, gaps.stderr
    session = json.loads(gaps.stdout)["session"]
    assert session["timezone"] == "Asia/Ho_Chi_Minh"
    assert session["source"] == "tradingview"
    assert server.connections == 2
