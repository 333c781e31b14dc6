"""Measure tvcat backups and restores against restic on one synthetic bar cache.

Run with `python benchmarks/bench_backup.py [--series 100] [--bars 100000]`.
The script builds cache.db in a temporary directory, then runs these steps,
each tvcat step in a fresh Python subprocess so that its peak RSS is its own:

1. a full tvcat backup and a `restic backup` of the same cache.db,
2. one more day (1440 bars) appended to every series, then a tvcat
   incremental backup and a second `restic backup`,
3. the last bar of every series revised, then another tvcat incremental
   backup and a third `restic backup`,
4. a full restore of the latest tvcat backup into a new database, checked
   against the cache,
5. one series read as of the first backup, checked bit for bit against the
   generated bars.

It also measures plain zstd level 3 over the raw columns of each window as a
baseline for the bytes per bar. It needs restic on PATH and psutil. It prints a table, the targets met and
missed, and writes every figure to benchmarks/results/<UTC time>.json.
benchmarks/README.md explains each figure and lists measured results.
"""

import argparse
import cProfile
import hashlib
import io
import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import repeat
from pathlib import Path

import numpy as np
import psutil
import zstandard

from tvcat.catalog.bars import BarColumns, concat
from tvcat.catalog.series import Series, window_starts

DEFAULT_SERIES = 100
DEFAULT_BARS = 100_000
DEFAULT_SEED = 1
TIMEFRAME = "1"
# 2023-01-01T00:00Z, the open time of the first bar of every series.
START_TS = 1_672_531_200
MINUTE = 60
BARS_PER_DAY = 1440
# Share of minutes with no bar, and the count and length range of longer gaps.
MISSING_MINUTE_SHARE = 0.01
LONG_GAPS_PER_SERIES = 3
LONG_GAP_MINUTES = (120, 720)
# Prices are integers of this tick, starting log-uniformly in this range.
TICKS_PER_UNIT = 100
BASE_PRICE_RANGE = (100.0, 50_000.0)
# Standard deviation of one-minute log returns, drawn per series.
VOLATILITY_RANGE = (0.0004, 0.0012)
BASELINE_ZSTD_LEVEL = 3

RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESTIC_HOST = "tvcat-bench"
RESTIC_PASSWORD = "tvcat-bench"
# How often the parent adds up the RSS of a step's process tree.
TREE_SAMPLE_SECONDS = 0.02

# Targets: sizes in decimal units (1 kB = 1000 bytes, 1 MB = 10**6 bytes).
TARGET_FULL_BYTES_PER_BAR = 10.0
TARGET_INCREMENTAL_SPEEDUP = 10.0
TARGET_INCREMENTAL_BYTE_SHARE = 0.02
TARGET_REVISION_BYTES = 200_000
TARGET_RESTORE_BARS_PER_SECOND = 2_000_000
TARGET_PEAK_RSS_BYTES = 300_000_000


# Synthetic bars --------------------------------------------------------------


@dataclass(frozen=True)
class SeriesParameters:
    """Parameters of one synthetic series: symbol, start price, volatility and volume size."""

    symbol: str
    base_ticks: int
    volatility: float
    volume_scale: float
    volume_decimals: int


def series_parameters(index: int, seed: int) -> SeriesParameters:
    rng = np.random.default_rng([seed, index, 0])
    low, high = BASE_PRICE_RANGE
    base_price = low * (high / low) ** rng.random()
    return SeriesParameters(
        symbol=f"BINANCE:S{index + 1:03d}USDT",
        base_ticks=int(round(base_price * TICKS_PER_UNIT)),
        volatility=float(rng.uniform(*VOLATILITY_RANGE)),
        # Cheaper coins trade more units: about $20,000 a minute at the median.
        volume_scale=20_000.0 / base_price,
        volume_decimals=3 if index % 2 == 0 else 4,
    )


def series_of(index: int, seed: int) -> Series:
    return Series(series_parameters(index, seed).symbol, TIMEFRAME)


