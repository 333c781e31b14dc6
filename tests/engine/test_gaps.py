"""Gaps of a series against its bar spacing, and against the trading session when the source gave one."""

from datetime import date

from tvcat.catalog.series import Series
from tvcat.engine.cache import BarCache
from tvcat.engine.gaps import find_gaps, parse_session
from tvcat.engine.importers import read_bar_file
from tvcat.engine.sources.base import SeriesInfo

ES_60 = Series("CME_MINI:ES1!", "60")


def load_es(cache: BarCache, data_dir) -> None:
    imported = read_bar_file(data_dir / "tradingview" / "CME_MINI_ES1!, 60.csv")
    cache.upsert(ES_60, imported.bars)


def test_parse_session_days_and_ranges():
    session = parse_session("0930-1600:23456", "America/New_York", ["20240704"])

    assert session.ranges == ((570, 960),)
    assert session.weekdays == frozenset({1, 2, 3, 4, 5})
    assert session.holidays == frozenset({date(2024, 7, 4)})
    assert session.contains(1720099800) is False  # 2024-07-04 09:30 New York, a holiday
    assert session.contains(1720013400) is True   # 2024-07-03 09:30 New York
    assert session.contains(1720036800) is False  # 2024-07-03 16:00 New York, the close


def test_parse_session_24x7_is_none():
    assert parse_session("24x7", "UTC", []) is None


def test_spacing_gaps_real_es(cache, data_dir):
    load_es(cache, data_dir)

    gaps = list(find_gaps(cache, ES_60))

    # PROVENANCE.md: 692 maintenance-break steps of 7,200 s, each one missing bar, plus weekends.
    assert sum(1 for gap in gaps if gap.before - gap.after == 7200) == 692
    assert all(gap.missing >= 1 for gap in gaps)


def test_session_hides_breaks_and_weekends(cache, data_dir):
    load_es(cache, data_dir)
    spacing_only = list(find_gaps(cache, ES_60))
    cache.save_series_info("test", SeriesInfo(ES_60, timezone="America/Chicago", session="1700-1600:23456"))

    with_session = list(find_gaps(cache, ES_60))

    assert len(with_session) < len(spacing_only) // 10
    assert not any(gap.before - gap.after == 7200 for gap in with_session)
