"""Run one job as a `tvcat` child process, and stop it when the daemon stops."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import msgspec

# After the grace period a child gets SIGINT, which tvcat turns into a
# recorded interruption; one that still runs this much later is killed.
KILL_AFTER_SECONDS = 10.0


@dataclass
class ChildResult:
    returncode: int
    stdout: bytes
    stderr: bytes
    duration_seconds: float

    def error_line(self) -> str | None:
        """Return the last line the child wrote to stderr, which contains tvcat's error message."""
        lines = [line.strip() for line in self.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1] if lines else None

    def json(self):
        """Decode the child's --json output; return None when it printed none."""
        try:
            return msgspec.json.decode(self.stdout)
        except msgspec.DecodeError:
            return None


@dataclass
class Child:
    """A running child process of the daemon."""

    job: str
    process: object = None
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)

    def interrupt(self) -> None:
        """Ask the child to stop as Ctrl-C would: it records what it could not finish."""
        self.interrupted = True
        self._signal(signal.SIGINT)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, number: int) -> None:
        if self.process is not None and self.process.returncode is None:
            try:
                self.process.send_signal(number)
            except ProcessLookupError:
                pass


def child_command(global_options: list[str], arguments: tuple[str, ...]) -> list[str]:
    """Build the argv of a tvcat child: this interpreter, the daemon's global options, then the job's arguments."""
    return [sys.executable, "-m", "tvcat.cli.main", *global_options, *arguments]


def global_options(config_path: Path | None, repo: Path, cache: Path) -> list[str]:
    """Return the options that make a child use the daemon's configuration, repository and cache."""
    options = ["--repo", str(repo), "--cache", str(cache)]
    if config_path is not None:
        options = ["--config", str(config_path), *options]
    return options


async def run_child(child: Child, argv: list[str]) -> ChildResult:
    """Run `argv` to its end in a new session, so a Ctrl-C at the daemon's terminal reaches only the daemon."""
    started = time.monotonic()
    process = await anyio.open_process(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       start_new_session=True, env=dict(os.environ))
    child.process = process
    stdout: list[bytes] = []
    stderr: list[bytes] = []

    async def drain(stream, sink: list[bytes]) -> None:
        async for chunk in stream:
            sink.append(chunk)

    async with process:
        async with anyio.create_task_group() as group:
            group.start_soon(drain, process.stdout, stdout)
            group.start_soon(drain, process.stderr, stderr)
        returncode = await process.wait()
    return ChildResult(returncode, b"".join(stdout), b"".join(stderr), time.monotonic() - started)
