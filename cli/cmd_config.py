"""`tvcat config validate` and `tvcat config show`: check a file and print the effective settings."""

from pathlib import Path

import click
import msgspec

from ..engine.config import load_config
from ..engine.config.view import effective_settings, masked_builtins
from ..i18n import _
from .output import print_json, print_table


@click.group("config", help=_("Check configuration files and show the effective settings."))
def config_group():
    pass


@config_group.command("validate", help=_(
    "Check a configuration file and report every invalid setting.\n\n"
    "Each problem names the file, line, key, the value found and what is expected; an "
    "unknown key names the closest valid one. Every section under `environments` is "
    "checked too. Environment variables are not applied. Exits with status 3 when the "
    "file is invalid.\n\n"
    "\b\n"
    "Examples:\n"
    "  # Check the sample configuration\n"
    "  tvcat config validate tvcat.yaml"
))
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help=_("Print the file's settings as JSON when it is valid, with secrets masked."))
def validate_command(file, as_json):
    config = load_config(file)
    if as_json:
        print_json(masked_builtins(config))
        return
    click.echo(_("{file} is valid").format(file=file))


@config_group.command("show", help=_(
    "Print the effective configuration and where each value comes from.\n\n"
    "The file is the one --config names, else $TVCAT_CONFIG, $SYNC_BACKUP_CONFIG, "
    "./tvcat.yaml, $XDG_CONFIG_HOME/tvcat/tvcat.yaml or tvcat/tvcat.yaml under "
    "$XDG_CONFIG_DIRS, the first that exists. TVCAT_ENV or SYNC_BACKUP_ENV selects a "
    "section under `environments`. Variables such as TVCAT_SYNC_CONFIG__SYNC_INTERVAL, "
    "SYNC_INTERVAL, BACKUP_DIR and MAX_CONCURRENT_TASKS override single keys. "
    "Passwords, tokens and keys are masked.\n\n"
    "\b\n"
    "Examples:\n"
    "  tvcat config show\n"
    "  SYNC_INTERVAL=120 tvcat --config tvcat.yaml config show --json"
))
@click.option("--json", "as_json", is_flag=True, help=_("Print the settings and their sources as JSON."))
@click.pass_obj
def show_command(app, as_json):
    loaded = app.loaded
    settings = effective_settings(loaded)
    summary = {
        "file": str(loaded.file) if loaded.file else None,
        "file_found_by": loaded.file_reason,
        "environment": loaded.environment[0] if loaded.environment else None,
        "environment_variable": loaded.environment[1] if loaded.environment else None,
        "repository": str(app.repo),
        "cache": str(app.cache),
    }

    if as_json:
        print_json({**summary, "settings": [msgspec.to_builtins(setting) for setting in settings]})
        return

    if loaded.file:
        click.echo(_("configuration file: {file} (found by {reason})").format(
            file=loaded.file, reason=loaded.file_reason))
    else:
        click.echo(_("configuration file: none found, so defaults and environment variables apply"))
    if loaded.environment:
        click.echo(_("environment: {name} (from {variable})").format(
            name=loaded.environment[0], variable=loaded.environment[1]))
    click.echo(_("repository: {path}").format(path=app.repo))
    click.echo(_("cache: {path}").format(path=app.cache))
    print_table(None, [_("key"), _("value"), _("source")],
                [[setting.key, _format_value(setting.value), setting.source.describe()] for setting in settings])


def _format_value(value) -> str:
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode("utf-8")


COMMANDS = [config_group]
