"""`tvcat quickstart`: the round trip on the bundled sample."""

import tempfile
from pathlib import Path

import click

from ..engine.quickstart import run_quickstart
from ..i18n import _


@click.command("quickstart", help=_(
    "Run a backup and restore round trip on the bundled real sample.\n\n"
    "Works in a directory of its own and never touches your cache or repository: "
    "imports EURUSD one-hour bars, takes a full backup, imports a day of new bars "
    "and a revised last bar, takes an incremental backup, restores the state at the "
    "first backup with --at and checks it bit for bit.\n\n"
    "\b\n"
    "Examples:\n"
    "  # Run in a new temporary directory\n"
    "  tvcat quickstart\n"
    "  # Run in a directory you choose\n"
    "  tvcat quickstart --dir ./tvcat-demo"
))
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help=_("Directory for the demo cache and repository. Default: a new temporary directory."))
def quickstart_command(directory):
    directory = directory or Path(tempfile.mkdtemp(prefix="tvcat-quickstart-"))
    click.echo(_("tvcat quickstart in {directory}").format(directory=directory))
    result = run_quickstart(directory, click.echo)
    click.echo(_("done. Explore the demo with:"))
    click.echo(f"  tvcat --repo {result.directory / 'repo'} --cache {result.directory / 'cache.db'} list backups")
    click.echo(f"  sqlite3 {result.directory / 'repo' / 'catalog.db'} 'SELECT seq, time, kind, subject FROM events'")


COMMANDS = [quickstart_command]
