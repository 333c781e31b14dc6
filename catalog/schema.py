"""Load the sections of schema.sql and open the databases it defines."""

import re
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
        _replace_changed_views(connection, section)
    except sqlite3.Error as error:
        raise DatabaseUnavailable(path=str(path), reason=str(error)) from error
    return connection


_VIEW_PATTERN = re.compile(r"CREATE VIEW IF NOT EXISTS (\w+) AS\b(.*?);", re.DOTALL)


@cache
def _view_definitions(section: str) -> dict[str, str]:
    """Return each view of the section: name -> the CREATE VIEW statement as SQLite stores it."""
    return {name: f"CREATE VIEW {name} AS{body}"
            for name, body in _VIEW_PATTERN.findall(schema_sections()[section])}


def _replace_changed_views(connection: sqlite3.Connection, section: str) -> None:
    """Drop and create again every view whose stored definition differs from schema.sql.

    CREATE VIEW IF NOT EXISTS keeps an old definition, so a repository made
    by an older tvcat would keep old views. Only a changed view is written,
    because a schema change on every open would contend with other
    processes for the write lock.
    """
    stored = dict(connection.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'").fetchall())
    changed = [(name, sql) for name, sql in _view_definitions(section).items()
               if " ".join(stored.get(name, "").split()) != " ".join(sql.split())]
    if not changed:
        return
    connection.execute("BEGIN IMMEDIATE")
    try:
        for name, sql in changed:
            connection.execute(f"DROP VIEW IF EXISTS {name}")
            connection.execute(sql)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
