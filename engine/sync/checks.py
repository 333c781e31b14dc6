"""Checks of fetched bars before they are written: order and OHLC consistency.

Bars need not open on round clock times: daily futures bars open at the
session start and some exchanges' hourly bars at :15 or :30, so only the
order of times is checked, never their alignment.
"""

from dataclasses import dataclass

import numpy as np

from ...catalog.bars import BarColumns
from ...i18n import _


@dataclass(frozen=True)
class InvalidBars:
    """The bars of a page that fail a check, and a description of the first one."""

    mask: np.ndarray
    first_index: int
    reason: str

    @property
    def count(self) -> int:
        return int(self.mask.sum())


def find_unsorted(bars: BarColumns) -> int | None:
    """Return the index of the first bar whose time is not after the one before, or None."""
    steps = np.diff(bars.ts)
    bad = np.flatnonzero(steps <= 0)
    return int(bad[0]) + 1 if len(bad) else None


def find_invalid(bars: BarColumns) -> InvalidBars | None:
    """Return the bars that break OHLC rules, or None when all pass.

    A rule involving a NULL (NaN) value is skipped, because close-only and
    volume-less series are valid. The rules: values are finite, high is at
    least low, open and close; low is at most open and close; volume is not
    negative.
    """
    with np.errstate(invalid="ignore"):
        rules = [
            (np.isinf(bars.open) | np.isinf(bars.high) | np.isinf(bars.low) | np.isinf(bars.close)
             | np.isinf(bars.volume), _describe_infinite),
            (bars.high < bars.low, lambda i: _("high {high!r} is below low {low!r}").format(
                high=float(bars.high[i]), low=float(bars.low[i]))),
            ((bars.high < bars.open) | (bars.high < bars.close), lambda i: _(
                "high {high!r} is below open {open!r} or close {close!r}").format(
                high=float(bars.high[i]), open=float(bars.open[i]), close=float(bars.close[i]))),
            ((bars.low > bars.open) | (bars.low > bars.close), lambda i: _(
                "low {low!r} is above open {open!r} or close {close!r}").format(
                low=float(bars.low[i]), open=float(bars.open[i]), close=float(bars.close[i]))),
            (bars.volume < 0, lambda i: _("volume {volume!r} is negative").format(volume=float(bars.volume[i]))),
        ]
    mask = np.zeros(len(bars), dtype=bool)
    for rule_mask, _describe in rules:
        mask |= rule_mask
    if not mask.any():
        return None

    first = int(np.flatnonzero(mask)[0])
    for rule_mask, describe in rules:
        if rule_mask[first]:
            return InvalidBars(mask, first, describe(first))
    raise AssertionError("a masked bar breaks no rule")


def _describe_infinite(index: int) -> str:
    return _("a value is infinite")