def random_walk_bars(
    rng: np.random.Generator, parameters: SeriesParameters, ts: np.ndarray, previous_close_ticks: int
) -> BarColumns:
    """Return OHLCV bars at `ts` whose first open follows `previous_close_ticks`.

    Closes follow a log-normal random walk rounded to the tick. Each open is
    the previous close, except after a gap, where it jumps. High and low lie
    a few ticks outside open and close, and volumes have a fixed number of
    decimals per series.
    """
    count = len(ts)
    walk = np.exp(np.cumsum(rng.normal(0.0, parameters.volatility, count)))
    close = np.maximum(np.rint(previous_close_ticks * walk), 1).astype(np.int64)
    open_ = np.concatenate([[previous_close_ticks], close[:-1]])

    after_gap = np.diff(ts, prepend=ts[0] - MINUTE) > MINUTE
    jumps = np.exp(rng.normal(0.0, 3 * parameters.volatility, int(after_gap.sum())))
    open_[after_gap] = np.maximum(np.rint(open_[after_gap] * jumps), 1).astype(np.int64)

    wick_ticks = max(parameters.volatility * previous_close_ticks / 2, 1.0)
    high = np.maximum(open_, close) + np.rint(rng.exponential(wick_ticks, count)).astype(np.int64)
    low = np.minimum(open_, close) - np.rint(rng.exponential(wick_ticks, count)).astype(np.int64)
    low = np.maximum(low, 1)

    scale = 10 ** parameters.volume_decimals
    volume = np.rint(rng.lognormal(np.log(parameters.volume_scale), 1.0, count) * scale) / scale

    return BarColumns.from_arrays(
        ts, open_ / TICKS_PER_UNIT, high / TICKS_PER_UNIT, low / TICKS_PER_UNIT, close / TICKS_PER_UNIT, volume
    )


def generate_series(index: int, bar_count: int, seed: int) -> BarColumns:
    """Return the initial bars of series `index`. The same arguments give the same bars."""
    parameters = series_parameters(index, seed)
    rng = np.random.default_rng([seed, index, 1])

    steps = np.ones(bar_count, np.int64)
    steps[0] = 0
    steps[1:] += rng.random(bar_count - 1) < MISSING_MINUTE_SHARE
    if bar_count > 1:
        gap_rows = rng.integers(1, bar_count, LONG_GAPS_PER_SERIES)
        steps[gap_rows] += rng.integers(LONG_GAP_MINUTES[0], LONG_GAP_MINUTES[1] + 1, LONG_GAPS_PER_SERIES)
    ts = START_TS + MINUTE * np.cumsum(steps)

    return random_walk_bars(rng, parameters, ts, parameters.base_ticks)


def next_day_bars(index: int, seed: int, last_ts: int, last_close: float) -> BarColumns:
    """Return 1440 gap-free one-minute bars that continue a series after its last bar."""
    parameters = series_parameters(index, seed)
    rng = np.random.default_rng([seed, index, 2])
    ts = last_ts + MINUTE * np.arange(1, BARS_PER_DAY + 1, dtype=np.int64)
    return random_walk_bars(rng, parameters, ts, int(round(last_close * TICKS_PER_UNIT)))


def revised_bar(bar: BarColumns) -> BarColumns:
    """Return one bar with its close one tick higher and more volume, as a late trade would leave it."""
    close = (round(bar.close[0] * TICKS_PER_UNIT) + 1) / TICKS_PER_UNIT
    high = max(bar.high[0], close)
    volume = bar.volume[0] + 0.5
    return BarColumns.from_arrays(bar.ts, bar.open, [high], bar.low, [close], [volume])


def baseline_window_sizes(bars: BarColumns, compressor: zstandard.ZstdCompressor) -> int:
    """Return the bytes of zstd over the raw columns of each window of `bars`, added up."""
    starts = window_starts(TIMEFRAME, bars.ts)
    boundaries = np.flatnonzero(np.diff(starts)) + 1
    total = 0
    for window in np.split(np.arange(len(bars)), boundaries):
        begin, stop = int(window[0]), int(window[-1]) + 1
        raw = b"".join(column[begin:stop].tobytes() for column in bars.columns())
        total += len(compressor.compress(raw))
    return total


# Steps that run in a child process -------------------------------------------


def step_imports(options: dict) -> dict:
    """Import the tvcat modules the other steps use, so the RSS of a bare process is known."""
    import tvcat.engine.backup  # noqa: F401
    import tvcat.engine.restore  # noqa: F401

    return {}


