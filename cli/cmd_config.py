"""`tvcat config validate`: check a configuration file."""

from pathlib import Path

import click
import msgspec

from ..engine.config import load_config
from ..i18n import _
from .output import print_json


@click.group("config", help=_("Check configuration files."))
def config_group():
    pass


@config_group.command("validate", help=_(
    "Check a configuration file and report every invalid setting.\n\n"
    "Each problem names the file, line, key, the value found and what is expected; an "
    "unknown key names the closest valid one. Exits with status 3 when the file is invalid.\n\n"
    "\b\n"
    "Examples:\n"
    "  # Check the sample configuration\n"
    "  tvcat config validate tvcat.yaml"
))
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help=_("Print the effective settings as JSON when the file is valid."))
def validate_command(file, as_json):
    config = load_config(file)
    if as_json:
        print_json(msgspec.to_builtins(config))
        return
    click.echo(_("{file} is valid").format(file=file))


COMMANDS = [config_group]
