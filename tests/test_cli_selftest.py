"""`tvcat test` on a fresh setup, on a real repository, on damaged and unusable setups, and what it leaves behind."""

import hashlib
import json
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from tvcat.errors import EXIT_ERROR, EXIT_INTEGRITY

CHECK_NAMES = ["configuration", "paths", "free_space", "catalog", "round_trip"]


@pytest.fixture(scope="module")
def sample_setup(tmp_path_factory, cli_factory, sample_import_arguments) -> Path:
    """A directory with a repository and a cache holding the bundled sample and one full backup."""
    base = tmp_path_factory.mktemp("sample-setup")
    cli = cli_factory(base / "repo", base / "cache.db", base / "xdg-data")
    imported = cli("import", *sample_import_arguments)
    assert imported.returncode == 0, imported.stderr
    backed_up = cli("backup", "--type", "full")
    assert backed_up.returncode == 0, backed_up.stderr
    return base


@pytest.fixture
def setup_copy(sample_setup, tmp_path) -> Path:
    """A copy of sample_setup that a test may change."""
    copy = tmp_path / "setup"
    shutil.copytree(sample_setup, copy)
    return copy


@pytest.fixture
def copy_cli(cli_factory, setup_copy):
    return cli_factory(setup_copy / "repo", setup_copy / "cache.db", setup_copy / "xdg-data")


def run_json(cli, *arguments, env=None) -> tuple[int, dict[str, dict], str]:
    """Run `tvcat ARGS... test --json` and return the exit code, the checks by name and stderr."""
    result = cli(*arguments, "test", "--json", env=env)
    checks = json.loads(result.stdout)
    return result.returncode, {check["name"]: check for check in checks}, result.stderr


def file_states(root: Path) -> dict[str, str]:
    """Return the SHA-256 of every file under `root`, and `directory` for every directory, by relative path."""
    states = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        states[relative] = "directory" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return states


def test_selftest_fresh_setup_passes(cli, repo_path, cache_path):
    result = cli("test")

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("pass  configuration: no configuration file found, so the defaults apply")
    assert lines[1].startswith(f"pass  paths and permissions: repository {repo_path} does not exist yet")
    assert lines[2].startswith("pass  free space: ")
    assert lines[3] == f"skip  catalog integrity: no catalog at {repo_path / 'catalog.db'} yet: " \
                       "the first import or backup creates it"
    assert lines[4].startswith("pass  round trip: full backup of 3704 bars, then an incremental backup of 24 new")
    assert lines[5] == "5 checks: 4 passed, 0 failed, 1 skipped"
    assert result.stderr == ""
    assert not repo_path.exists()
    assert not cache_path.exists()


def test_selftest_real_repository_passes(copy_cli, setup_copy):
    code, checks, stderr = run_json(copy_cli)

    assert code == 0, stderr
    assert [check["status"] for check in checks.values()] == ["pass"] * 5
    assert checks["paths"]["detail"] == (
        f"repository {setup_copy / 'repo'} is writable; "
        f"cache {setup_copy / 'cache.db'} opens read-only and its directory is writable"
    )
    assert checks["catalog"]["detail"].startswith("event log intact: ")
    assert "(3728 bars) both equal the imported bars bit for bit" in checks["round_trip"]["detail"]


def test_selftest_json_shape(copy_cli):
    result = copy_cli("test", "--json")

    checks = json.loads(result.stdout)
    assert result.returncode == 0, result.stderr
    assert isinstance(checks, list)
    assert [check["name"] for check in checks] == CHECK_NAMES
    for check in checks:
        assert set(check) == {"name", "status", "detail"}
        assert check["status"] in ("pass", "fail", "skip")
        assert isinstance(check["detail"], str)
        assert check["detail"]


def test_selftest_edited_log_fails(copy_cli, setup_copy):
    catalog = setup_copy / "repo" / "catalog.db"
    connection = sqlite3.connect(catalog)
    try:
        seq = connection.execute("SELECT min(seq) FROM events WHERE kind = 'backup.started'").fetchone()[0]
        connection.execute("DROP TRIGGER events_reject_update")
        connection.execute("UPDATE events SET payload = replace(payload, 'full', 'fuzz') WHERE seq = ?", (seq,))
        connection.commit()
    finally:
        connection.close()

    code, checks, stderr = run_json(copy_cli)

    assert code == EXIT_INTEGRITY
    assert checks["catalog"]["status"] == "fail"
    assert checks["catalog"]["detail"].startswith(f"event log damaged at event {seq}: event {seq} was changed")
    assert checks["round_trip"]["status"] == "pass"
    assert stderr == "tvcat: error: 1 of 5 checks failed: catalog integrity\n"


