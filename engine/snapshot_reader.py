"""Consistent bulk reads of the bar cache, served by a child process.

A backup reads the cache inside one read transaction through the ADBC
SQLite driver, which returns Arrow columns several times faster than
sqlite3 returns rows. That driver links its own copy of SQLite, and two
SQLite libraries must not hold one database open in the same process.
POSIX locks belong to the process, so the library that closes last believes
it is alone and deletes the WAL under the other. The reads therefore run in
a child process (`python -m tvcat.engine.snapshot_reader`) that opens the
cache read-only and nothing else. The parent, which may keep sqlite3
connections to the cache, never loads the driver. The child also reads while the parent encodes, which keeps a second
core busy.

Protocol over a socket pair wrapped in multiprocessing Connections, one
request at a time: the parent sends a tuple and the child answers with one
pickled message. For `stream` the child answers instead with raw byte
messages, to spare pickling the columns: b"B" and one batch (u64 bar count,
then ts as int64 and the five value columns as float64, native byte order),
as many as needed, then b"Z". An exception in the child is sent back as
("error", text), or b"E" and the text during a stream, and raised in the
parent as SnapshotReadFailed.
"""

import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Iterator

import numpy as np

from ..catalog.bars import BarColumns, concat
from ..catalog.series import Series
from ..errors import TvcatError
from ..i18n import N_

# Bars fetched per Arrow batch and sent to the parent in one message.
READ_BATCH_ROWS = 65_536
_BATCH, _END, _ERROR = b"B", b"Z", b"E"
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_BAR_QUERY = (
    "SELECT ts, open, high, low, close, volume FROM bars "
    "WHERE symbol = ? AND timeframe = ? AND ts >= ? AND ts < ? ORDER BY ts"
)

class SnapshotReadFailed(TvcatError):
    template = N_("reading the cache snapshot failed: {detail}")


class CacheSnapshot:
    """Reads of one cache state, served by the child process of `open_snapshot`."""

    def __init__(self, connection) -> None:
        self._connection = connection
        self._ready = False

    def _wait_ready(self) -> None:
        """Wait for the child's first message, sent once its read transaction is open."""
        if self._ready:
            return
        ready = self._receive()
        if ready != "ready":
            raise SnapshotReadFailed(detail=repr(ready))
        self._ready = True

    def _request(self, *message):
        self._wait_ready()
        self._connection.send(message)
        return self._receive()

    def _receive(self):
        try:
            reply = self._connection.recv()
        except EOFError as error:
            raise SnapshotReadFailed(detail="the reader process exited") from error
        if isinstance(reply, tuple) and len(reply) == 2 and isinstance(reply[0], str) and reply[0] == "error":
            raise SnapshotReadFailed(detail=reply[1])
        return reply

    def list_series(self) -> list[Series]:
        return [Series(symbol, timeframe) for symbol, timeframe in self._request("list_series")]

    def changed_windows(self, after_seq: int) -> dict[Series, list[int]]:
        """Return the windows whose change_seq is greater than `after_seq`, by series."""
        changed: dict[Series, list[int]] = {}
        for symbol, timeframe, start in self._request("changed_windows", after_seq):
            changed.setdefault(Series(symbol, timeframe), []).append(start)
        return changed

    def stream_bars(self, series: Series, start: int = INT64_MIN, stop: int = INT64_MAX) -> Iterator[BarColumns]:
        """Yield the bars of `series` with start <= ts < stop in sorted batches.

        The generator must be consumed to the end before the next request.
        """
        self._wait_ready()
        self._connection.send(("stream", series.symbol, series.timeframe, start, stop))
        while True:
            try:
                message = self._connection.recv_bytes()
            except EOFError as error:
                raise SnapshotReadFailed(detail="the reader process exited") from error
            tag = message[:1]
            if tag == _END:
                return
            if tag == _ERROR:
                raise SnapshotReadFailed(detail=message[1:].decode("utf-8", "replace"))
            yield _decode_batch(message)

    def read_bars(self, series: Series, start: int = INT64_MIN, stop: int = INT64_MAX) -> BarColumns:
        return concat(list(self.stream_bars(series, start, stop)))


@contextmanager
def open_snapshot(path: Path) -> Iterator[CacheSnapshot]:
    """Start a reader process holding one read transaction on the cache at `path`.

    Returns at once, so the caller can work while the child starts; the
    first request waits until the child's transaction is open. Changes the
    caller commits before this call are in the snapshot. The child is
    started with subprocess rather than multiprocessing, so it never
    re-imports the caller's main module.
    """
    parent_socket, child_socket = socket.socketpair()
    process = subprocess.Popen(
        [sys.executable, "-m", "tvcat.engine.snapshot_reader", str(path), str(child_socket.fileno())],
        pass_fds=[child_socket.fileno()],
    )
    child_socket.close()
    parent_end = Connection(parent_socket.detach())
    try:
        yield CacheSnapshot(parent_end)
    finally:
        try:
            parent_end.send(("close",))
        except (BrokenPipeError, OSError):
            pass
        parent_end.close()
        # The child exits as soon as it reads the close request or the end
        # of the socket, so a blocking wait is short and avoids the polling
        # sleeps of wait(timeout=...).
        process.wait()


