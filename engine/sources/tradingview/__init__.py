"""The `tradingview` source, which reads bars from TradingView's chart websocket."""

from .client import TradingViewSource, create

__all__ = ["TradingViewSource", "create"]
