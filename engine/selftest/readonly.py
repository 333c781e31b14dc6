"""Open a user's SQLite database read-only, leaving no file beside it."""

import sqlite3
from pathlib import Path
from urllib.parse import quote

from ...errors import DatabaseUnavailable

# Files that hold committed pages outside the main database file.
_JOURNAL_SUFFIXES = ("-wal", "-journal")


def connect_without_trace(path: Path) -> sqlite3.Connection:
    """Open the database at `path` read-only, creating no -wal or -shm file beside it.

    A read-only connection to a WAL database creates the -wal and -shm files
    when they are missing, and cannot delete them when it closes. Without a
    -wal or -journal file every committed page is in the main file, so the
    connection then opens it as immutable, which creates nothing. With one of
    them, another process may hold newer pages there, so the connection opens
    normally and reads them. Raises DatabaseUnavailable when SQLite cannot
    open the file.

    NOTE: an immutable connection takes no lock. A tvcat process that writes
    and checkpoints while this connection reads can make the reads fail as a
    malformed database, although the file is sound.
    """
    journaled = any(Path(f"{path}{suffix}").exists() for suffix in _JOURNAL_SUFFIXES)
    options = "mode=ro" if journaled else "mode=ro&immutable=1"
    try:
        return sqlite3.connect(f"file:{quote(str(path.absolute()))}?{options}", uri=True)
    except sqlite3.Error as error:
        raise DatabaseUnavailable(path=str(path), reason=str(error)) from error