def step_generate(options: dict) -> dict:
    """Create cache.db with the initial bars of every series, then measure the zstd baseline."""
    from tvcat.catalog import schema
    from tvcat.engine.cache import BarCache

    cache_path = Path(options["work_dir"]) / "cache.db"
    cache = BarCache(cache_path)
    cache.ensure_timeframe(TIMEFRAME)
    cache.close()

    generate_seconds = 0.0
    insert_seconds = 0.0
    baseline_seconds = 0.0
    baseline_bytes = 0
    bar_count = 0
    compressor = zstandard.ZstdCompressor(level=BASELINE_ZSTD_LEVEL)
    connection = schema.connect(cache_path, "cache")
    try:
        for index in range(options["series"]):
            started = time.perf_counter()
            bars = generate_series(index, options["bars"], options["seed"])
            generate_seconds += time.perf_counter() - started

            # One transaction per series keeps the WAL small between commits,
            # and the change-tracking triggers run for every row as they would
            # for any writer.
            started = time.perf_counter()
            rows = zip(
                repeat(series_parameters(index, options["seed"]).symbol), repeat(TIMEFRAME),
                *(column.tolist() for column in bars.columns()),
            )
            connection.execute("BEGIN")
            connection.executemany(
                "INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            connection.execute("COMMIT")
            insert_seconds += time.perf_counter() - started

            started = time.perf_counter()
            baseline_bytes += baseline_window_sizes(bars, compressor)
            baseline_seconds += time.perf_counter() - started
            bar_count += len(bars)

        started = time.perf_counter()
        checkpoint = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        checkpoint_seconds = time.perf_counter() - started
    finally:
        connection.close()

    return {
        "bars": bar_count,
        "generate_seconds": generate_seconds,
        "insert_seconds": insert_seconds,
        "checkpoint_seconds": checkpoint_seconds,
        "checkpoint_busy": checkpoint[0],
        "insert_bars_per_second": bar_count / insert_seconds,
        "baseline_bytes": baseline_bytes,
        "baseline_seconds": baseline_seconds,
        "cache_bytes": cache_path.stat().st_size,
    }


def _last_bar(cache, series: Series) -> BarColumns:
    row = cache.connection.execute(
        "SELECT ts FROM bars WHERE symbol = ? AND timeframe = ? ORDER BY ts DESC LIMIT 1",
        (series.symbol, series.timeframe),
    ).fetchone()
    return cache.read_bars(series, row[0], row[0] + 1)


def step_append_day(options: dict) -> dict:
    """Append one day of bars to every series through BarCache.upsert."""
    from tvcat.engine.cache import BarCache

    cache = BarCache(Path(options["work_dir"]) / "cache.db", create=False)
    inserted = 0
    started = time.perf_counter()
    try:
        for index in range(options["series"]):
            series = series_of(index, options["seed"])
            last = _last_bar(cache, series)
            bars = next_day_bars(index, options["seed"], int(last.ts[0]), float(last.close[0]))
            inserted += cache.upsert(series, bars).inserted
    finally:
        cache.close()
    return {"seconds": time.perf_counter() - started, "bars_inserted": inserted}


def step_revise_last(options: dict) -> dict:
    """Overwrite the last bar of every series through BarCache.upsert."""
    from tvcat.engine.cache import BarCache

    cache = BarCache(Path(options["work_dir"]) / "cache.db", create=False)
    updated = 0
    started = time.perf_counter()
    try:
        for index in range(options["series"]):
            series = series_of(index, options["seed"])
            updated += cache.upsert(series, revised_bar(_last_bar(cache, series))).updated
    finally:
        cache.close()
    return {"seconds": time.perf_counter() - started, "bars_updated": updated}


def step_backup(options: dict) -> dict:
    """Take one tvcat backup of cache.db of the type in `options`."""
    from tvcat.catalog.repository import Repository
    from tvcat.engine.backup import BackupType, create_backup
    from tvcat.engine.cache import BarCache

    work_dir = Path(options["work_dir"])
    started = time.perf_counter()
    repository = Repository(work_dir / "repo")
    cache = BarCache(work_dir / "cache.db", create=False)
    try:
        result = create_backup(repository, cache, BackupType(options["backup_type"]))
    finally:
        cache.close()
        repository.close()
    return {
        "seconds": time.perf_counter() - started,
        "backup_id": result.backup_id,
        "type": result.type.value,
        "bar_count": result.bar_count,
        "windows_read": result.windows_read,
        "windows_written": result.windows_written,
        "chunks_written": result.chunks_written,
        "bytes_written": result.bytes_written,
        "engine_seconds": result.duration_seconds,
    }


def step_restore(options: dict) -> dict:
    """Restore a tvcat backup into a new database file."""
    from tvcat.catalog.repository import Repository
    from tvcat.engine.restore import RestoreChoice, restore_backup

    work_dir = Path(options["work_dir"])
    target = work_dir / "restored.db"
    started = time.perf_counter()
    repository = Repository(work_dir / "repo", create=False)
    try:
        choice = RestoreChoice(repository.find_backup(options["backup_id"]), "benchmark")
        result = restore_backup(repository, choice, target)
    finally:
        repository.close()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "bar_count": result.bar_count,
        "series_count": result.series_count,
        "bars_per_second": result.bar_count / seconds,
        "database_bytes": target.stat().st_size,
    }


