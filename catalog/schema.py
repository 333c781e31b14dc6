"""Load the sections of schema.sql and open the databases it defines."""

import sqlite3
from functools import cache
from pathlib import Path

from ..errors import DatabaseUnavailable

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema.sql"
SCHEMA_VERSION = 1
_SECTION_MARK = "-- @database "


@cache
def schema_sections() -> dict[str, str]:
    """Return the SQL of each `-- @database NAME` section of schema.sql, by name."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in SCHEMA_PATH.read_text(encoding="utf-8").splitlines():
        if line.startswith(_SECTION_MARK):
            current = sections.setdefault(line[len(_SECTION_MARK):].strip(), [])
            continue
        if current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def connect(path: Path | str, section: str) -> sqlite3.Connection:
    """Open (creating if needed) a database of schema.sql's `section`, in WAL mode.

    The connection runs in autocommit mode: callers open transactions with
    explicit BEGIN statements so that an event and its projection rows, or a
    batch of bars and their change tracking, commit together.
    """
    try:
        connection = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.executescript(schema_sections()[section])
    except sqlite3.Error as error:
        raise DatabaseUnavailable(path=str(path), reason=str(error)) from error
    return connection
