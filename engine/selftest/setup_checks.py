"""Self-test checks of the user's setup: the configuration, the paths it selects and the free space there.

They only read, apart from one temporary file per directory, which they
remove, to prove that the directory is writable. They never create the
repository or the cache.
"""

import os
import sqlite3
import tempfile
from pathlib import Path

import psutil

from ...catalog.repository import CATALOG_FILE
from ...errors import DatabaseUnavailable, TvcatError
from ...i18n import _
from .check import CheckFailed, Outcome, Setup, passed, skipped
from .readonly import connect_without_trace

PROBE_PREFIX = ".tvcat-test-"
BYTES_PER_GB = 10**9


def check_configuration(setup: Setup) -> Outcome:
    """Load the effective configuration and name where it came from.

    The loader's InvalidConfig or ConfigUnreadable error, which names the
    file, line and key, makes the check fail.
    """
    loaded = setup.loaded
    if loaded.file is not None:
        parts = [_("file {file}, found by {reason}").format(file=loaded.file, reason=loaded.file_reason)]
    else:
        parts = [_("no configuration file found, so the defaults apply")]

    if loaded.environment is not None:
        name, variable = loaded.environment
        parts.append(_("environment section {name}, selected by {variable}").format(name=name, variable=variable))

    variables = sorted({source.variable for source in loaded.sources.values() if source.kind == "environment"})
    if variables:
        parts.append(_("values set by environment variables: {variables}").format(variables=", ".join(variables)))
    return passed("; ".join(parts))


def check_paths(setup: Setup) -> Outcome:
    """Check that the repository and cache directories exist or can be created, and are writable.

    An existing cache must open read-only as a tvcat cache. Every problem
    found is listed in one failure.
    """
    repo, cache = setup.repo, setup.cache
    findings: list[str] = []
    problems: list[str] = []
    for describe, path in ((_describe_repository, repo), (_describe_cache, cache)):
        try:
            findings.append(describe(path))
        except TvcatError as error:
            problems.append(str(error))

    if cache.resolve().is_relative_to(repo.resolve()):
        problems.append(_("the cache {cache} is inside the repository {repo}; keep the cache outside it").format(
            cache=cache, repo=repo))
    if problems:
        raise CheckFailed(detail="; ".join(problems))
    return passed("; ".join(findings))


def check_free_space(setup: Setup) -> Outcome:
    """Compare the free space on the filesystems of the repository and the cache with min_free_disk_gb."""
    minimum_gb = setup.loaded.config.sync_config.resource_limits.min_free_disk_gb
    places = _filesystem_places(setup.repo, setup.cache.parent)
    figures = [(place, psutil.disk_usage(str(place)).free) for place in places]
    if minimum_gb is None:
        return skipped(_("sync_config.resource_limits.min_free_disk_gb is not set, so there is no minimum; "
                         "{figures}").format(figures=_describe_free_space(figures)))

    below_minimum = [(place, free) for place, free in figures if free < minimum_gb * BYTES_PER_GB]
    if below_minimum:
        raise CheckFailed(detail=_(
            "{figures}; below the minimum of {minimum} GB: free some space or lower "
            "sync_config.resource_limits.min_free_disk_gb"
        ).format(figures=_describe_free_space(below_minimum), minimum=_format_number(minimum_gb)))
    return passed(_("{figures}; the minimum is {minimum} GB (sync_config.resource_limits.min_free_disk_gb)").format(
        figures=_describe_free_space(figures), minimum=_format_number(minimum_gb)))


def _describe_repository(repo: Path) -> str:
    existing = _writable_directory(repo)
    if existing != repo.absolute():
        return _("repository {path} does not exist yet and can be created in {parent}").format(
            path=repo, parent=existing)

    catalog = repo / CATALOG_FILE
    if catalog.exists() and not os.access(catalog, os.W_OK):
        raise CheckFailed(detail=_("the catalog {path} is not writable: check its owner and mode").format(path=catalog))
    return _("repository {path} is writable").format(path=repo)


def _describe_cache(cache: Path) -> str:
    existing = _writable_directory(cache.parent)
    if not cache.exists():
        return _("cache {path} does not exist yet and can be created in {parent}").format(path=cache, parent=existing)

    if not cache.is_file():
        raise CheckFailed(detail=_("the cache {path} is not a file: give a database file path").format(path=cache))
    if not os.access(cache, os.W_OK):
        raise CheckFailed(detail=_("the cache {path} is not writable: check its owner and mode").format(path=cache))
    _open_cache_read_only(cache)
    return _("cache {path} opens read-only and its directory is writable").format(path=cache)


def _writable_directory(directory: Path) -> Path:
    """Return `directory`, or its nearest existing ancestor when it does not exist, after proving it writable.

    Raises CheckFailed when that path is not a directory or a temporary file
    cannot be written in it.
    """
    directory = directory.absolute()
    existing = _nearest_existing(directory)
    if not existing.is_dir():
        if existing == directory:
            raise CheckFailed(detail=_("{path} is not a directory").format(path=directory))
        raise CheckFailed(detail=_("{path} is not a directory, so {directory} cannot be created in it").format(
            path=existing, directory=directory))

    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=PROBE_PREFIX) as probe:
            probe.write(b"tvcat")
            probe.flush()
    except OSError as error:
        raise CheckFailed(detail=_("cannot write in {path}: {reason}").format(
            path=existing, reason=error.strerror)) from error
    return existing


def _open_cache_read_only(cache: Path) -> None:
    """Open the cache read-only and check that it has the bars table. Raises DatabaseUnavailable otherwise."""
    connection = connect_without_trace(cache)
    try:
        has_bars = connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'bars'"
        ).fetchone()[0]
    except sqlite3.Error as error:
        raise DatabaseUnavailable(path=str(cache), reason=str(error)) from error
    finally:
        connection.close()
    if not has_bars:
        raise DatabaseUnavailable(path=str(cache), reason=_("it has no bars table, so it is not a tvcat cache"))


def _filesystem_places(*directories: Path) -> list[Path]:
    """Return the nearest existing path of each of `directories`, one per filesystem."""
    places: dict[int, Path] = {}
    for directory in directories:
        existing = _nearest_existing(directory.absolute())
        places.setdefault(existing.stat().st_dev, existing)
    return list(places.values())


def _nearest_existing(path: Path) -> Path:
    """Return the absolute `path` itself when it exists, else its nearest existing ancestor."""
    return next(candidate for candidate in (path, *path.parents) if candidate.exists())


def _describe_free_space(figures: list[tuple[Path, int]]) -> str:
    return "; ".join(
        _("{free} free under {path}").format(free=_format_gigabytes(free), path=place) for place, free in figures
    )


def _format_number(value: float) -> str:
    """Format `value` without trailing zeros and, unlike the `g` format, without an exponent below 10**15."""
    return f"{value:,.15g}"


def _format_gigabytes(count: int) -> str:
    return _("{gigabytes:.2f} GB ({bytes:,} bytes)").format(gigabytes=count / BYTES_PER_GB, bytes=count)