_SUMMARY_QUERY = (
    "SELECT symbol, timeframe, count(*), sum(ts), total(open), total(high), total(low), "
    "total(close), total(volume) FROM bars GROUP BY symbol, timeframe ORDER BY symbol, timeframe"
)


def step_check_restore(options: dict) -> dict:
    """Compare per-series counts and column sums of cache.db and restored.db."""
    work_dir = Path(options["work_dir"])
    summaries = []
    for name in ("cache.db", "restored.db"):
        connection = sqlite3.connect(f"file:{work_dir / name}?mode=ro", uri=True)
        try:
            summaries.append(connection.execute(_SUMMARY_QUERY).fetchall())
        finally:
            connection.close()
    return {"equal": summaries[0] == summaries[1], "series": len(summaries[1])}


def step_read_as_of(options: dict) -> dict:
    """Read one series as of a backup and compare it with the bars generated for it."""
    from tvcat.catalog.repository import Repository
    from tvcat.engine.restore import read_state_bars

    index = options["series_index"]
    series = series_of(index, options["seed"])
    started = time.perf_counter()
    repository = Repository(Path(options["work_dir"]) / "repo", create=False)
    try:
        state = repository.resolve_state(repository.find_backup(options["backup_id"]))
        resolved = time.perf_counter()
        bars = concat(list(read_state_bars(repository, state, series)))
    finally:
        repository.close()
    finished = time.perf_counter()

    expected = generate_series(index, options["bars"], options["seed"])
    return {
        "seconds": finished - started,
        "resolve_seconds": resolved - started,
        "read_seconds": finished - resolved,
        "series": str(series),
        "bar_count": len(bars),
        "equal": bars.bit_equal(expected),
    }


STEPS = {
    "imports": step_imports,
    "generate": step_generate,
    "append_day": step_append_day,
    "revise_last": step_revise_last,
    "backup": step_backup,
    "restore": step_restore,
    "check_restore": step_check_restore,
    "read_as_of": step_read_as_of,
}


def run_step_here(name: str, options: dict) -> None:
    """Run one step in this process and print its result as one JSON line."""
    if options.get("profile_dir"):
        profiler = cProfile.Profile()
        result = profiler.runcall(STEPS[name], options)
        label = options.get("label", name)
        profiler.dump_stats(Path(options["profile_dir"]) / f"{label}.prof")
    else:
        result = STEPS[name](options)
    result["self_max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))


# Running processes and measuring them ----------------------------------------


@dataclass
class ProcessRun:
    """One finished child process: its output, wall time, CPU time and peak memory."""

    stdout: str
    stderr: str
    seconds: float
    cpu_seconds: float
    max_rss_bytes: int
    tree_rss_bytes: int


def run_process(argv: list[str], env: dict | None = None) -> ProcessRun:
    """Run `argv` to completion and return its output, wall time, CPU time and peak memory.

    os.wait4 returns the resource usage of that one child, so each step's
    figures are its own even though the parent runs many children. Its CPU
    time includes the child's own children, but its ru_maxrss is the peak of
    the largest single process. A child that starts helper processes (tvcat's
    cache snapshot reader) uses more, so the parent also samples the sum of
    RSS over the process tree every TREE_SAMPLE_SECONDS; a peak shorter than
    that can be missed. Raises RuntimeError with the child's stderr when it
    exits non-zero.
    """
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env)
        tree = psutil.Process(process.pid)
        tree_rss = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid != 0:
                break
            tree_rss = max(tree_rss, process_tree_rss(tree))
            time.sleep(TREE_SAMPLE_SECONDS)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        out = stdout.read().decode("utf-8", "replace")
        err = stderr.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed with exit code {process.returncode}:\n{err}")
    # ru_maxrss is in KiB on Linux.
    max_rss = usage.ru_maxrss * 1024
    return ProcessRun(out, err, seconds, usage.ru_utime + usage.ru_stime, max_rss, max(tree_rss, max_rss))


