"""Bars in memory: one array per column, the layout every layer passes around."""

from dataclasses import dataclass

import numpy as np

COLUMNS = ("ts", "open", "high", "low", "close", "volume")
VALUE_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class BarColumns:
    """Bars of one series as columns, sorted by `ts` with no duplicate times.

    `ts` is int64 Unix seconds (UTC, bar open). The value columns are float64,
    and NaN stands for SQL NULL: SQLite stores no NaN, so a NaN read from a
    file is kept as NULL and comes back as NULL.
    """

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def empty(cls) -> "BarColumns":
        return cls(np.empty(0, np.int64), *(np.empty(0, np.float64) for _ in VALUE_COLUMNS))

    @classmethod
    def from_arrays(cls, ts, open, high, low, close, volume) -> "BarColumns":
        """Build from array-likes, converting to int64 and float64 (None becomes NaN)."""
        return cls(
            np.ascontiguousarray(ts, dtype=np.int64),
            *(np.ascontiguousarray(column, dtype=np.float64) for column in (open, high, low, close, volume)),
        )

    def columns(self) -> tuple[np.ndarray, ...]:
        return (self.ts, self.open, self.high, self.low, self.close, self.volume)

    def slice(self, start: int, stop: int) -> "BarColumns":
        return BarColumns(*(column[start:stop] for column in self.columns()))

    def take(self, mask_or_index: np.ndarray) -> "BarColumns":
        return BarColumns(*(column[mask_or_index] for column in self.columns()))

    def bit_equal(self, other: "BarColumns") -> bool:
        """Tell whether both hold the same bars bit for bit, NULLs in the same places."""
        if len(self) != len(other):
            return False
        if not np.array_equal(self.ts, other.ts):
            return False
        for mine, theirs in zip(self.columns()[1:], other.columns()[1:]):
            mine_null = np.isnan(mine)
            if not np.array_equal(mine_null, np.isnan(theirs)):
                return False
            if not np.array_equal(mine[~mine_null].view(np.int64), theirs[~mine_null].view(np.int64)):
                return False
        return True


def concat(parts: list[BarColumns]) -> BarColumns:
    """Join bar columns end to end; the caller keeps them sorted."""
    if not parts:
        return BarColumns.empty()
    return BarColumns(*(np.concatenate(columns) for columns in zip(*(part.columns() for part in parts))))