def test_selftest_invalid_config_fails(cli, tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("sync_config:\n  max_concurrent_tasks: zero\n", encoding="utf-8")

    code, checks, stderr = run_json(cli, "--config", config)

    assert code == EXIT_ERROR
    assert checks["configuration"]["status"] == "fail"
    assert checks["configuration"]["detail"].startswith(f"{config}, line 2")
    assert "sync_config.max_concurrent_tasks" in checks["configuration"]["detail"]
    for name in ("paths", "free_space", "catalog"):
        assert checks[name] == {"name": name, "status": "skip",
                                "detail": "skipped because the configuration check did not pass"}
    assert checks["round_trip"]["status"] == "pass"
    assert stderr == "tvcat: error: 1 of 5 checks failed: configuration\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a directory whatever its mode, so chmod 0o500 "
                                              "cannot make the repository unwritable")
def test_selftest_unwritable_repository_fails(copy_cli, setup_copy):
    repo = setup_copy / "repo"
    repo.chmod(0o500)
    try:
        code, checks, stderr = run_json(copy_cli)
        leftovers = sorted(path.name for path in repo.iterdir())
    finally:
        repo.chmod(0o755)

    assert code == EXIT_ERROR
    assert checks["paths"]["status"] == "fail"
    assert checks["paths"]["detail"] == f"cannot write in {repo}: Permission denied"
    assert checks["catalog"]["status"] == "pass"
    assert leftovers == ["catalog.db", "locks", "objects"]
    assert stderr == "tvcat: error: 1 of 5 checks failed: paths and permissions\n"


def test_selftest_repository_under_file_fails(cli, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the repository's parent directory should be\n", encoding="utf-8")

    code, checks, stderr = run_json(cli, env={"TVCAT_REPO": str(blocker / "repo")})

    assert code == EXIT_ERROR
    assert checks["paths"]["status"] == "fail"
    assert checks["paths"]["detail"] == f"{blocker} is not a directory, so {blocker / 'repo'} cannot be created in it"
    assert blocker.read_text(encoding="utf-8") == "a file where the repository's parent directory should be\n"


def test_selftest_cache_not_database_fails(cli, cache_path):
    cache_path.write_bytes(b"not a SQLite database\n" * 100)

    code, checks, stderr = run_json(cli)

    assert code == EXIT_ERROR
    assert checks["paths"]["status"] == "fail"
    assert checks["paths"]["detail"].startswith(f"cannot open the database {cache_path}: file is not a database")


def test_selftest_low_free_space_fails(cli, tmp_path):
    minimum = {"TVCAT_SYNC_CONFIG__RESOURCE_LIMITS__MIN_FREE_DISK_GB": "1000000000"}

    code, checks, stderr = run_json(cli, env=minimum)

    assert code == EXIT_ERROR
    assert checks["free_space"]["status"] == "fail"
    # The repository and the cache do not exist yet, so both are measured at tmp_path.
    assert re.fullmatch(
        rf"[0-9.]+ GB \([0-9,]+ bytes\) free under {re.escape(str(tmp_path))}; below the minimum of "
        r"1,000,000,000 GB: free some space or lower sync_config\.resource_limits\.min_free_disk_gb",
        checks["free_space"]["detail"],
    )


def test_selftest_leaves_user_files_unchanged(cli_factory, setup_copy):
    config = setup_copy / "tvcat.yaml"
    config.write_text("sync_config:\n  max_concurrent_tasks: 2\n", encoding="utf-8")
    temporary = setup_copy / "tmp"
    temporary.mkdir()
    cli = cli_factory(setup_copy / "repo", setup_copy / "cache.db", setup_copy / "xdg-data")
    before = file_states(setup_copy)

    result = cli("--config", config, "test", env={"TMPDIR": str(temporary)})

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"pass  configuration: file {config}, found by --config" in result.stdout
    assert "pass  catalog integrity: event log intact" in result.stdout
    assert file_states(setup_copy) == before
    assert before["repo/catalog.db"]
    assert before["cache.db"]
    assert list(temporary.iterdir()) == []
