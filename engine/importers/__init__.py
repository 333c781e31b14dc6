"""Importers that read bar files into BarColumns for the cache.

read_bar_file reads TradingView "Export chart data" CSV files and MetaTrader
CSV exports, and parse_series_name takes the series from an export's name.
"""

from .tradingview import ImportedSeries, parse_series_name, read_bar_file

__all__ = ["ImportedSeries", "parse_series_name", "read_bar_file"]
