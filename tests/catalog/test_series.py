"""Tests of timeframe normalisation and symbol validation."""

import pytest

from tvcat.catalog.series import (
    MAX_TIMEFRAME_SECONDS,
    normalize_timeframe,
    timeframe_seconds,
    validate_symbol,
    window_start,
)
from tvcat.errors import InvalidSymbol, InvalidTimeframe


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", "1"),
        ("015", "15"),
        (" 60 ", "60"),
        ("15m", "15"),
        ("1min", "1"),
        ("1MIN", "1"),
        ("5Min", "5"),
        ("1h", "60"),
        ("4h", "240"),
        ("4H", "240"),
        ("1H", "60"),
        ("S", "1S"),
        ("30S", "30S"),
        ("D", "1D"),
        ("1D", "1D"),
        ("W", "1W"),
        ("M", "1M"),
        ("1M", "1M"),
        ("3M", "3M"),
        ("1d", "1D"),
        ("1w", "1W"),
        ("30s", "30S"),
    ],
)
def test_timeframe_accepted(text, expected):
    assert normalize_timeframe(text) == expected


def test_timeframe_m_case_matters():
    # A lower-case m after a number is minutes, an upper-case M is months.
    assert normalize_timeframe("15m") == "15"
    assert normalize_timeframe("15M") == "15M"
    assert timeframe_seconds(normalize_timeframe("1m")) == 60
    assert timeframe_seconds(normalize_timeframe("1M")) == 30 * 86_400


@pytest.mark.parametrize(
    "text",
    ["", "0", "0h", "0D", "0d", "-1", "1.5", "h", "m", "min", "4 h", "1hour", "weekly", "7X", "15\n1",
     "\u0663", "1\u0663"],
    ids=["empty", "zero", "zero-hours", "zero-days", "zero-lower-days", "negative", "fraction",
         "bare-h", "bare-m", "bare-min", "inner-space", "word-unit", "word", "unknown-unit", "two-lines",
         "arabic-digit", "mixed-digits"],
)
def test_timeframe_rejected(text):
    with pytest.raises(InvalidTimeframe):
        normalize_timeframe(text)


@pytest.mark.parametrize(
    ("longest", "too_long"),
    [
        ("5256000", "5256001"),
        ("87600h", "87601h"),
        ("315360000S", "315360001S"),
        ("3650D", "3651D"),
        ("521W", "522W"),
        ("121M", "122M"),
    ],
    ids=["minutes", "hours", "seconds", "days", "weeks", "months"],
)
def test_timeframe_size_limit(longest, too_long):
    assert timeframe_seconds(normalize_timeframe(longest)) <= MAX_TIMEFRAME_SECONDS

    with pytest.raises(InvalidTimeframe) as caught:
        normalize_timeframe(too_long)

    assert repr(too_long) in str(caught.value)


@pytest.mark.parametrize(
    "text",
    ["100000000000000000000000", "100000000000000000000000h", "99999999999999999999D", "1" * 5000, "1" * 5000 + "M"],
    ids=["minutes", "hours", "days", "5000-digit-minutes", "5000-digit-months"],
)
def test_timeframe_huge_number_rejected(text):
    with pytest.raises(InvalidTimeframe):
        normalize_timeframe(text)


def test_longest_timeframe_has_window():
    # The window of the longest bar must still be computable in int64 bar times.
    assert window_start(normalize_timeframe("5256000"), 1_700_000_000) == 0


@pytest.mark.parametrize(
    "symbol",
    [
        "BINANCE:BTCUSDT",
        "CME_MINI:ES1!",
        "TVC:SILVER",
        "NYSE:BRK.B",
        "FX_IDC:EUR/USD",
        "SEED_CRYPTO_SANTIMENT:BTC_DEV_ACTIVITY",
        "CBOE:VIX-X",
        "NASDAQ:AT&T",
        "BME:IBE+",
        "SSE:600519@",
        "TWSE:台积电",
    ],
)
def test_symbol_accepted(symbol):
    assert validate_symbol(symbol) == symbol


@pytest.mark.parametrize(
    "symbol",
    [
        "BINANCE:BTC,ETH",
        "BINANCE:BTC USDT",
        "BINANCE:BTC\tUSDT",
        "BINANCE:BTCUSDT\n",
        "BINANCE:BTC\u00a0USDT",
        "BINANCE:BTC\u3000USDT",
        "BINANCE:BTC\x00",
        "BINANCE:BTC\x7f",
        "BINANCE:BTC\u200bUSDT",
        "BINANCE:BTC\u202eUSDT",
        "BINANCE:BTC\udcfe",
        "BINANCE:",
        ":BTCUSDT",
        "BINANCE",
        "BINANCE:BTC:USDT",
        "BIN ANCE:BTCUSDT",
        "BIN/ANCE:BTCUSDT",
        "BINANCE,X:BTCUSDT",
    ],
    ids=[
        "comma", "space", "tab", "trailing-newline", "no-break-space", "ideographic-space", "nul", "delete",
        "zero-width-space", "right-to-left-override", "surrogate-escape", "empty-ticker", "empty-exchange",
        "no-colon", "two-colons", "space-in-exchange", "slash-in-exchange", "comma-in-exchange",
    ],
)
def test_symbol_rejected(symbol):
    with pytest.raises(InvalidSymbol) as caught:
        validate_symbol(symbol)

    assert repr(symbol) in str(caught.value)
