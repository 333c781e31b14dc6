import os

import anyio
import msgspec
import pytest

from tvcat.catalog import events as ev
from tvcat.catalog.objects import object_id
from tvcat.engine.config import default_config
from tvcat.engine.remote.errors import RemoteUnavailable
from tvcat.engine.remote.replicate import last_replicated_seq, replicate_repository
from tvcat.engine.remote.segments import decode_segment
from tvcat.engine.remote.store import S3ObjectStore
from tvcat.engine.sync.runner import run_task
from tvcat.engine.sync.tasks import NoRemoteConfigured, SyncTask, queue_task

from .conftest import KEY_ID, SECRET

OBJECT_COUNT = 12


class CountingStore(S3ObjectStore):
    """An S3ObjectStore that counts object PUTs and can fail them, for faults a real server cannot cause."""

    def __init__(self, settings, fail_after: int | None = None, transient_failures: int = 0) -> None:
        super().__init__(settings)
        self.puts = 0
        self.fail_after = fail_after
        self.transient_failures = transient_failures

    def put(self, object_id_, data):
        if self.transient_failures:
            self.transient_failures -= 1
            raise RemoteUnavailable(operation="PUT", bucket=self.bucket, endpoint=self.endpoint,
                                    reason="injected", key="endpoint_url")
        if self.fail_after is not None and self.puts >= self.fail_after:
            raise KeyboardInterrupt
        self.puts += 1
        return super().put(object_id_, data)


def config_with_remote(settings):
    """The default configuration with `settings` as its remote backend."""
    config = default_config()
    backends = msgspec.structs.replace(config.backup_config.storage_backends, remote=settings)
    return msgspec.structs.replace(
        config, backup_config=msgspec.structs.replace(config.backup_config, storage_backends=backends))


@pytest.fixture
def filled(repository):
    """The test repository with OBJECT_COUNT objects of 20 kB and two events."""
    for index in range(OBJECT_COUNT):
        data = os.urandom(20_000)
        repository.store.put(object_id(data), data)
    repository.record(ev.ImportFailed(path="/data/a.csv", error="first"))
    repository.record(ev.ImportFailed(path="/data/b.csv", error="second"))
    return repository


def test_replicate_uploads_objects_then_log(filled, remote_settings):
    remote = S3ObjectStore(remote_settings)

    result = replicate_repository(filled, remote, parallel=4)

    assert set(remote.list_ids()) == set(filled.store.list_ids())
    assert result.objects_uploaded == OBJECT_COUNT
    assert result.events_uploaded == 2
    assert result.segment == "000000000001-000000000002.jsonl.zst"
    segment = remote.read_file(f"team/tvcat/log/{result.segment}")
    assert decode_segment(segment) == list(ev.iter_events(filled.connection))


def test_second_run_uploads_only_new(filled, remote_settings):
    remote = S3ObjectStore(remote_settings)
    replicate_repository(filled, remote)
    data = b"one more object"
    filled.store.put(object_id(data), data)
    filled.record(ev.ImportFailed(path="/data/c.csv", error="third"))

    result = replicate_repository(filled, remote)

    assert result.objects_uploaded == 1
    assert result.objects_remote == OBJECT_COUNT
    assert result.segment == "000000000003-000000000003.jsonl.zst"
    assert last_replicated_seq(remote) == 3


def test_unchanged_repository_uploads_nothing(filled, remote_settings):
    remote = S3ObjectStore(remote_settings)
    replicate_repository(filled, remote)

    result = replicate_repository(filled, remote)

    assert result.objects_uploaded == 0
    assert result.events_uploaded == 0
    assert result.segment is None


def test_interrupted_run_resumes(filled, remote_settings):
    failing = CountingStore(remote_settings, fail_after=5)
    with pytest.raises(KeyboardInterrupt):
        replicate_repository(filled, failing, parallel=1)
    assert len(list(failing.list_ids())) == 5
    assert last_replicated_seq(failing) == 0

    counting = CountingStore(remote_settings)
    result = replicate_repository(filled, counting, parallel=3)

    assert counting.puts == OBJECT_COUNT - 5
    assert result.objects_uploaded == OBJECT_COUNT - 5
    assert set(counting.list_ids()) == set(filled.store.list_ids())
    assert last_replicated_seq(counting) == 2


def test_transient_failure_retried(filled, remote_settings):
    remote = CountingStore(remote_settings, transient_failures=3)

    result = replicate_repository(filled, remote, parallel=2, retry_delay=0.01)

    assert result.objects_uploaded == OBJECT_COUNT


def test_failure_after_retries_raised(filled, remote_settings):
    remote = CountingStore(remote_settings, transient_failures=100)

    with pytest.raises(RemoteUnavailable):
        replicate_repository(filled, remote, parallel=1, retries=2, retry_delay=0.01)

    assert last_replicated_seq(remote) == 0


def test_sync_task_to_remote(filled, remote_settings, cache_path):
    config = config_with_remote(remote_settings)
    task = SyncTask(source="cache", target="remote")
    filled.record(task.to_event())

    completed = anyio.run(run_task, filled, cache_path, config, task)

    assert "uploaded 12 objects" in completed.notes[0]
    assert len(list(S3ObjectStore(remote_settings).list_ids())) == OBJECT_COUNT


def test_queue_to_remote_needs_backend(repository, remote_settings):
    task = SyncTask(source="cache", target="remote")

    with pytest.raises(NoRemoteConfigured):
        queue_task(repository, task)
    queue_task(repository, task, remote_settings)

    assert repository.connection.execute("SELECT status FROM sync_tasks").fetchall() == [("queued",)]


def test_other_repository_log_rejected(filled, remote_settings, tmp_path):
    from tvcat.catalog.repository import Repository
    from tvcat.engine.remote.errors import ForeignRemoteLog

    remote = S3ObjectStore(remote_settings)
    replicate_repository(filled, remote)
    other = Repository(tmp_path / "other")
    other.record(ev.ImportFailed(path="/data/x.csv", error="other"))
    other.record(ev.ImportFailed(path="/data/y.csv", error="other"))
    other.record(ev.ImportFailed(path="/data/z.csv", error="other"))

    with pytest.raises(ForeignRemoteLog):
        replicate_repository(other, remote)

    assert last_replicated_seq(remote) == 2
    other.close()


def test_failed_sync_records_no_secret(filled, remote_settings, cache_path):
    unreachable = msgspec.structs.replace(remote_settings, endpoint_url="http://127.0.0.1:9")
    config = config_with_remote(unreachable)
    task = SyncTask(source="cache", target="remote")
    filled.record(task.to_event())

    with pytest.raises(RemoteUnavailable):
        anyio.run(run_task, filled, cache_path, config, task)

    payloads = "".join(row[0] for row in filled.connection.execute("SELECT payload FROM events"))
    assert "127.0.0.1:9" in payloads
    assert SECRET not in payloads
    assert KEY_ID not in payloads
