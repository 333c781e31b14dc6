"""The click group, its global options and the command registry."""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import click

from .. import __version__
from ..i18n import _

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@dataclass
class AppContext:
    """Options shared by every command, and the configuration, which is read on first use.

    Commands that never touch the repository or the cache, such as
    `config validate FILE`, so run even when the effective configuration is
    invalid.
    """

    repo_option: Path | None = None
    cache_option: Path | None = None
    config_option: Path | None = None
    verbose: bool = False
    opened: list = field(default_factory=list)
    _loaded: object = None

    @property
    def loaded(self):
        """The effective configuration (LoadedConfig), read from the file and environment once."""
        if self._loaded is None:
            from ..engine.config import load_effective_config

            self._loaded = load_effective_config(self.config_option)
            if self._loaded.config.debug_config.verbose_logging:
                logging.getLogger().setLevel(logging.INFO)
        return self._loaded

    @property
    def config(self):
        return self.loaded.config

    @property
    def repo(self) -> Path:
        """--repo or TVCAT_REPO, else the configured repository, else the XDG default.

        The configuration is read even when the option is given, so an invalid
        setting stops every command that touches the repository.
        """
        from ..engine.config.paths import repository_path

        configured = repository_path(self.config)
        return self.repo_option or configured

    @property
    def cache(self) -> Path:
        """--cache or TVCAT_CACHE, else sync_config.cache_path, else the XDG default."""
        from ..engine.config.paths import cache_path

        configured = cache_path(self.config)
        return self.cache_option or configured

    def reject_dry_run(self, command: str) -> None:
        """Raise InvalidOption when debug_config.dry_run is set, for a command that has no dry-run mode."""
        from ..errors import InvalidOption

        if self.config.debug_config.dry_run:
            source = self.loaded.source(("debug_config", "dry_run")).describe()
            raise InvalidOption(detail=_(
                "debug_config.dry_run is true ({source}), but {command} has no dry-run mode and would change "
                "data: set dry_run to false to run it"
            ).format(source=source, command=command))

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
@click.option("--config", "config_file", type=click.Path(path_type=Path), metavar="FILE",
              help=_("Configuration file. Default: $TVCAT_CONFIG, $SYNC_BACKUP_CONFIG, ./tvcat.yaml, "
                     "then $XDG_CONFIG_HOME/tvcat/tvcat.yaml."))
@click.option("--repo", type=click.Path(path_type=Path), envvar="TVCAT_REPO",
              help=_("Repository directory (catalog.db and objects). Default: backup_config.backup_dir, "
                     "else $XDG_DATA_HOME/tvcat/repo; environment: TVCAT_REPO."))
@click.option("--cache", type=click.Path(path_type=Path), envvar="TVCAT_CACHE",
              help=_("Bar cache database. Default: sync_config.cache_path, else $XDG_DATA_HOME/tvcat/cache.db; "
                     "environment: TVCAT_CACHE."))
@click.option("--lang", metavar="LANG", help=_("Language of messages: en or zh_CN. Default: the locale."))
@click.option("-v", "--verbose", is_flag=True, help=_("Log progress and details to stderr."))
@click.version_option(__version__, "--version", prog_name="tvcat", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, repo: Path | None, cache: Path | None, lang: str | None,
        verbose: bool) -> None:
    ctx.obj = AppContext(repo_option=repo, cache_option=cache, config_option=config_file, verbose=verbose)
    ctx.call_on_close(ctx.obj.close)
    # Without --verbose the CLI reports errors itself, so log lines would repeat them.
    logging.basicConfig(
        level=logging.INFO if verbose else logging.CRITICAL,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _register() -> None:
    from . import (
        cmd_backup, cmd_cat, cmd_catalog, cmd_config, cmd_daemon, cmd_gaps, cmd_import, cmd_list, cmd_prune, cmd_quickstart,
        cmd_replicate, cmd_report, cmd_restore, cmd_status, cmd_sync, cmd_test, cmd_verify,
    )

    for module in (cmd_import, cmd_sync, cmd_gaps, cmd_backup, cmd_prune, cmd_report, cmd_list, cmd_restore, cmd_cat, cmd_verify, cmd_status, cmd_catalog,
                   cmd_config, cmd_quickstart, cmd_daemon, cmd_test, cmd_replicate):
        for command in module.COMMANDS:
            cli.add_command(command)
    # restic users know the command as forget.
    cli.add_command(cmd_prune.prune_command, name="forget")


_register()