def serve(path: str, connection) -> None:
    """Serve read requests inside one read transaction until a close request or the end of the socket."""
    import adbc_driver_sqlite.dbapi as adbc

    try:
        database = adbc.connect(f"file:{path}?mode=ro")
        cursor = database.cursor()
        cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(READ_BATCH_ROWS)})
        # The first statement of the ADBC transaction fixes the snapshot.
        cursor.execute("SELECT change_seq FROM cache_meta WHERE id = 1")
        cursor.fetchall()
    except Exception as error:  # Reported to the parent, which raises it.
        connection.send(("error", f"{type(error).__name__}: {error}"))
        return
    connection.send("ready")

    try:
        while True:
            try:
                request = connection.recv()
            except EOFError:
                return
            if request[0] == "close":
                return
            try:
                _answer(cursor, connection, request)
            except Exception as error:  # Reported to the parent, which raises it.
                connection.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        database.rollback()
        database.close()


def _answer(cursor, connection, request: tuple) -> None:
    kind = request[0]
    if kind == "list_series":
        connection.send(_list_series(cursor))
    elif kind == "changed_windows":
        cursor.execute(
            "SELECT symbol, timeframe, window_start FROM window_changes WHERE change_seq > ? "
            "ORDER BY symbol, timeframe, window_start",
            (request[1],),
        )
        connection.send(cursor.fetchall())
    elif kind == "stream":
        try:
            cursor.execute(_BAR_QUERY, request[1:])
            for batch in cursor.fetch_record_batch():
                if batch.num_rows:
                    connection.send_bytes(_encode_batch(_batch_columns(batch)))
        except Exception as error:  # Reported to the parent, which raises it.
            connection.send_bytes(_ERROR + f"{type(error).__name__}: {error}".encode("utf-8"))
            return
        connection.send_bytes(_END)
    else:
        raise ValueError(f"unknown request {kind!r}")


def _scalar(cursor, query: str, parameters: tuple = ()):
    cursor.execute(query, parameters)
    rows = cursor.fetchall()
    return rows[0][0] if rows else None


def _list_series(cursor) -> list[tuple[str, str]]:
    """Return every (symbol, timeframe) in key order, one index seek per series.

    SELECT DISTINCT would read every bar; min() over a key prefix is a seek.
    """
    found = []
    symbol = _scalar(cursor, "SELECT min(symbol) FROM bars")
    while symbol is not None:
        timeframe = _scalar(cursor, "SELECT min(timeframe) FROM bars WHERE symbol = ?", (symbol,))
        while timeframe is not None:
            found.append((symbol, timeframe))
            timeframe = _scalar(
                cursor, "SELECT min(timeframe) FROM bars WHERE symbol = ? AND timeframe > ?", (symbol, timeframe)
            )
        symbol = _scalar(cursor, "SELECT min(symbol) FROM bars WHERE symbol > ?", (symbol,))
    return found


def _encode_batch(columns: tuple[np.ndarray, ...]) -> bytes:
    count = np.array([len(columns[0])], dtype=np.uint64)
    return b"".join([_BATCH, count.tobytes(), *(column.tobytes() for column in columns)])


def _decode_batch(message: bytes) -> BarColumns:
    """Return the columns of a b"B" message as read-only views into it."""
    buffer = memoryview(message)
    count = int(np.frombuffer(buffer, dtype=np.uint64, count=1, offset=1)[0])
    if len(message) != 9 + 48 * count:
        raise SnapshotReadFailed(detail=f"batch of {len(message)} bytes for {count} bars")
    offset = 9
    ts = np.frombuffer(buffer, dtype=np.int64, count=count, offset=offset)
    values = []
    for index in range(5):
        offset += 8 * count
        values.append(np.frombuffer(buffer, dtype=np.float64, count=count, offset=offset))
    return BarColumns(ts, *values)


def _batch_columns(batch) -> tuple[np.ndarray, ...]:
    import pyarrow as pa

    # A column that is NULL in every row of a batch arrives as int64 or null type.
    columns = [np.ascontiguousarray(batch.column(0).to_numpy(zero_copy_only=False), dtype=np.int64)]
    for index in range(1, 6):
        column = batch.column(index)
        if column.type != pa.float64():
            column = column.cast(pa.float64())
        columns.append(np.ascontiguousarray(column.to_numpy(zero_copy_only=False), dtype=np.float64))
    return tuple(columns)


if __name__ == "__main__":
    # The parent handles Ctrl-C; a parent that dies closes the socket, and
    # the child then ends without a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        serve(sys.argv[1], Connection(int(sys.argv[2])))
    except (BrokenPipeError, ConnectionResetError, EOFError):
        sys.exit(0)
