"""tvcat: keep OHLCV bar data safe with an event-sourced backup catalog on SQLite."""

__version__ = "0.1.0"
