import shutil
from datetime import datetime, timezone

import pytest

from tvcat.catalog import events as ev
from tvcat.catalog.repository import Repository
from tvcat.engine.backup import Scope
from tvcat.engine.remote.errors import RemoteLogDamaged
from tvcat.engine.remote.recover import recover_catalog
from tvcat.engine.remote.restore import restore_from_remote
from tvcat.engine.remote.store import S3ObjectStore
from tvcat.engine.restore import PointInTime, choose_backup_at, restore_backup

from .conftest import KEY_ID, SECRET


@pytest.fixture
def remote_config(tmp_path, remote_settings):
    path = tmp_path / "tvcat.yaml"
    path.write_text(
        "backup_config:\n  storage_backends:\n    remote:\n      enabled: true\n"
        f"      bucket: {remote_settings.bucket}\n      endpoint_url: {remote_settings.endpoint_url}\n"
        f"      prefix: {remote_settings.prefix}\n"
    )
    return path


@pytest.fixture
def credentials():
    return {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}


def test_replicate_recover_restore(cli, remote_config, credentials, sample_import_arguments, repo_path,
                                   cache_path, tmp_path, bar_rows, remote_settings):
    assert cli("import", *sample_import_arguments).returncode == 0
    assert cli("backup").returncode == 0
    original = bar_rows(cache_path)

    replicated = cli("--config", remote_config, "replicate", env=credentials)
    assert replicated.returncode == 0, replicated.stderr
    assert SECRET not in replicated.stdout + replicated.stderr
    shutil.rmtree(repo_path)
    cache_path.unlink()

    recovered = cli("--config", remote_config, "catalog", "recover", "--from", "remote", env=credentials)
    assert recovered.returncode == 0, recovered.stderr
    assert cli("audit", "verify").returncode == 0

    repository = Repository(repo_path, create=False)
    repository.store = S3ObjectStore(remote_settings)
    choice = choose_backup_at(repository, PointInTime(datetime.now(timezone.utc), False), Scope())
    target = tmp_path / "restored.db"
    restore_backup(repository, choice, target)
    repository.close()
    assert bar_rows(target) == original
    assert not list((repo_path / "objects").glob("*/*"))


def test_replicate_without_credentials_fails(cli, remote_config, sample_import_arguments, repo_path):
    assert cli("import", *sample_import_arguments).returncode == 0

    result = cli("--config", remote_config, "replicate", env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})

    assert result.returncode == 3
    assert "AWS_ACCESS_KEY_ID" in result.stderr


def test_recover_rejects_broken_chain(repository, remote_settings, tmp_path):
    from tvcat.catalog import events as ev
    from tvcat.engine.remote.replicate import replicate_repository
    from tvcat.engine.remote.segments import encode_segment

    repository.record(ev.ImportFailed(path="/a.csv", error="one"))
    repository.record(ev.ImportFailed(path="/b.csv", error="two"))
    remote = S3ObjectStore(remote_settings)
    replicate_repository(repository, remote)
    records = list(ev.iter_events(repository.connection))
    forged = ev.EventRecord(3, records[1].time, "import.failed", "/c.csv", '{"path":"/c.csv","error":"x"}',
                            "f" * 64, "0" * 64)
    remote.put_file("team/tvcat/log/000000000003-000000000003.jsonl.zst", encode_segment([forged]))

    with pytest.raises(RemoteLogDamaged) as raised:
        recover_catalog(remote, tmp_path / "fresh")

    assert "event 3" in str(raised.value)
    assert not (tmp_path / "fresh" / "catalog.db").exists()


def test_recover_rejects_existing_catalog(repository, remote_settings):
    from tvcat.errors import InvalidOption

    with pytest.raises(InvalidOption):
        recover_catalog(S3ObjectStore(remote_settings), repository.path)


def test_restore_at_without_repository(cli, remote_config, credentials, sample_import_arguments, repo_path,
                                       cache_path, tmp_path, bar_rows, remote_settings):
    assert cli("import", *sample_import_arguments).returncode == 0
    assert cli("backup").returncode == 0
    original = bar_rows(cache_path)
    assert cli("--config", remote_config, "replicate", env=credentials).returncode == 0
    shutil.rmtree(repo_path)

    result = restore_from_remote(S3ObjectStore(remote_settings), PointInTime(datetime.now(timezone.utc), False),
                                 tmp_path / "restored.db")

    assert bar_rows(tmp_path / "restored.db") == original
    assert result.bar_count == len(original)
    assert not repo_path.exists()


def test_restore_at_picks_earlier_backup(cli, remote_config, credentials, sample_import_arguments, repo_path,
                                         cache_path, tmp_path, bar_rows, remote_settings):
    assert cli("import", *sample_import_arguments).returncode == 0
    assert cli("backup").returncode == 0
    first = bar_rows(cache_path)
    second_series = [*sample_import_arguments]
    second_series[second_series.index("FX:EURUSD")] = "FX:GBPUSD"
    assert cli("import", *second_series).returncode == 0
    assert cli("backup").returncode == 0
    repository = Repository(repo_path, create=False)
    first_committed = repository.backups()[0].committed_at
    repository.close()
    assert cli("--config", remote_config, "replicate", env=credentials).returncode == 0
    shutil.rmtree(repo_path)

    point = PointInTime(datetime.strptime(first_committed, ev.TIME_FORMAT).replace(tzinfo=timezone.utc), False)
    restore_from_remote(S3ObjectStore(remote_settings), point, tmp_path / "at-first.db")
    restore_from_remote(S3ObjectStore(remote_settings), PointInTime(datetime.now(timezone.utc), False),
                        tmp_path / "latest.db")

    assert bar_rows(tmp_path / "at-first.db") == first
    assert bar_rows(tmp_path / "latest.db") == bar_rows(cache_path)
    assert bar_rows(tmp_path / "latest.db") != first
