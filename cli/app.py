"""The click group, its global options and the command registry."""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import click

from .. import __version__
from ..i18n import _

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def default_data_dir() -> Path:
    """Return $XDG_DATA_HOME/tvcat, or ~/.local/share/tvcat."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tvcat"


@dataclass
class AppContext:
    """Paths and switches shared by every command."""

    repo: Path
    cache: Path
    verbose: bool
    opened: list = field(default_factory=list)

    def repository(self, create: bool = True):
        from ..catalog.repository import Repository

        repository = Repository(self.repo, create=create)
        self.opened.append(repository)
        return repository

    def bar_cache(self, create: bool = True):
        from ..engine.cache import BarCache
        from ..errors import InvalidOption

        if self.cache.resolve().is_relative_to(self.repo.resolve()):
            raise InvalidOption(detail=_(
                "the cache {cache} is inside the repository {repo}; keep the cache outside it"
            ).format(cache=self.cache, repo=self.repo))
        cache = BarCache(self.cache, create=create)
        self.opened.append(cache)
        return cache

    def close(self) -> None:
        for resource in reversed(self.opened):
            resource.close()
        self.opened.clear()


EXIT_STATUS_HELP = _(
    "Exit status: 0 success, 1 error, 2 invalid usage, 3 invalid input, 4 not found, "
    "5 no backup at the requested time, 6 integrity fault found, 7 confirmation required, "
    "130 interrupted."
)


@click.group(context_settings=CONTEXT_SETTINGS, epilog=EXIT_STATUS_HELP,
             help=_("Keep OHLCV bar data safe: import bars into a SQLite cache, back them up into a "
                    "deduplicating repository, restore any earlier state and audit every action."))
@click.option("--repo", type=click.Path(path_type=Path), envvar="TVCAT_REPO",
              help=_("Repository directory (catalog.db and objects). Default: $XDG_DATA_HOME/tvcat/repo; "
                     "environment: TVCAT_REPO."))
@click.option("--cache", type=click.Path(path_type=Path), envvar="TVCAT_CACHE",
              help=_("Bar cache database. Default: $XDG_DATA_HOME/tvcat/cache.db; environment: TVCAT_CACHE."))
@click.option("--lang", metavar="LANG", help=_("Language of messages: en or zh_CN. Default: the locale."))
@click.option("-v", "--verbose", is_flag=True, help=_("Log progress and details to stderr."))
@click.version_option(__version__, "--version", prog_name="tvcat", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, repo: Path | None, cache: Path | None, lang: str | None, verbose: bool) -> None:
    data_dir = default_data_dir()
    ctx.obj = AppContext(
        repo=repo or data_dir / "repo",
        cache=cache or data_dir / "cache.db",
        verbose=verbose,
    )
    ctx.call_on_close(ctx.obj.close)
    # Without --verbose the CLI reports errors itself, so log lines would repeat them.
    logging.basicConfig(
        level=logging.INFO if verbose else logging.CRITICAL,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _register() -> None:
    from . import (
        cmd_backup, cmd_catalog, cmd_config, cmd_import, cmd_list, cmd_quickstart, cmd_restore, cmd_status,
        cmd_verify,
    )

    for module in (cmd_import, cmd_backup, cmd_list, cmd_restore, cmd_verify, cmd_status, cmd_catalog, cmd_config,
                   cmd_quickstart):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()
