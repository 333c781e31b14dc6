"""`tvcat prune`, its `forget` alias and `list backups --all` as a user runs them."""

import json


def take_backups(cli, sample_import_arguments, count: int) -> None:
    assert cli("import", *sample_import_arguments).returncode == 0
    for _ in range(count):
        assert cli("backup", "--type", "full").returncode == 0


def test_prune_dry_run_then_forget(cli, sample_import_arguments):
    take_backups(cli, sample_import_arguments, 3)

    planned = cli("prune", "--keep-last", "1", "--dry-run", "--json")
    done = cli("forget", "--keep-last", "1", "--grace-seconds", "0", "--json")
    listed = cli("list", "backups", "--all", "--json")
    verified = cli("verify", "--read-data")

    assert planned.returncode == 0, planned.stderr
    assert done.returncode == 0, done.stderr
    plan, result = json.loads(planned.stdout), json.loads(done.stdout)
    assert plan["decisions"] == result["decisions"]
    assert plan["collected"] is None
    assert [d["keep"] for d in result["decisions"]] == [False, False, True]
    assert result["collected"]["bytes_freed"] == plan["bytes_to_free"]
    rows = json.loads(listed.stdout)
    assert [row["forgotten"]["rule"] if row["forgotten"] else None for row in rows] == ["no-rule", "no-rule", None]
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_prune_uses_configured_policy(cli, sample_import_arguments):
    take_backups(cli, sample_import_arguments, 2)
    policy = {"TVCAT_BACKUP_CONFIG__MAX_BACKUP_FILES": "1", "TVCAT_BACKUP_CONFIG__RETENTION_POLICY__TIMEZONE":
              "Asia/Shanghai"}

    result = cli("prune", "--dry-run", "--json", env=policy)

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["policy"]["timezone"] == "Asia/Shanghai"
    assert [d["keep"] for d in shown["decisions"]] == [False, True]


def test_prune_rejects_bad_flags(cli, sample_import_arguments, repo_path):
    take_backups(cli, sample_import_arguments, 1)
    before = (repo_path / "catalog.db").read_bytes()

    bad_zone = cli("prune", "--keep-last", "1", "--timezone", "Mars/Olympus")
    bad_within = cli("prune", "--keep-within", "30 days")

    assert bad_zone.returncode == 3
    assert "Mars/Olympus" in bad_zone.stderr
    assert bad_within.returncode == 3
    assert "30 days" in bad_within.stderr
    assert (repo_path / "catalog.db").read_bytes() == before


def test_zero_flag_replaces_policy(cli, sample_import_arguments):
    take_backups(cli, sample_import_arguments, 2)

    result = cli("forget", "--keep-daily", "0", "--dry-run", "--json",
                 env={"TVCAT_BACKUP_CONFIG__MAX_BACKUP_FILES": "1"})

    assert result.returncode == 0, result.stderr
    decisions = json.loads(result.stdout)["decisions"]
    assert [d["keep"] for d in decisions] == [True, True]
    assert {d["rule"] for d in decisions} == {"no-policy"}


def test_grace_nan_rejected(cli, sample_import_arguments, repo_path):
    take_backups(cli, sample_import_arguments, 1)
    before = (repo_path / "catalog.db").read_bytes()

    result = cli("prune", "--grace-seconds", "nan")

    assert result.returncode == 2
    assert "nan is not a number of seconds" in result.stderr
    assert (repo_path / "catalog.db").read_bytes() == before


def test_stored_bytes_equal_object_files_after_prune(cli, sample_import_arguments, tradingview_files, repo_path):
    assert cli("import", *sample_import_arguments).returncode == 0
    assert cli("backup", "--type", "full").returncode == 0
    for path in tradingview_files[:2]:
        assert cli("import", path).returncode == 0
        assert cli("backup", "--type", "full").returncode == 0
    assert cli("prune", "--keep-last", "1", "--grace-seconds", "0").returncode == 0

    status = json.loads(cli("status", "--json").stdout)
    on_disk = sum(path.stat().st_size for path in (repo_path / "objects").rglob("*") if path.is_file())

    assert status["repository"]["bytes_stored"] == on_disk


def test_restore_of_forgotten_backup_says_so(cli, sample_import_arguments, tmp_path):
    assert cli("import", *sample_import_arguments).returncode == 0
    assert cli("backup", "--type", "full").returncode == 0
    assert cli("backup", "--type", "full").returncode == 0
    first = json.loads(cli("list", "backups", "--json").stdout)[0]["backup_id"]
    assert cli("prune", "--keep-last", "1").returncode == 0

    restored = cli("restore", first, "--target-db", tmp_path / "old.db")

    assert restored.returncode == 4
    assert f"backup {first} was forgotten by prune at " in restored.stderr
    assert "(rule " in restored.stderr
    assert not (tmp_path / "old.db").exists()
