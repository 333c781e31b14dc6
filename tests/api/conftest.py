"""Fixtures of the Python API tests: an isolated working directory, real exports, a configuration and a filled cache."""

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from tvcat.catalog.repository import Repository
from tvcat.engine.cache import BarCache
from tvcat.engine.importing import import_files

# Real TradingView exports: one hourly and one daily series, small enough for quick tests.
BTCUSDT_EXPORT = "BINANCE_BTCUSDT, 60.csv"
SOLUSD_EXPORT = "CRYPTO_SOLUSD, 1D.csv"
# The bars of each export, by (symbol, timeframe).
EXPORT_BARS = {("BINANCE:BTCUSDT", "60"): 1902, ("CRYPTO:SOLUSD", "1D"): 300}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="session")
def export_bars() -> dict[tuple[str, str], int]:
    """The bars of each export in `exports`, by (symbol, timeframe)."""
    return EXPORT_BARS


@pytest.fixture
def environment(monkeypatch, tmp_path: Path, clean_environ) -> Path:
    """Run in tmp_path with no configuration of the host; return tmp_path.

    The configuration variables, TVCAT_REPO and TVCAT_CACHE are removed, and
    the XDG directories lie under tmp_path, so default paths stay inside it.
    """
    for name in list(os.environ):
        if name not in clean_environ or name in ("TVCAT_REPO", "TVCAT_CACHE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg-config-dirs"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def exports(tmp_path: Path, tradingview_files: list[Path]) -> Path:
    """A folder with copies of the BTCUSDT hourly and SOLUSD daily exports."""
    directory = tmp_path / "exports"
    directory.mkdir()
    by_name = {path.name: path for path in tradingview_files}
    for name in (BTCUSDT_EXPORT, SOLUSD_EXPORT):
        if name not in by_name:
            pytest.skip(f"the real export {name!r} is missing")
        shutil.copy2(by_name[name], directory / name)
    return directory


@pytest.fixture
def config_dict(tmp_path: Path, exports: Path) -> dict:
    """A whole configuration: the exports as the primary source, the cache and the repository in tmp_path."""
    return {
        "sync_config": {"primary": f"csv:{exports}", "cache_path": str(tmp_path / "cache.db")},
        "backup_config": {"backup_dir": str(tmp_path / "repo")},
    }


@pytest.fixture
def config_file(environment: Path, config_dict: dict) -> Path:
    """config_dict written as ./tvcat.yaml, which the effective configuration finds."""
    path = environment / "tvcat.yaml"
    path.write_text(yaml.safe_dump(config_dict), encoding="utf-8")
    return path


@pytest.fixture
def filled_cache(config_dict: dict, exports: Path) -> Path:
    """Import both exports into the configured cache, as `tvcat import` does; return the cache path."""
    cache_path = Path(config_dict["sync_config"]["cache_path"])
    repository = Repository(config_dict["backup_config"]["backup_dir"])
    cache = BarCache(cache_path)
    try:
        import_files(repository, cache, sorted(exports.glob("*.csv")))
    finally:
        cache.close()
        repository.close()
    return cache_path


def catalog_rows(repository_path: Path, query: str, parameters: tuple = ()) -> list[tuple]:
    """Return the rows of a query on catalog.db, closing the connection before returning."""
    connection = sqlite3.connect(repository_path / "catalog.db")
    try:
        return connection.execute(query, parameters).fetchall()
    finally:
        connection.close()


@pytest.fixture(scope="session")
def query_catalog():
    """The catalog_rows function."""
    return catalog_rows
