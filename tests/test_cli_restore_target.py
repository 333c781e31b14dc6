"""A restore of some series keeps the other series of the target, so the target must be a tvcat cache."""

import hashlib
import json
import sqlite3

import pytest

from tvcat.catalog import events as ev
from tvcat.errors import AmbiguousGuideId


def test_scoped_restore_rejects_foreign_database(cli, sample_import_arguments, tmp_path):
    assert cli("import", *sample_import_arguments).returncode == 0
    assert cli("backup", "--type", "full").returncode == 0
    backup_id = json.loads(cli("list", "backups", "--json").stdout)[0]["backup_id"]
    other = tmp_path / "orders.db"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, side TEXT)")
    connection.commit()
    connection.close()
    before = hashlib.sha256(other.read_bytes()).hexdigest()

    result = cli("restore", backup_id, "--symbols", "FX:EURUSD", "--target-db", other, "--force")

    assert result.returncode == 3
    assert "is not a tvcat cache" in result.stderr
    assert hashlib.sha256(other.read_bytes()).hexdigest() == before


def test_guide_id_of_two_backups_in_one_second(repository):
    backup_ids = ["20261205T030000.000001Z-full-aaaa", "20261205T030000.000002Z-full-bbbb"]
    for backup_id in backup_ids:
        repository.record(ev.BackupStarted(backup_id=backup_id, type="full"))
        # Committing for real needs a manifest; the guide id depends only on the id and the status.
        repository.connection.execute(
            "UPDATE backups SET status = 'committed', committed_at = '2026-12-05T03:00:01.000000Z' "
            "WHERE backup_id = ?", (backup_id,))
    guide_id = repository.backup(backup_ids[0]).guide_id

    with pytest.raises(AmbiguousGuideId) as raised:
        repository.find_backup(guide_id)

    assert str(raised.value).startswith(f"{guide_id} names several backups started in that second")
    assert backup_ids[1] in str(raised.value)
