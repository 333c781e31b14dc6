"""A websocket server on 127.0.0.1 that replies to TradingView's chart protocol with recorded frames.

The frames come from real TradingView sessions. The server re-labels them
with the session, symbol and series ids that the client chose, serves the
newest bars of the recorded series for `create_series`, and older slices of
it for each `request_more_data`, so a client has to page. Switches on the
server add heartbeats, a forming newest bar, cut connections and replies
that replace the normal ones, and the server records what the client sent.

Its parser of client frames is separate from the client's, so a framing bug
in the client cannot hide itself.
"""

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from websockets.asyncio.server import ServerConnection, serve

# The server's frame logs would contain the client's token, so they stay off.
_server_logger = logging.getLogger("tv_replay_server")
_server_logger.setLevel(logging.WARNING)

_FRAME_HEADER = re.compile(r"~m~(\d+)~m~")


def frame(payload: str) -> str:
    """Wrap a payload in one `~m~LEN~m~` frame."""
    return f"~m~{len(payload)}~m~{payload}"


def message_frame(method: str, parameters: list) -> str:
    return frame(json.dumps({"m": method, "p": parameters}, separators=(",", ":")))


def split_frames(text: str) -> list[str]:
    """Return the payloads of a well-formed websocket message.

    The client sends only ASCII, so a length in characters needs no UTF-16 rule.
    """
    payloads = []
    position = 0
    while position < len(text):
        header = _FRAME_HEADER.match(text, position)
        if header is None:
            raise ValueError(f"client sent a message that is not framed at character {position}: {text[:80]!r}")
        start = header.end()
        end = start + int(header[1])
        payloads.append(text[start:end])
        position = end
    return payloads


def read_frames_file(path: Path) -> list[dict]:
    """Return the messages of a file of concatenated frames, as socket_messages.txt is."""
    return [json.loads(payload) for payload in split_frames(path.read_text(encoding="utf-8"))]


@dataclass
class RecordedSeries:
    """One recorded chart session: a symbol, its description and its bars."""

    symbol: str
    # The third parameter of symbol_resolved.
    resolved: dict
    # The bar lists `[ts, open, high, low, close(, volume)]`, oldest first.
    bars: list[list[float]]
    # The other messages of the session in recorded order, symbol_resolved left out.
    # The message with the bars is kept and gets the served slice in its place.
    frames: list[dict]
    session_id: str
    symbol_id: str
    series_id: str
    turnaround_id: str

    @property
    def times(self) -> list[int]:
        return [int(values[0]) for values in self.bars]


def recorded_series(messages: list[dict], symbol: str) -> RecordedSeries:
    """Return the chart session of `messages` whose symbol_resolved names `symbol` as pro_name."""
    resolved = next(message for message in messages if message["m"] == "symbol_resolved"
                    and message["p"][2].get("pro_name") == symbol)
    session_id, symbol_id, description = resolved["p"]
    session = [message for message in messages
               if message["p"] and message["p"][0] == session_id and message is not resolved]

    for message in session:
        if message["m"] != "timescale_update":
            continue
        for series_id, entry in message["p"][1].items():
            if entry.get("s"):
                bars = [bar["v"] for bar in entry["s"]]
                return RecordedSeries(symbol=symbol, resolved=description, bars=bars, frames=session,
                                      session_id=session_id, symbol_id=symbol_id, series_id=series_id,
                                      turnaround_id=entry["t"])
    raise ValueError(f"the recording of {symbol} has no bars")


