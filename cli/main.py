"""The `tvcat` entry point: choose the language, run the command, map errors to exit codes."""

import logging
import sys
import traceback

import click

from ..errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, TvcatError
from ..i18n import _, bind_global_domain, set_language


def _language_from_argv(argv: list[str]) -> str | None:
    """Find `--lang X` or `--lang=X` before click parses, so help text is translated too."""
    for index, argument in enumerate(argv):
        if argument == "--lang" and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith("--lang="):
            return argument.split("=", 1)[1]
    return None


def main(argv: list[str] | None = None) -> None:
    """Run tvcat with `argv` (default: the process arguments) and exit with its code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    set_language(_language_from_argv(arguments))
    # Bind before the commands are built, so click's option help is translated too.
    bind_global_domain()
    from .app import cli

    try:
        cli.main(args=arguments, prog_name="tvcat", standalone_mode=False)
    except TvcatError as error:
        click.echo(_("tvcat: error: {message}").format(message=error), err=True)
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo(_("tvcat: aborted"), err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code if error.exit_code else EXIT_USAGE)
    except click.exceptions.Exit as exit_request:
        sys.exit(exit_request.exit_code)
    except KeyboardInterrupt:
        click.echo(_("tvcat: interrupted"), err=True)
        sys.exit(EXIT_INTERRUPTED)
    except OSError as error:
        # A file system failure, such as a damaged repository layout, is not a bug in tvcat.
        logging.getLogger("tvcat").info("file system error", exc_info=True)
        click.echo(_("tvcat: error: {path}: {reason}; check that this path exists, is of the right kind "
                     "(file or directory) and is writable").format(
            path=error.filename or "-", reason=error.strerror or error), err=True)
        sys.exit(EXIT_ERROR)
    except Exception:
        logging.getLogger("tvcat").debug("unexpected error", exc_info=True)
        traceback.print_exc()
        click.echo(_("tvcat: internal error: this is a bug, please report it with the traceback above"), err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(0)


if __name__ == "__main__":
    main()
