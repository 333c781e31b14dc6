"""`tvcat cat`: write the bars of one series as of a time or a backup, straight from the repository."""

import os
import secrets
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import click
import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..catalog import events as ev
from ..catalog.bars import VALUE_COLUMNS
from ..engine.restore import parse_point_in_time
from ..errors import InvalidOption, TvcatError
from ..i18n import N_, _
from ..reader import BAR_SCHEMA, BarStream, open_repository
from .output import stdout_is_terminal

CSV_HEADER = b"time,open,high,low,close,volume\n"
JSON_KEYS = ("time", *VALUE_COLUMNS)

_json = msgspec.json.Encoder()


class OutputFailed(TvcatError):
    """The output file or stream cannot be written, as on a full disk."""

    template = N_("writing the bars to {target} failed: {reason}")


@click.command("cat", help=_(
    "Write the bars of one series as of a time or a backup, read straight from the repository.\n\n"
    "Without --at or --backup the latest backup that includes the series is read; --at also takes the "
    "latest backup that includes the series, even one limited to other symbols, where restore --at "
    "without --symbols takes the latest backup of every series. Nothing is "
    "restored and the cache is not touched. Each chunk is verified as a restore verifies it, and "
    "the output is written window by window, so memory does not grow with the series. Times are "
    "bar open times in UTC: CSV has the header time,open,high,low,close,volume with ISO 8601 "
    "times, JSON has one object per line with the same keys, and an empty cell or null is a "
    "missing value. Parquet, which stores the times in milliseconds, needs --output or a redirected "
    "standard output. If reading fails midway, the output is incomplete and the exit status is not 0; "
    "with --output, the file is then left unchanged.\n\n"
    "\b\n"
    "Examples:\n"
    "  # The hourly EURUSD bars as of 1 May 2024, 08:00 in Shanghai\n"
    "  tvcat cat FX:EURUSD 60 --at 2024-05-01T08:00:00+08:00\n"
    "  # April 2024 only, from a backup named by an id prefix, as JSON lines\n"
    "  tvcat cat FX:EURUSD 60 --backup 20240501T --from 2024-04-01 --to 2024-05-01 --format json\n"
    "  # The whole series into a Parquet file\n"
    "  tvcat cat BINANCE:BTCUSDT 1D --format parquet --output btc.parquet"
))
@click.argument("symbol")
@click.argument("timeframe")
@click.option("--at", "at", metavar="TIME",
              help=_("Read the latest backup committed at or before TIME: ISO 8601 with an offset "
                     "(2024-05-01T08:00:00+08:00, ...Z) or Unix seconds. Without an offset the time is read as UTC."))
@click.option("--backup", "backup_id", metavar="ID", help=_("Read this backup: an id or a unique prefix."))
@click.option("--from", "start", metavar="TIME",
              help=_("First bar time to write, inclusive, in the forms of --at. Default: the first bar."))
@click.option("--to", "end", metavar="TIME",
              help=_("Bar time to stop before, exclusive, in the forms of --at. Default: after the last bar."))
@click.option("--format", "output_format", type=click.Choice(["csv", "json", "parquet"]), default="csv",
              show_default=True, help=_("Output format. json writes one JSON object per line."))
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help=_("File to write, replaced only when complete. Default: standard output."))
@click.pass_obj
def cat_command(app, symbol, timeframe, at, backup_id, start, end, output_format, output):
    if at is not None and backup_id is not None:
        raise InvalidOption(detail=_("give either --at TIME or --backup ID, not both"))
    if output_format == "parquet" and output is None and stdout_is_terminal():
        raise InvalidOption(detail=_(
            "Parquet is binary and standard output is a terminal: give --output FILE or redirect the output"
        ))
    for value in (at, start, end):
        if value is not None and parse_point_in_time(value).assumed_utc:
            click.echo(_("note: {at} has no offset and is read as UTC").format(at=value), err=True)

    try:
        with open_repository(app.repo) as repository, repository.stream(
            symbol, timeframe, at=at, backup_id=backup_id, start=start, end=end
        ) as bars:
            click.echo(_("reading backup {backup_id} ({type}, committed {committed_at})").format(
                backup_id=bars.backup.backup_id, type=bars.backup.type,
                committed_at=ev.format_time(bars.backup.committed_at)), err=True)
            with _opened_output(output) as stream:
                WRITERS[output_format](bars, stream)
    except BrokenPipeError:
        _discard_stdout()


@contextmanager
def _opened_output(path: Path | None) -> Iterator["_CheckedOutput"]:
    """Yield standard output, or a temporary file that replaces `path` only when the block succeeds."""
    if path is None:
        stream = _CheckedOutput(click.get_binary_stream("stdout"), _("standard output"))
        yield stream
        stream.flush()
        return

    temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        file = open(temporary, "wb")
    except OSError as error:
        raise OutputFailed(target=str(path), reason=error.strerror or str(error)) from error
    try:
        yield _CheckedOutput(file, str(path))
        _close_and_replace(file, temporary, path)
    finally:
        file.close()
        temporary.unlink(missing_ok=True)


def _close_and_replace(file: BinaryIO, temporary: Path, path: Path) -> None:
    try:
        file.close()
        os.replace(temporary, path)
    except OSError as error:
        raise OutputFailed(target=str(path), reason=error.strerror or str(error)) from error


class _CheckedOutput:
    """A binary stream whose write errors, except a closed pipe, become OutputFailed."""

    def __init__(self, stream: BinaryIO, target: str) -> None:
        self._stream = stream
        self._target = target

    def write(self, data: bytes) -> int:
        try:
            return self._stream.write(data)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise OutputFailed(target=self._target, reason=error.strerror or str(error)) from error

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise OutputFailed(target=self._target, reason=error.strerror or str(error)) from error

    @property
    def closed(self) -> bool:
        return self._stream.closed


def _discard_stdout() -> None:
    """Point standard output at /dev/null after the reader closed the pipe, as `head` does.

    Otherwise the interpreter fails again when it flushes standard output at exit.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _write_csv(bars: BarStream, output: _CheckedOutput) -> None:
    output.write(CSV_HEADER)
    for batch in bars:
        rows = zip(_iso_times(batch), *(_number_cells(batch.column(name)) for name in VALUE_COLUMNS))
        output.write("".join(",".join(row) + "\n" for row in rows).encode("utf-8"))


def _write_json_lines(bars: BarStream, output: _CheckedOutput) -> None:
    for batch in bars:
        columns = [_iso_times(batch), *(batch.column(name).to_pylist() for name in VALUE_COLUMNS)]
        output.write(_json.encode_lines([dict(zip(JSON_KEYS, row)) for row in zip(*columns)]))


def _write_parquet(bars: BarStream, output: _CheckedOutput) -> None:
    with pq.ParquetWriter(output, BAR_SCHEMA) as writer:
        for batch in bars:
            writer.write_batch(batch)


def _iso_times(batch: pa.RecordBatch) -> list[str]:
    """Format the bar times of `batch` as ISO 8601 in UTC, such as 2024-05-01T08:00:00Z."""
    return np.datetime_as_string(batch.column("ts").to_numpy(), unit="s", timezone="UTC").tolist()


def _number_cells(values: pa.Array) -> list[str]:
    # repr gives the shortest text that reads back as the same float64.
    return ["" if value is None else repr(value) for value in values.to_pylist()]


WRITERS: dict[str, Callable[[BarStream, _CheckedOutput], None]] = {
    "csv": _write_csv,
    "json": _write_json_lines,
    "parquet": _write_parquet,
}

COMMANDS = [cat_command]