def process_tree_rss(root: psutil.Process) -> int:
    """Return the RSS of `root` and all its descendants added up, skipping those that just exited."""
    total = 0
    try:
        members = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run_step(name: str, options: dict) -> dict:
    """Run one step in a fresh Python process and return its JSON result with process figures."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--step", name, "--step-options", json.dumps(options)]
    run = run_process(argv)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    result["process_seconds"] = run.seconds
    result["cpu_seconds"] = run.cpu_seconds
    result["max_rss_bytes"] = run.max_rss_bytes
    result["tree_rss_bytes"] = run.tree_rss_bytes
    return result


def directory_bytes(path: Path) -> dict:
    """Return the apparent size (like `du -sb`) and the allocated size (like `du -s`) of a tree."""
    apparent = 0
    allocated = 0
    files = 0
    for root, _, names in os.walk(path):
        for name in names:
            info = os.lstat(os.path.join(root, name))
            apparent += info.st_size
            allocated += info.st_blocks * 512
            files += 1
    return {"apparent": apparent, "allocated": allocated, "files": files}


def size_change(before: dict, after: dict) -> dict:
    return {key: after[key] - before[key] for key in before}


def checkpoint_cache(cache_path: Path) -> None:
    """Fold the WAL into cache.db so that the file alone is a complete database."""
    connection = sqlite3.connect(cache_path)
    try:
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        connection.close()
    if busy:
        raise RuntimeError(f"wal_checkpoint(TRUNCATE) on {cache_path} was blocked by another connection")


class Restic:
    """A local restic repository in the benchmark directory, used through the restic command."""

    def __init__(self, work_dir: Path) -> None:
        self.repository = work_dir / "restic-repo"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(work_dir),
            "RESTIC_REPOSITORY": str(self.repository),
            "RESTIC_PASSWORD": RESTIC_PASSWORD,
            "RESTIC_CACHE_DIR": str(work_dir / "restic-cache"),
        }

    def version(self) -> str:
        return run_process(["restic", "version"], env=self.env).stdout.strip()

    def init(self) -> None:
        run_process(["restic", "init"], env=self.env)

    def config(self) -> dict:
        return json.loads(run_process(["restic", "cat", "config"], env=self.env).stdout)

    def backup(self, path: Path) -> dict:
        """Back up one file and return wall and CPU time, peak RSS, bytes added and restic's own summary."""
        before = directory_bytes(self.repository)
        run = run_process(["restic", "backup", "--json", "--host", RESTIC_HOST, str(path)], env=self.env)
        after = directory_bytes(self.repository)
        summary = {}
        for line in run.stdout.splitlines():
            if line.startswith("{") and '"summary"' in line:
                summary = json.loads(line)
        return {
            "process_seconds": run.seconds,
            "cpu_seconds": run.cpu_seconds,
            "max_rss_bytes": run.max_rss_bytes,
            "tree_rss_bytes": run.tree_rss_bytes,
            "added": size_change(before, after),
            "data_added": summary.get("data_added"),
            "restic_seconds": summary.get("total_duration"),
            "snapshot_id": summary.get("snapshot_id"),
        }


# The benchmark ---------------------------------------------------------------


def tvcat_backup(work_dir: Path, options: dict, backup_type: str, label: str) -> dict:
    objects = work_dir / "repo" / "objects"
    before = directory_bytes(objects)
    catalog_before = _file_size(work_dir / "repo" / "catalog.db")
    result = run_step("backup", {**options, "backup_type": backup_type, "label": label})
    result["added"] = size_change(before, directory_bytes(objects))
    result["catalog_db_added"] = _file_size(work_dir / "repo" / "catalog.db") - catalog_before
    return result


