"""Fixtures shared by the tvcat tests: temporary repositories, the real bar files and the CLI."""

import os
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tvcat.catalog.repository import Repository
from tvcat.engine.cache import BarCache

# The real bar files live in shared/data beside the repository checkout, which
# CI clones next to it. A bare checkout has no such folder.
DATA = (Path(__file__).resolve().parents[1] / "../shared/data").resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"real bar files not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def tradingview_files(data_dir: Path) -> list[Path]:
    """Every TradingView export of the real data, sorted by name."""
    files = sorted((data_dir / "tradingview").glob("*.csv"))
    if not files:
        pytest.skip(f"no TradingView exports found in {data_dir / 'tradingview'}")
    return files


# The MetaTrader export bundled with the package, MIT-licensed; its provenance is beside it.
BUNDLED_SAMPLE = Path(__file__).resolve().parents[1] / "engine" / "sample_data" / "EURUSD60.csv"


@pytest.fixture(scope="session")
def sample_import_arguments() -> list[str]:
    """The arguments of `tvcat import` for the bundled sample, which works without ../shared/data."""
    return [str(BUNDLED_SAMPLE), "--symbol", "FX:EURUSD", "--timeframe", "60", "--tz", "UTC"]


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return tmp_path / "cache.db"


@pytest.fixture
def repository(repo_path: Path):
    repository = Repository(repo_path)
    yield repository
    repository.close()


@pytest.fixture
def cache(cache_path: Path):
    """The bar cache at cache_path. A backup in this process closes its connection itself."""
    cache = BarCache(cache_path)
    yield cache
    cache.close()


# Variables that select or override a configuration, which must not leak from the host into a test.
CONFIG_VARIABLES = ("TVCAT_CONFIG", "SYNC_BACKUP_CONFIG", "TVCAT_ENV", "SYNC_BACKUP_ENV",
                    "SYNC_INTERVAL", "BACKUP_DIR", "MAX_CONCURRENT_TASKS")


def clean_environment() -> dict[str, str]:
    """Return os.environ without configuration variables, TVCAT_<SECTION>__<KEY> overrides included."""
    return {
        name: value for name, value in os.environ.items()
        if name not in CONFIG_VARIABLES and not (name.startswith("TVCAT_") and "__" in name)
    }


def make_cli(repo_path: Path, cache_path: Path, data_home: Path):
    """Return a function that runs `tvcat ARGS...` in a subprocess against this repository and cache.

    The function returns the CompletedProcess with text stdout and stderr.
    Standard input is /dev/null, so no command runs with a terminal. Messages are
    in English. The working directory and XDG_DATA_HOME are `data_home`, and
    the XDG configuration directories are beside it, so no default path leaves
    the test's directory and no configuration of the host applies. `env` adds
    variables for one call.
    """
    environment = {
        **clean_environment(),
        "TVCAT_REPO": str(repo_path),
        "TVCAT_CACHE": str(cache_path),
        "TVCAT_LANG": "en",
        "XDG_DATA_HOME": str(data_home),
        "XDG_CONFIG_HOME": str(data_home.parent / "xdg-config"),
        "XDG_CONFIG_DIRS": str(data_home.parent / "xdg-config-dirs"),
    }
    data_home.mkdir(parents=True, exist_ok=True)

    def run(*arguments, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tvcat.cli.main", *map(str, arguments)],
            env={**environment, **(env or {})}, cwd=data_home, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=120,
        )

    return run


@pytest.fixture(scope="session")
def clean_environ() -> dict[str, str]:
    """os.environ without configuration variables, as clean_environment returns it."""
    return clean_environment()


@pytest.fixture(scope="session")
def cli_factory():
    """The make_cli function, for tests that set up a repository in a wider scope."""
    return make_cli


@pytest.fixture
def cli(tmp_path: Path, repo_path: Path, cache_path: Path):
    """Run `tvcat ARGS...` against the test's repository and cache, as make_cli describes."""
    return make_cli(repo_path, cache_path, tmp_path / "xdg-data")


def _cell_bits(value):
    """Return a cell as (type name, value), with a REAL as its eight IEEE 754 bytes."""
    if isinstance(value, float):
        return ("real", struct.pack("<d", value))
    return (type(value).__name__, value)


def read_bar_rows(path: Path) -> list[tuple]:
    """Return every row of the `bars` table in key order, each cell as _cell_bits gives it.

    The connection is closed before returning, because no sqlite3 connection
    to a cache may stay open in a process that runs a backup.
    """
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute("SELECT * FROM bars ORDER BY 1, 2, 3").fetchall()
    finally:
        connection.close()
    return [tuple(_cell_bits(value) for value in row) for row in rows]


@pytest.fixture(scope="session")
def bar_rows():
    """The read_bar_rows function, for comparing two caches bit for bit."""
    return read_bar_rows
