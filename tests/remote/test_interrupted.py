import json
import os
import signal
import subprocess
import sys
import time

from tvcat.catalog.objects import object_id
from tvcat.engine.remote.store import S3ObjectStore

from .conftest import KEY_ID, SECRET

OBJECT_COUNT = 300


def test_killed_replicate_resumes(tmp_path, repository, remote_settings):
    for _ in range(OBJECT_COUNT):
        data = os.urandom(20_000)
        repository.store.put(object_id(data), data)
    config = tmp_path / "tvcat.yaml"
    config.write_text(
        "backup_config:\n  storage_backends:\n    remote:\n      enabled: true\n"
        f"      bucket: {remote_settings.bucket}\n      endpoint_url: {remote_settings.endpoint_url}\n"
        f"      prefix: {remote_settings.prefix}\n"
    )
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith(("TVCAT", "SYNC_", "AWS_"))},
        "TVCAT_REPO": str(repository.path), "TVCAT_LANG": "en", "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"), "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
    }
    command = [sys.executable, "-m", "tvcat.cli.main", "--config", str(config), "replicate", "--json"]
    remote = S3ObjectStore(remote_settings)

    process = subprocess.Popen([*command, "--parallel", "1"], env=environment, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(list(remote.list_ids())) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # A request the server had received whole before the kill may still be stored; let it finish.
    time.sleep(0.3)
    arrived = set(remote.list_ids())

    assert 20 <= len(arrived) < OBJECT_COUNT
    assert all(remote.get(key) == repository.store.get(key) for key in arrived)
    assert remote.list_names("team/tvcat/log/") == []

    rerun = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["objects_remote"] == len(arrived)
    assert result["objects_uploaded"] == OBJECT_COUNT - len(arrived)
    assert set(remote.list_ids()) == set(repository.store.list_ids())
