"""Measure the size and speed of the bar codec on synthetic one-minute bars.

Run with `python benchmarks/bench_codec.py [--bars N] [--seed S]`. The script
generates bars like a liquid crypto pair near 30000. Close is a random walk
on a 0.01 tick grid, and high and low lie a few ticks outside open and close.
Volumes have 3 or 4 decimals, and about 2% of the minutes are missing.

It cuts the bars into windows of 2048 bars, the size of a chunk. It prints
bytes per bar for the canonical encoding, for plain zstd over the canonical
bytes and for `pack_columns`. Then it prints the throughput of `pack_columns`
and `unpack_columns` in MB/s of canonical bytes and in millions of bars per
second.
"""

import argparse
import time

import numpy as np
import zstandard

from tvcat.catalog.bars import BarColumns
from tvcat.catalog.codec import encode_canonical, pack_columns, unpack_columns

WINDOW_BARS = 2048
DEFAULT_BAR_COUNT = 100_000
MISSING_MINUTE_SHARE = 0.02
TIMING_ROUNDS = 5


def generate_bars(count: int, seed: int) -> BarColumns:
    """Generate `count` one-minute bars as described in the module docstring."""
    rng = np.random.default_rng(seed)

    minutes = np.flatnonzero(rng.random(int(count * 1.1) + 100) >= MISSING_MINUTE_SHARE)[:count]
    ts = 1_704_067_200 + 60 * minutes  # from 2024-01-01T00:00Z

    # Prices in ticks of 0.01. A one-minute move has a standard deviation
    # of $15, an estimate for BTC/USDT in a calm market.
    close = 3_000_000 + np.cumsum(np.rint(rng.normal(0, 1500, count)).astype(np.int64))
    open_ = np.concatenate([[3_000_000], close[:-1]])
    # After a missing minute the open jumps away from the last close.
    gap_rows = np.flatnonzero(np.diff(minutes, prepend=minutes[0] - 1) > 1)
    open_[gap_rows] += np.rint(rng.normal(0, 1500, len(gap_rows))).astype(np.int64)
    high = np.maximum(open_, close) + np.rint(rng.exponential(600, count)).astype(np.int64)
    low = np.minimum(open_, close) - np.rint(rng.exponential(600, count)).astype(np.int64)

    # Volumes in units of 0.0001, so about one in ten has only 3 decimals.
    volume = np.rint(rng.lognormal(2.0, 1.0, count) * 10_000)

    return BarColumns.from_arrays(ts, open_ / 100, high / 100, low / 100, close / 100, volume / 10_000)


def cut_windows(bars: BarColumns) -> list[BarColumns]:
    return [bars.slice(start, start + WINDOW_BARS) for start in range(0, len(bars), WINDOW_BARS)]


def best_time(function, rounds: int = TIMING_ROUNDS) -> float:
    """Return the fastest of `rounds` runs in seconds, to leave out noise from other processes."""
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=DEFAULT_BAR_COUNT, help="number of bars to generate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    arguments = parser.parse_args()

    bars = generate_bars(arguments.bars, arguments.seed)
    windows = cut_windows(bars)
    canonical = [encode_canonical(window) for window in windows]
    packed = [pack_columns(window) for window in windows]
    compressor = zstandard.ZstdCompressor(level=3)
    plain_zstd = [compressor.compress(data) for data in canonical]

    for window, data in zip(windows, packed):
        if not unpack_columns(data).bit_equal(window):
            raise SystemExit("unpack_columns did not return the packed bars")

    bar_count = len(bars)
    canonical_size = sum(map(len, canonical))
    print(f"{bar_count} bars in {len(windows)} windows of up to {WINDOW_BARS} bars")
    print(f"{'encoding':<28}{'bytes/bar':>10}")
    for name, parts in (("canonical", canonical), ("zstd -3 over canonical", plain_zstd), ("pack_columns", packed)):
        print(f"{name:<28}{sum(map(len, parts)) / bar_count:>10.2f}")

    pack_seconds = best_time(lambda: [pack_columns(window) for window in windows])
    unpack_seconds = best_time(lambda: [unpack_columns(data) for data in packed])
    print(f"{'operation':<28}{'MB/s':>10}{'Mbars/s':>10}")
    for name, seconds in (("pack_columns", pack_seconds), ("unpack_columns", unpack_seconds)):
        print(f"{name:<28}{canonical_size / seconds / 1e6:>10.0f}{bar_count / seconds / 1e6:>10.2f}")


if __name__ == "__main__":
    main()
