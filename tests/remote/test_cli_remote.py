"""The remote commands as a user runs them: sync to the remote, verify it, and restore on a new machine."""

import json

from .conftest import KEY_ID, SECRET


def write_config(path, repo, cache, s3_endpoint, bucket):
    path.write_text(
        f"backup_config:\n"
        f"  backup_dir: '{repo}'\n"
        f"  storage_backends:\n"
        f"    remote: {{enabled: true, bucket: {bucket}, endpoint_url: '{s3_endpoint}', prefix: desk}}\n"
        f"sync_config: {{cache_path: '{cache}'}}\n",
        encoding="utf-8",
    )
    return path


def test_sync_verify_and_restore_from_remote(cli_factory, tmp_path, s3_endpoint, bucket, sample_import_arguments,
                                            bar_rows):
    keys = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
    config = write_config(tmp_path / "tvcat.yaml", tmp_path / "repo", tmp_path / "cache.db", s3_endpoint, bucket)
    cli = cli_factory(tmp_path / "repo", tmp_path / "cache.db", tmp_path / "home")
    assert cli("--config", config, "import", *sample_import_arguments).returncode == 0
    assert cli("--config", config, "backup", "--type", "full").returncode == 0

    synced = cli("--config", config, "sync", "--source", "cache", "--target", "remote", env=keys)
    verified = cli("--config", config, "verify", "--remote", "--read-data", "--json", env=keys)

    assert synced.returncode == 0, synced.stderr
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["backups_checked"] == 1

    # A new machine with only the configuration: no repository, no cache.
    fresh = tmp_path / "fresh"
    fresh_config = write_config(tmp_path / "fresh.yaml", fresh / "repo", fresh / "cache.db", s3_endpoint, bucket)
    fresh_cli = cli_factory(fresh / "repo", fresh / "cache.db", fresh / "home")
    target = fresh / "restored.db"
    restored = fresh_cli("--config", fresh_config, "restore", "--from", "remote", "--at", "2100-01-01T00:00:00Z",
                         "--target-db", target, env=keys)
    no_at = fresh_cli("--config", fresh_config, "restore", "--from", "remote", "20261205", env=keys)

    assert restored.returncode == 5, restored.stderr
    assert "in the future" in restored.stderr
    assert no_at.returncode == 3
    assert "--from remote needs --at TIME" in no_at.stderr
    assert not (fresh / "repo").exists()

    now = json.loads(cli("--config", config, "list", "backups", "--json").stdout)[0]["committed_at"]
    restored = fresh_cli("--config", fresh_config, "restore", "--from", "remote", "--at", now,
                         "--target-db", target, env=keys)
    assert restored.returncode == 0, restored.stderr
    assert bar_rows(target) == bar_rows(tmp_path / "cache.db")
    for output in (synced.stdout + synced.stderr, verified.stdout + verified.stderr, restored.stderr):
        assert SECRET not in output
