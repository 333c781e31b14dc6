"""Rendering for people (rich tables) and for scripts (JSON)."""

import sys
from datetime import datetime, timezone
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.table import Table

_json = msgspec.json.Encoder()


# Tables written to a pipe or file are not cut to 80 columns.
NON_TERMINAL_WIDTH = 200


def console() -> Console:
    width = None if sys.stdout.isatty() else NON_TERMINAL_WIDTH
    return Console(highlight=False, width=width)


def print_json(value: Any) -> None:
    """Write `value` as one JSON document on stdout."""
    click.echo(msgspec.json.format(_json.encode(value), indent=2).decode("utf-8"))


def print_table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, show_lines=False, header_style="bold")
    for index, column in enumerate(columns):
        # The first column contains ids that people copy, so it is never cut;
        # other cells wrap onto more lines instead of ending in "…".
        table.add_column(column, no_wrap=index == 0, overflow="fold",
                         min_width=len(str(rows[0][0])) if index == 0 and rows else None)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    console().print(table)


def format_bar_time(ts: int | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M")


def format_bytes(count: int | None) -> str:
    if count is None:
        return ""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def split_list(values: tuple[str, ...], option_name: str) -> list[str] | None:
    """Flatten the repeated and comma-separated values of the option `option_name`.

    Returns None when the option was not given. Raises InvalidOption when it
    was given with no item, as in `--symbols ''` or `--symbols ,,`, because
    reading that as "all" would widen what the command acts on.
    """
    from ..errors import InvalidOption
    from ..i18n import _

    if not values:
        return None
    items = [item.strip() for value in values for item in value.split(",") if item.strip()]
    if not items:
        raise InvalidOption(
            detail=_(
                "the list given to {option} is empty: pass at least one comma-separated value, "
                "or leave out {option} to select all"
            ).format(option=option_name)
        )
    return items


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
