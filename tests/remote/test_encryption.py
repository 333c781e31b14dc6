"""Client-side encryption of the remote copy: names reveal nothing, a wrong key is a clear error."""

import secrets
from pathlib import Path

import boto3
import msgspec
import pytest

from tvcat.engine.backup import BackupType, create_backup
from tvcat.engine.importing import import_files
from tvcat.engine.remote.cipher import RemoteDecryptFailed, RemoteNeedsKey, RemoteNotEncrypted
from tvcat.engine.remote.recover import recover_catalog
from tvcat.engine.remote.replicate import replicate_repository
from tvcat.engine.remote.store import S3ObjectStore
from tvcat.engine.remote.verify import verify_remote

from .conftest import KEY_ID, SECRET


@pytest.fixture
def filled(repository, cache, sample_import_arguments):
    import_files(repository, cache, [Path(sample_import_arguments[0])], symbol="FX:EURUSD", timeframe="60",
                 tz="UTC")
    create_backup(repository, cache, BackupType.FULL)
    return repository


def bucket_keys(settings) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=settings.endpoint_url, region_name="us-east-1",
                          aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    listed = client.list_objects_v2(Bucket=settings.bucket).get("Contents", [])
    return {item["Key"]: client.get_object(Bucket=settings.bucket, Key=item["Key"])["Body"].read()
            for item in listed}


def test_encrypted_copy_hides_ids_and_bars(filled, remote_settings, tmp_path):
    key = secrets.token_hex(32)
    settings = msgspec.structs.replace(remote_settings, encryption_key=key)

    replicate_repository(filled, S3ObjectStore(settings))

    stored = bucket_keys(settings)
    local_ids = set(filled.store.list_ids())
    assert not any(object_id in name for name in stored for object_id in local_ids)
    assert not any(b"EURUSD" in data for data in stored.values())
    assert verify_remote(S3ObjectStore(settings), read_data=True).ok
    assert recover_catalog(S3ObjectStore(settings), tmp_path / "recovered")[0] > 0


def test_wrong_or_missing_key_is_clear(filled, remote_settings, tmp_path):
    settings = msgspec.structs.replace(remote_settings, encryption_key=secrets.token_hex(32))
    replicate_repository(filled, S3ObjectStore(settings))

    wrong = msgspec.structs.replace(remote_settings, encryption_key=secrets.token_hex(32))
    with pytest.raises(RemoteDecryptFailed, match="encryption_key is not the key"):
        recover_catalog(S3ObjectStore(wrong), tmp_path / "wrong")
    with pytest.raises(RemoteNeedsKey):
        recover_catalog(S3ObjectStore(remote_settings), tmp_path / "none")


def test_key_added_to_plain_copy_rejected(filled, remote_settings):
    replicate_repository(filled, S3ObjectStore(remote_settings))

    keyed = msgspec.structs.replace(remote_settings, encryption_key=secrets.token_hex(32))
    with pytest.raises(RemoteNotEncrypted):
        replicate_repository(filled, S3ObjectStore(keyed))
