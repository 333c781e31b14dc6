import logging

import pytest

from tvcat.catalog.objects import object_id
from tvcat.engine.config.schema import RemoteBackend
from tvcat.engine.remote.errors import RemoteCredentialsMissing, RemoteUnavailable
from tvcat.engine.remote.store import S3ObjectStore
from tvcat.engine.sync.tasks import NoRemoteConfigured
from tvcat.errors import ObjectMissing

from .conftest import KEY_ID, SECRET


def test_put_get_round_trip(remote_settings):
    store = S3ObjectStore(remote_settings)
    data = b"chunk bytes" * 3000
    key = object_id(data)

    assert store.put(key, data) is True
    assert store.get(key) == data
    assert store.exists(key)
    assert store.size(key) == len(data)
    assert list(store.list_ids()) == [key]
    assert store.key(key) == f"team/tvcat/objects/{key}"


def test_put_never_overwrites(remote_settings):
    store = S3ObjectStore(remote_settings)
    key = object_id(b"first")

    assert store.put(key, b"first") is True
    assert store.put(key, b"second") is False
    assert store.get(key) == b"first"


def test_missing_object_raises(remote_settings):
    store = S3ObjectStore(remote_settings)
    key = object_id(b"absent")

    with pytest.raises(ObjectMissing):
        store.get(key)
    with pytest.raises(ObjectMissing):
        store.size(key)
    assert not store.exists(key)


def test_delete_removes_object(remote_settings):
    store = S3ObjectStore(remote_settings)
    key = object_id(b"gone")
    store.put(key, b"gone")

    store.delete(key)

    assert not store.exists(key)


def test_disabled_remote_rejected(remote_settings):
    with pytest.raises(NoRemoteConfigured):
        S3ObjectStore(RemoteBackend(enabled=False, bucket="b"))


def test_credentials_from_environment(remote_settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    settings = RemoteBackend(enabled=True, bucket=remote_settings.bucket, endpoint_url=remote_settings.endpoint_url)

    store = S3ObjectStore(settings)

    assert store.put(object_id(b"x"), b"x") is True


def test_missing_credentials_named(remote_settings, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    settings = RemoteBackend(enabled=True, bucket="b", endpoint_url="http://127.0.0.1:9")

    with pytest.raises(RemoteCredentialsMissing) as raised:
        S3ObjectStore(settings)

    assert "AWS_ACCESS_KEY_ID" in str(raised.value)


def test_unknown_bucket_error_hides_secrets(remote_settings, caplog):
    settings = RemoteBackend(enabled=True, bucket="no-such-bucket", endpoint_url=remote_settings.endpoint_url,
                             access_key_id=KEY_ID, secret_access_key=SECRET)
    store = S3ObjectStore(settings)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(RemoteUnavailable) as raised:
        list(store.list_ids())

    message = str(raised.value)
    assert "no-such-bucket" in message
    assert remote_settings.endpoint_url in message
    assert "backup_config.storage_backends.remote" in message
    assert SECRET not in message
    assert KEY_ID not in message
    assert SECRET not in caplog.text


def test_unreachable_endpoint_named(remote_settings):
    settings = RemoteBackend(enabled=True, bucket="b", endpoint_url="http://user:pw@127.0.0.1:9",
                             access_key_id=KEY_ID, secret_access_key=SECRET)
    store = S3ObjectStore(settings)

    with pytest.raises(RemoteUnavailable) as raised:
        store.put(object_id(b"y"), b"y")

    message = str(raised.value)
    assert "127.0.0.1:9" in message
    assert ":pw@" not in message
    assert "endpoint_url" in message
