"""Open the repository and the bar cache that Settings select, for one operation at a time.

Each operation opens its own connections on the thread that runs it and
closes them before it returns. No connection stays open between calls, so
an API object keeps no file open and needs no closing.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from ..catalog.repository import CATALOG_FILE, Repository
from ..engine.cache import BarCache
from ..errors import InvalidOption
from ..i18n import _
from .settings import Settings


@contextmanager
def open_repository(settings: Settings, create: bool = True) -> Iterator[Repository]:
    """Open the repository for the `with` block; raise RepositoryNotFound when it is missing and `create` is false."""
    repository = Repository(settings.repository_path, create=create)
    try:
        yield repository
    finally:
        repository.close()


@contextmanager
def open_cache(settings: Settings, create: bool = True) -> Iterator[BarCache]:
    """Open the bar cache for the `with` block; raise CacheNotFound when it is missing and `create` is false.

    Raises InvalidOption when the cache lies inside the repository, which
    the CLI rejects as well.
    """
    check_cache_location(settings)
    cache = BarCache(settings.cache_path, create=create)
    try:
        yield cache
    finally:
        cache.close()


def check_cache_location(settings: Settings) -> None:
    """Raise InvalidOption when the cache file lies inside the repository directory."""
    if settings.cache_path.resolve().is_relative_to(settings.repository_path.resolve()):
        raise InvalidOption(detail=_(
            "the cache {cache} is inside the repository {repo}; keep the cache outside it"
        ).format(cache=settings.cache_path, repo=settings.repository_path))


def repository_exists(settings: Settings) -> bool:
    return (settings.repository_path / CATALOG_FILE).exists()


def prepare_storage(settings: Settings) -> None:
    """Create the repository and the cache when missing and check that both open."""
    with open_repository(settings), open_cache(settings):
        pass
