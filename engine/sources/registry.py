"""Source specs such as `csv:/data/exports` and the factories that build sources from them.

A spec is NAME or NAME:ARGUMENT. Built-in names are looked up here, then
names registered with `register_source`, then the `tvcat.sources` entry-point
group, whose entries load to a factory `create(argument, config) -> Source`.
"""

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points

from ...errors import InvalidOption
from ...i18n import _
from ..config import Config
from .base import Source

SourceFactory = Callable[[str | None, Config], Source]

ENTRY_POINT_GROUP = "tvcat.sources"
BUILTIN_SOURCES = {
    "sample": ".sample",
    "csv": ".csv_exports",
    "binance": ".binance",
    "freqtrade": ".freqtrade",
    "tradingview": ".tradingview",
}

# Built-in sources whose spec needs a directory after the colon.
DIRECTORY_SOURCE_NAMES = ("csv", "binance", "freqtrade")

_registered: dict[str, SourceFactory] = {}


def register_source(name: str, factory: SourceFactory) -> None:
    """Make `factory` build the sources of specs named `name`, replacing a registration of that name."""
    _registered[name] = factory


def source_names() -> list[str]:
    """Return every source name that a spec may use."""
    names = set(BUILTIN_SOURCES) | set(_registered)
    names |= {entry.name for entry in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


def create_source(spec: str, config: Config) -> Source:
    """Build the source that `spec` names. Raises InvalidOption for an unknown name."""
    name, separator, argument = spec.partition(":")
    factory = _find_factory(name)
    if factory is None:
        raise InvalidOption(detail=_(
            "unknown source {spec!r}: use one of {names}, with :DIR after csv, binance and freqtrade"
        ).format(spec=spec, names=", ".join(source_names())))
    return factory(argument if separator else None, config)


def _find_factory(name: str) -> SourceFactory | None:
    if name in _registered:
        return _registered[name]
    if name in BUILTIN_SOURCES:
        # Built-ins import lazily, so a CLI run pays only for the source it uses.
        return importlib.import_module(BUILTIN_SOURCES[name], __package__).create
    for entry in entry_points(group=ENTRY_POINT_GROUP, name=name):
        return entry.load()
    return None
