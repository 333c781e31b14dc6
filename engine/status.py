"""Status: what the cache contains and what the repository has done, from the projections."""

from pathlib import Path
from typing import Any

from ..catalog.repository import Repository


def collect_status(repository: Repository | None, cache_path: Path, verbose: bool = False) -> dict[str, Any]:
    """Return a JSON-ready status: cache size and series, backups by type, last failure."""
    status: dict[str, Any] = {"cache": _cache_status(cache_path, verbose), "repository": None}
    if repository is not None:
        status["repository"] = _repository_status(repository)
    return status


def _cache_status(path: Path, verbose: bool) -> dict[str, Any]:
    from .cache import connect_readonly

    if not path.exists():
        return {"path": str(path), "exists": False}
    size = sum(Path(f"{path}{suffix}").stat().st_size for suffix in ("", "-wal") if Path(f"{path}{suffix}").exists())
    connection = connect_readonly(path)
    try:
        rows = connection.execute(
            "SELECT symbol, timeframe, count(*), min(ts), max(ts) FROM bars GROUP BY symbol, timeframe "
            "ORDER BY symbol, timeframe"
        ).fetchall()
    finally:
        connection.close()
    series = [
        {"symbol": symbol, "timeframe": timeframe, "bars": count, "first_ts": first, "last_ts": last}
        for symbol, timeframe, count, first, last in rows
    ]
    result = {"path": str(path), "exists": True, "size_bytes": size, "series_count": len(series),
              "bar_count": sum(item["bars"] for item in series)}
    if verbose:
        result["series"] = series
    return result


def _repository_status(repository: Repository) -> dict[str, Any]:
    connection = repository.connection
    by_type = {
        backup_type: {"count": count, "last_backup_id": last_id, "last_committed_at": last_time}
        for backup_type, count, last_id, last_time in connection.execute(
            "SELECT type, count(*), max(backup_id), max(committed_at) FROM backups "
            "WHERE status = 'committed' GROUP BY type ORDER BY type"
        )
    }
    failure = connection.execute(
        "SELECT time, kind, subject, json_extract(payload, '$.error') FROM events "
        "WHERE kind LIKE '%.failed' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    event_count = connection.execute("SELECT count(*) FROM events").fetchone()[0]
    stored = repository_bytes(connection)
    return {
        "path": str(repository.path),
        "events": event_count,
        "backups_by_type": by_type,
        "bytes_stored": stored,
        "last_failure": None if failure is None else {
            "time": failure[0], "kind": failure[1], "subject": failure[2], "error": failure[3]},
    }


def repository_bytes(connection) -> int:
    """Return the bytes of the object files, as the log records them: all written, less all collected.

    Every committed backup, forgotten ones included, records the bytes of
    the objects it wrote, and every garbage collection the bytes it freed.
    Objects of a backup that failed half-way are not counted until a
    collection deletes them.
    """
    written = connection.execute(
        "SELECT coalesce(sum(bytes_written), 0) FROM backups WHERE committed_at IS NOT NULL"
    ).fetchone()[0]
    freed = connection.execute(
        "SELECT coalesce(sum(json_extract(payload, '$.bytes_freed')), 0) FROM events WHERE kind = 'gc.completed'"
    ).fetchone()[0]
    return max(written - freed, 0)
