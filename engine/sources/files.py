"""Helpers that the file-based sources share: hashing, paging and merging bars of several files."""

from collections.abc import Iterator
from pathlib import Path

import blake3
import numpy as np

from ...catalog.bars import BarColumns, concat
from .base import Page

# Bars per page that file sources yield; the engine writes them in batch_size transactions.
PAGE_BARS = 50_000


def hash_file(path: Path) -> str:
    """Return the blake3 hex digest of the file's bytes, read in 1 MiB blocks."""
    hasher = blake3.blake3()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            hasher.update(block)
    return hasher.hexdigest()


def merge_newest_wins(parts: list[BarColumns]) -> BarColumns:
    """Merge bars of one series; where two parts hold the same time, the later part's bar is kept."""
    if not parts:
        return BarColumns.empty()
    merged = concat(parts)
    # A stable sort keeps the parts' order within one time, so the last of each run is the newest part's bar.
    order = np.argsort(merged.ts, kind="stable")
    merged = merged.take(order)
    keep = np.ones(len(merged), dtype=bool)
    keep[:-1] = merged.ts[1:] != merged.ts[:-1]
    return merged.take(keep)


def pages_since(bars: BarColumns, since: int | None, page_bars: int = PAGE_BARS) -> Iterator[Page]:
    """Yield `bars` from `since` on in pages of at most `page_bars`."""
    if since is not None:
        bars = bars.slice(int(np.searchsorted(bars.ts, since, side="left")), len(bars))
    for start in range(0, len(bars), page_bars):
        yield Page(bars.slice(start, start + page_bars))
