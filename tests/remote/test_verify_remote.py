import pytest

from tvcat.catalog.repository import Repository
from tvcat.engine.remote.replicate import replicate_repository
from tvcat.engine.remote.store import S3ObjectStore
from tvcat.engine.remote.verify import verify_remote


@pytest.fixture
def replicated(cli, sample_import_arguments, repo_path, remote_settings):
    """The remote of a repository with one backup of the bundled sample, and the chunk ids of that backup."""
    assert cli("import", *sample_import_arguments).returncode == 0
    assert cli("backup").returncode == 0
    repository = Repository(repo_path, create=False)
    remote = S3ObjectStore(remote_settings)
    replicate_repository(repository, remote)
    chunks = [row[0] for row in repository.connection.execute("SELECT DISTINCT chunk_id FROM backup_chunks WHERE chunk_id IS NOT NULL ORDER BY 1")]
    repository.close()
    return remote, chunks


def test_sound_remote_passes(replicated):
    remote, _ = replicated

    report = verify_remote(remote, read_data=True)

    assert report.ok
    assert report.backups_checked == 1


def test_missing_remote_object_named(replicated):
    remote, chunks = replicated
    remote.delete(chunks[0])

    report = verify_remote(remote)

    [fault] = report.faults
    assert fault.problem == "missing"
    assert fault.object_id == chunks[0]
    assert fault.series == ["FX:EURUSD 60"]
    assert report.broken_backups == fault.backups


def test_corrupted_remote_object_found(replicated):
    remote, chunks = replicated
    data = bytearray(remote.get(chunks[0]))
    data[-5] ^= 0xFF
    remote.delete(chunks[0])
    remote.put(chunks[0], bytes(data))

    assert verify_remote(remote).ok
    report = verify_remote(remote, read_data=True)

    [fault] = report.faults
    assert fault.problem == "corrupted"
    assert fault.object_id == chunks[0]