def _relabel(value, names: dict[str, str]):
    """Return `value` with every string equal to a key of `names` (dict keys too) replaced."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [_relabel(item, names) for item in value]
    if isinstance(value, dict):
        return {names.get(key, key): _relabel(item, names) for key, item in value.items()}
    return value


@dataclass
class _ClientSession:
    """The ids that the client of one connection chose, and the slice of bars served to it."""

    number: int
    session_id: str | None = None
    symbol_id: str | None = None
    series_id: str | None = None
    turnaround_id: str | None = None
    recording: RecordedSeries | None = None
    # Index in recording.bars of the oldest bar served so far.
    served_from: int = 0
    more_requests: int = 0
    heartbeats_sent: int = 0


@dataclass
class ReplayServer:
    """The replay server. Set the switches before the client connects and read the records afterwards."""

    recordings: dict[str, RecordedSeries]

    # Switches.
    # Send a heartbeat before every reply.
    heartbeats: bool = False
    # Report the newest bar as closing an hour from now.
    forming: bool = False
    # After the first load, send a `du` that changes the newest bar's close to this value.
    live_close: float | None = None
    # Connection number -> the request_more_data (counted from 1) at which the connection
    # is cut, and whether the bars of that reply are sent before the cut.
    cuts: dict[int, tuple[int, bool]] = field(default_factory=dict)
    # Cut every connection when its client sends create_series.
    cut_every_create: bool = False
    # Method -> a function of the request's parameters returning the raw websocket
    # message sent in place of the normal reply, or None to send no reply at all.
    replies: dict[str, Callable[[list], str | None]] = field(default_factory=dict)

    # Records.
    connections: int = 0
    tokens: list[str] = field(default_factory=list)
    requests: list[tuple[int, str, list]] = field(default_factory=list)
    heartbeat_echoes: list[str] = field(default_factory=list)

    url: str = ""
    _server: object = None

    async def start(self) -> None:
        self._server = await serve(self._serve_connection, "127.0.0.1", 0, logger=_server_logger,
                                   max_size=None, compression=None)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/socket.io/websocket"

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    def methods(self, connection: int | None = None) -> list[str]:
        """Return the methods the client sent, on one connection or on all."""
        return [method for number, method, _ in self.requests if connection is None or number == connection]

    async def _serve_connection(self, websocket: ServerConnection) -> None:
        session = _ClientSession(number=self.connections)
        self.connections += 1
        # A greeting without `m` in place of the real server's first frame, which the recordings lack.
        await websocket.send(frame(json.dumps({
            "session_id": f"<0.{session.number}.1>_replay", "timestamp": int(time.time()),
            "release": "replay", "protocol": "json",
        })))
        try:
            async for text in websocket:
                for payload in split_frames(text):
                    if payload.startswith("~h~"):
                        self.heartbeat_echoes.append(payload)
                        continue
                    message = json.loads(payload)
                    if not await self._answer(websocket, session, message["m"], message["p"]):
                        return
        except websockets.ConnectionClosed:
            return

    async def _answer(self, websocket: ServerConnection, session: _ClientSession, method: str,
                      parameters: list) -> bool:
        """Reply to one client message and return False when the connection was cut."""
        self.requests.append((session.number, method, parameters))
        if method == "set_auth_token":
            self.tokens.append(parameters[0])
        elif method == "chart_create_session":
            session.session_id = parameters[0]
        elif method == "resolve_symbol":
            session.symbol_id = parameters[1]
            session.recording = self.recordings.get(json.loads(parameters[2][1:])["symbol"])

        if method in self.replies:
            reply = self.replies[method](parameters)
            if reply is not None:
                await self._send_heartbeat(websocket, session)
                await websocket.send(reply)
            return True

        if method == "resolve_symbol":
            await self._send_heartbeat(websocket, session)
            if session.recording is None:
                await websocket.send(message_frame("symbol_error", [session.session_id, session.symbol_id,
                                                                    "invalid symbol"]))
            else:
                await websocket.send(message_frame("symbol_resolved", [session.session_id, session.symbol_id,
                                                                       session.recording.resolved]))
        elif method == "create_series":
            if self.cut_every_create:
                websocket.transport.close()
                return False
            session.series_id, session.turnaround_id = parameters[1], parameters[2]
            if session.recording is None:
                await websocket.send(message_frame("series_error", [session.session_id, session.series_id,
                                                                    session.turnaround_id, "resolve error"]))
                return True
            await self._send_first_load(websocket, session, count=parameters[5])
        elif method == "request_more_data":
            return await self._send_more(websocket, session, count=parameters[2])
        return True

    async def _send_first_load(self, websocket: ServerConnection, session: _ClientSession, count: int) -> None:
        """Replay the recorded session with the newest `count` bars in place of the recorded ones."""
        recording = session.recording
        session.served_from = max(0, len(recording.bars) - count)
        names = {recording.session_id: session.session_id, recording.symbol_id: session.symbol_id,
                 recording.series_id: session.series_id, recording.turnaround_id: session.turnaround_id}
        frames = []
        for message in recording.frames:
            entry = message["p"][1].get(recording.series_id) if message["m"] == "timescale_update" else None
            if entry is not None and entry.get("s"):
                frames.append(self._bars_frame(session, session.served_from, len(recording.bars), entry))
            else:
                frames.append(message_frame(message["m"], _relabel(message["p"], names)))
        await self._send_heartbeat(websocket, session)
        await websocket.send("".join(frames))

        if self.live_close is not None:
            await websocket.send(self._live_update_frame(session))

    async def _send_more(self, websocket: ServerConnection, session: _ClientSession, count: int) -> bool:
        session.more_requests += 1
        cut = self.cuts.get(session.number)
        start = max(0, session.served_from - count)
        bars_frame = None
        if start < session.served_from:
            bars_frame = self._bars_frame(session, start, session.served_from, self._recorded_entry(session))
        completed = message_frame("series_completed", [session.session_id, session.series_id, "streaming",
                                                       session.turnaround_id, {"rt_update_period": 5}])

        if cut is not None and cut[0] == session.more_requests:
            if cut[1] and bars_frame is not None:
                await websocket.send(bars_frame)
            websocket.transport.close()
            return False

        session.served_from = start
        await self._send_heartbeat(websocket, session)
        await websocket.send((bars_frame or "") + completed)
        return True

    def _recorded_entry(self, session: _ClientSession) -> dict:
        for message in session.recording.frames:
            if message["m"] == "timescale_update":
                entry = message["p"][1].get(session.recording.series_id)
                if entry is not None and entry.get("s"):
                    return entry
        raise AssertionError("the recording has no bars")

    def _bars_frame(self, session: _ClientSession, start: int, stop: int, entry: dict) -> str:
        """Return a timescale_update with the recorded bars start..stop, re-labelled for the client."""
        bars = session.recording.bars[start:stop]
        series_entry = {key: value for key, value in entry.items() if key != "s"}
        series_entry["s"] = [{"i": start + offset, "v": values} for offset, values in enumerate(bars)]
        series_entry["t"] = session.turnaround_id
        if self.forming:
            series_entry["lbs"] = {"bar_close_time": int(time.time()) + 3600}
        time_scale = {"index": start, "zoffset": 0, "changes": [values[0] for values in bars],
                      "marks": [], "index_diff": []}
        return message_frame("timescale_update", [session.session_id, {session.series_id: series_entry},
                                                  time_scale])

    def _live_update_frame(self, session: _ClientSession) -> str:
        newest = list(session.recording.bars[-1])
        newest[4] = self.live_close
        newest[2] = max(newest[2], self.live_close)
        newest[3] = min(newest[3], self.live_close)
        entry = {"s": [{"i": len(session.recording.bars) - 1, "v": newest}],
                 "ns": {"d": "", "indexes": "nochange"}, "t": session.turnaround_id}
        if self.forming:
            entry["lbs"] = {"bar_close_time": int(time.time()) + 3600}
        return message_frame("du", [session.session_id, {session.series_id: entry}])

    async def _send_heartbeat(self, websocket: ServerConnection, session: _ClientSession) -> None:
        if self.heartbeats:
            session.heartbeats_sent += 1
            await websocket.send(frame(f"~h~{session.heartbeats_sent}"))