def _file_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def product_fingerprint() -> str:
    """Return a hash of tvcat's source files, to tell whether they changed during a run."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    paths = [root / "schema.sql", *sorted(root.glob("*.py")), *sorted(root.glob("catalog/**/*.py")),
             *sorted(root.glob("engine/**/*.py"))]
    for path in paths:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def machine_facts(restic: Restic) -> dict:
    memory_kib = 0
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    cpu_model = ""
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    repository_root = Path(__file__).resolve().parent.parent
    git = ["git", "-C", str(repository_root)]
    commit = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    changed = subprocess.run(git + ["status", "--porcelain"], capture_output=True, text=True).stdout.splitlines()
    return {
        "cores": os.cpu_count(),
        "memory_bytes": memory_kib * 1024,
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "zstandard": zstandard.__version__,
        "restic": restic.version(),
        "tvcat_commit": commit,
        "tvcat_uncommitted_changes": changed,
    }


def run_benchmark(arguments: argparse.Namespace) -> dict:
    """Run every step in order and return the results."""
    if shutil.which("restic") is None:
        raise SystemExit("restic not found on PATH: install it with `apt-get install -y restic`")

    work_dir = Path(tempfile.mkdtemp(prefix="tvcat-bench-", dir=arguments.work_dir))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    options = {"work_dir": str(work_dir), "series": arguments.series, "bars": arguments.bars, "seed": arguments.seed}
    if arguments.profile:
        profile_dir = RESULTS_DIR / f"{stamp}-profiles"
        profile_dir.mkdir(parents=True, exist_ok=True)
        options["profile_dir"] = str(profile_dir)
    cache_path = work_dir / "cache.db"
    restic = Restic(work_dir)
    results: dict = {
        "time": stamp,
        "options": {key: value for key, value in options.items() if key != "work_dir"},
        "work_dir": str(work_dir),
        "machine": machine_facts(restic),
        # Other processes on a shared machine slow every step, and the load average shows how busy it was.
        "load_average_start": os.getloadavg(),
        "product_fingerprint_start": product_fingerprint(),
    }
    tvcat: dict = {}
    restic_results: dict = {}
    results["tvcat"] = tvcat
    results["restic"] = restic_results

    try:
        log("importing tvcat in a bare process")
        results["imports"] = run_step("imports", options)

        log(f"generating {arguments.series} series x {arguments.bars} bars into {cache_path}")
        results["generate"] = run_step("generate", options)
        results["generate"]["cache_bytes"] = cache_path.stat().st_size

        restic.init()
        results["restic_config"] = restic.config()

        log("full backup: tvcat")
        tvcat["full"] = tvcat_backup(work_dir, options, "full", "full")
        checkpoint_cache(cache_path)
        log("full backup: restic")
        restic_results["full"] = restic.backup(cache_path)

        log("appending one day to every series")
        results["append_day"] = run_step("append_day", options)
        log("one-day incremental: tvcat")
        tvcat["day"] = tvcat_backup(work_dir, options, "incremental", "day")
        checkpoint_cache(cache_path)
        log("one-day incremental: restic")
        restic_results["day"] = restic.backup(cache_path)

        log("revising the last bar of every series")
        results["revise_last"] = run_step("revise_last", options)
        log("last-bar incremental: tvcat")
        tvcat["revision"] = tvcat_backup(work_dir, options, "incremental", "revision")
        checkpoint_cache(cache_path)
        log("last-bar incremental: restic")
        restic_results["revision"] = restic.backup(cache_path)
        results["cache_bytes_final"] = cache_path.stat().st_size

        log("full restore of the latest backup")
        tvcat["restore"] = run_step(
            "restore", {**options, "backup_id": tvcat["revision"]["backup_id"], "label": "restore"}
        )
        tvcat["restore"]["check"] = run_step("check_restore", options)

        log("reading one series as of the first backup")
        tvcat["read_as_of"] = run_step(
            "read_as_of",
            {**options, "backup_id": tvcat["full"]["backup_id"], "series_index": arguments.series // 2,
             "label": "read_as_of"},
        )
        results["repository_bytes"] = directory_bytes(work_dir / "repo")
        results["restic_repository_bytes"] = directory_bytes(restic.repository)
    finally:
        if arguments.keep:
            log(f"kept the benchmark files in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)

    results["load_average_end"] = os.getloadavg()
    results["product_fingerprint_end"] = product_fingerprint()
    results["derived"] = derive(results)
    results["targets"] = evaluate_targets(results)
    return results


def derive(results: dict) -> dict:
    """Compute per-bar figures and the ratios of tvcat to restic."""
    tvcat, restic = results["tvcat"], results["restic"]
    bars = results["generate"]["bars"]
    derived = {
        "full_bytes_per_bar": tvcat["full"]["added"]["apparent"] / bars,
        "baseline_bytes_per_bar": results["generate"]["baseline_bytes"] / bars,
        "restic_full_bytes_per_bar": restic["full"]["added"]["apparent"] / bars,
        "cache_bytes_per_bar": results["generate"]["cache_bytes"] / bars,
    }
    for step in ("full", "day", "revision"):
        derived[f"{step}_time_ratio"] = tvcat[step]["process_seconds"] / restic[step]["process_seconds"]
        # Neither figure includes process start, because tvcat's is timed inside the child
        # and restic's is its own total_duration.
        derived[f"{step}_engine_time_ratio"] = tvcat[step]["seconds"] / restic[step]["restic_seconds"]
        derived[f"{step}_bytes_ratio"] = tvcat[step]["added"]["apparent"] / max(restic[step]["added"]["apparent"], 1)
        derived[f"{step}_allocated_bytes_ratio"] = (
            tvcat[step]["added"]["allocated"] / max(restic[step]["added"]["allocated"], 1)
        )
    derived["tvcat_peak_rss_bytes"] = max(
        tvcat[step]["tree_rss_bytes"] for step in ("full", "day", "revision", "restore", "read_as_of")
    )
    return derived


def evaluate_targets(results: dict) -> list[dict]:
    tvcat, restic, derived = results["tvcat"], results["restic"], results["derived"]
    day_speedup = restic["day"]["process_seconds"] / tvcat["day"]["process_seconds"]
    checks = [
        ("full backup no slower than restic",
         f"{tvcat['full']['process_seconds']:.2f} s vs {restic['full']['process_seconds']:.2f} s",
         tvcat["full"]["process_seconds"] <= restic["full"]["process_seconds"]),
        ("full backup under 10 bytes per bar",
         f"{derived['full_bytes_per_bar']:.2f} bytes/bar",
         derived["full_bytes_per_bar"] < TARGET_FULL_BYTES_PER_BAR),
        ("one-day incremental at least 10x faster than restic",
         f"{day_speedup:.1f}x",
         day_speedup >= TARGET_INCREMENTAL_SPEEDUP),
        ("one-day incremental under 2% of restic's bytes",
         f"{100 * derived['day_bytes_ratio']:.2f}%",
         derived["day_bytes_ratio"] < TARGET_INCREMENTAL_BYTE_SHARE),
        ("last-bar revision adds under 200 kB",
         f"{tvcat['revision']['added']['apparent'] / 1000:.1f} kB "
         f"({tvcat['revision']['added']['allocated'] / 1000:.1f} kB allocated on disk)",
         tvcat["revision"]["added"]["apparent"] < TARGET_REVISION_BYTES),
        ("full restore at least 2 M bars/s",
         f"{tvcat['restore']['bars_per_second'] / 1e6:.2f} M bars/s",
         tvcat["restore"]["bars_per_second"] >= TARGET_RESTORE_BARS_PER_SECOND),
        ("peak memory of every tvcat step under 300 MB",
         f"{derived['tvcat_peak_rss_bytes'] / 1e6:.0f} MB",
         derived["tvcat_peak_rss_bytes"] < TARGET_PEAK_RSS_BYTES),
    ]
    return [{"target": target, "measured": measured, "met": bool(met)} for target, measured, met in checks]


# Output ----------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def format_load(load: list[float]) -> str:
    return " ".join(f"{value:.2f}" for value in load)


def format_report(results: dict) -> str:
    tvcat, restic, derived = results["tvcat"], results["restic"], results["derived"]
    generate = results["generate"]
    bars = generate["bars"]
    lines = io.StringIO()

    def emit(text: str = "") -> None:
        lines.write(text + "\n")

    options = results["options"]
    emit(f"{options['series']} series x {options['bars']} one-minute bars = {bars:,} bars, seed {options['seed']}")
    emit(f"cache.db {generate['cache_bytes'] / 1e6:.1f} MB ({derived['cache_bytes_per_bar']:.1f} bytes/bar); "
         f"generated in {generate['generate_seconds']:.1f} s, inserted in {generate['insert_seconds']:.1f} s "
         f"({generate['insert_bars_per_second'] / 1e3:.0f} k bars/s with the triggers), "
         f"checkpoint {generate['checkpoint_seconds']:.1f} s")
    emit(f"cache changes through BarCache.upsert: one day appended in {results['append_day']['seconds']:.2f} s, "
         f"last bars revised in {results['revise_last']['seconds']:.2f} s")
    emit(f"load average (1, 5, 15 min) at start {format_load(results['load_average_start'])}, "
         f"at end {format_load(results['load_average_end'])} on {results['machine']['cores']} cores")
    if results["product_fingerprint_start"] != results["product_fingerprint_end"]:
        emit("WARNING: tvcat's source files changed during the run, so the steps may have run different code")
    emit(f"bare process with tvcat imported: {results['imports']['tree_rss_bytes'] / 1e6:.0f} MB peak RSS, "
         f"{results['imports']['process_seconds']:.2f} s")
    emit()

    header = (f"{'step':<24}{'time s':>8}{'process s':>10}{'CPU s':>8}{'added bytes':>13}"
              f"{'on disk':>13}{'bytes/bar':>10}{'tree MB':>9}{'max MB':>9}")
    emit(header)
    emit("-" * len(header))
    rows = [
        ("tvcat full backup", tvcat["full"], bars),
        ("restic full backup", restic["full"], bars),
        ("tvcat one-day incr.", tvcat["day"], results["append_day"]["bars_inserted"]),
        ("restic one-day", restic["day"], results["append_day"]["bars_inserted"]),
        ("tvcat last-bar incr.", tvcat["revision"], None),
        ("restic last-bar", restic["revision"], None),
        ("tvcat full restore", tvcat["restore"], None),
        ("tvcat read as of full", tvcat["read_as_of"], None),
    ]
    for name, figures, bar_count in rows:
        # tvcat steps are timed inside the child, and restic reports its own total_duration.
        seconds = figures["seconds"] if "seconds" in figures else figures["restic_seconds"]
        added = figures.get("added")
        apparent = f"{added['apparent']:,}" if added else "-"
        allocated = f"{added['allocated']:,}" if added else "-"
        per_bar = f"{added['apparent'] / bar_count:.2f}" if added and bar_count else "-"
        emit(f"{name:<24}{seconds:>8.3f}{figures['process_seconds']:>10.2f}{figures['cpu_seconds']:>8.2f}"
             f"{apparent:>13}{allocated:>13}{per_bar:>10}{figures['tree_rss_bytes'] / 1e6:>9.0f}"
             f"{figures['max_rss_bytes'] / 1e6:>9.0f}")
    restore = tvcat["restore"]
    read = tvcat["read_as_of"]
    emit()
    emit(f"zstd -{BASELINE_ZSTD_LEVEL} over raw columns per window: {derived['baseline_bytes_per_bar']:.2f} bytes/bar; "
         f"tvcat full: {derived['full_bytes_per_bar']:.2f}; restic full: {derived['restic_full_bytes_per_bar']:.2f}")
    emit(f"restore: {restore['bar_count']:,} bars at {restore['bars_per_second'] / 1e6:.2f} M bars/s, "
         f"matches the cache: {restore['check']['equal']}")
    emit(f"read as of full: {read['series']}, {read['bar_count']:,} bars "
         f"(resolve {read['resolve_seconds'] * 1000:.0f} ms, read {read['read_seconds'] * 1000:.0f} ms), "
         f"matches the generated bars: {read['equal']}")
    emit()

    emit(f"{'tvcat / restic':<24}{'process time':>14}{'time':>8}{'bytes':>10}{'on disk':>10}")
    for step, name in (("full", "full backup"), ("day", "one-day incremental"), ("revision", "last-bar incremental")):
        emit(f"{name:<24}{derived[f'{step}_time_ratio']:>14.3f}{derived[f'{step}_engine_time_ratio']:>8.3f}"
             f"{derived[f'{step}_bytes_ratio']:>10.4f}{derived[f'{step}_allocated_bytes_ratio']:>10.4f}")
    emit()

    for target in results["targets"]:
        emit(f"{'pass' if target['met'] else 'MISS':<6}{target['target']:<54}{target['measured']}")
    return lines.getvalue()


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=DEFAULT_SERIES,
                        help="number of one-minute series to generate (default: %(default)s)")
    parser.add_argument("--bars", type=int, default=DEFAULT_BARS,
                        help="bars per series before the one-day append (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="directory in which to create the temporary benchmark directory "
                             "(default: the system temporary directory)")
    parser.add_argument("--keep", action="store_true",
                        help="keep cache.db, restored.db and both repositories after the run")
    parser.add_argument("--profile", action="store_true",
                        help="run cProfile in every step, on the calling thread only, and write the "
                             "statistics to benchmarks/results/<time>-profiles/")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--step-options", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.step is None and (arguments.series < 1 or arguments.bars < 2):
        parser.error(f"--series must be at least 1 and --bars at least 2, got {arguments.series} and {arguments.bars}")
    return arguments


def main() -> None:
    arguments = parse_arguments()
    if arguments.step is not None:
        run_step_here(arguments.step, json.loads(arguments.step_options))
        return

    results = run_benchmark(arguments)
    report = format_report(results)
    results["report"] = report.splitlines()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    output = RESULTS_DIR / f"{results['time']}.json"
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(report, end="")
    print(f"results written to {output}")
    if not (results["tvcat"]["restore"]["check"]["equal"] and results["tvcat"]["read_as_of"]["equal"]):
        raise SystemExit("the restored bars or the bars read as of the full backup differ from the expected bars")


if __name__ == "__main__":
    main()
