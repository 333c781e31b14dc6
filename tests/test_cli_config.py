"""`tvcat config validate` and `config show`, and the settings that commands read."""

import json
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "tvcat.yaml"


def test_config_validate_sample(cli):
    result = cli("config", "validate", SAMPLE)

    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout


def test_config_validate_reports_key(cli, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("sync_config:\n  sync_intervall: 300\n", encoding="utf-8")

    result = cli("config", "validate", broken)

    assert result.returncode == 3
    assert "line 2" in result.stderr
    assert "did you mean sync_config.sync_interval?" in result.stderr


def test_config_validate_json_defaults(cli, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing set\n", encoding="utf-8")

    result = cli("config", "validate", empty, "--json")

    assert result.returncode == 0, result.stderr
    assert '"metrics_host": "127.0.0.1"' in result.stdout


# --- tvcat config show and the settings commands read

def test_config_show_sources_json(cli, tmp_path):
    config = tmp_path / "chosen.yaml"
    config.write_text("sync_config:\n  batch_size: 50\n", encoding="utf-8")

    result = cli("--config", config, "config", "show", "--json", env={"SYNC_INTERVAL": "120"})

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["file"] == str(config)
    assert shown["file_found_by"] == "--config"
    by_key = {setting["key"]: setting for setting in shown["settings"]}
    assert by_key["sync_config.batch_size"] == {
        "key": "sync_config.batch_size", "value": 50, "source": {"kind": "file", "file": str(config), "line": 2},
        "secret": False,
    }
    assert by_key["sync_config.sync_interval"]["source"] == {"kind": "environment", "variable": "SYNC_INTERVAL"}
    assert by_key["sync_config.max_concurrent_tasks"]["source"] == {"kind": "default"}


def test_config_show_masks_secrets(cli):
    secret = "hunter2-not-for-logs"
    variable = "TVCAT_MONITORING_CONFIG__ALERTS__CHANNELS__EMAIL__SMTP_PASSWORD"

    table = cli("config", "show", env={variable: secret})
    as_json = cli("config", "show", "--json", env={variable: secret})

    assert table.returncode == 0, table.stderr
    assert as_json.returncode == 0, as_json.stderr
    assert secret not in table.stdout + table.stderr
    assert secret not in as_json.stdout + as_json.stderr
    assert "********" in table.stdout
    assert f"environment variable {variable}" in table.stdout


def test_config_show_found_in_working_directory(cli, tmp_path):
    (tmp_path / "xdg-data" / "tvcat.yaml").write_text("sync_config:\n  sync_interval: 45\n", encoding="utf-8")

    result = cli("config", "show")
    as_json = cli("config", "show", "--json")

    assert result.returncode == 0, result.stderr
    assert "(found by working directory)" in result.stdout
    by_key = {setting["key"]: setting for setting in json.loads(as_json.stdout)["settings"]}
    assert by_key["sync_config.sync_interval"]["source"]["line"] == 2
    assert by_key["sync_config.sync_interval"]["value"] == 45


def test_invalid_variable_stops_command(cli, repo_path, cache_path):
    result = cli("status", env={"MAX_CONCURRENT_TASKS": "eight"})

    assert result.returncode == 3
    assert "environment variable MAX_CONCURRENT_TASKS" in result.stderr
    assert "expected an integer, found the text 'eight'" in result.stderr
    assert not repo_path.exists()


def test_missing_config_option_file(cli, tmp_path):
    result = cli("--config", tmp_path / "absent.yaml", "status")

    assert result.returncode == 3
    assert "absent.yaml" in result.stderr
    assert "--config names it" in result.stderr


def test_backup_dir_variable_selects_repository(cli, tmp_path, cache_path, sample_import_arguments):
    chosen = tmp_path / "from-variable"
    unset_repo = {"TVCAT_REPO": "", "BACKUP_DIR": str(chosen)}

    imported = cli("import", *sample_import_arguments, env=unset_repo)
    backup = cli("backup", "--type", "full", env=unset_repo)

    assert imported.returncode == 0, imported.stderr
    assert backup.returncode == 0, backup.stderr
    assert (chosen / "catalog.db").is_file()


def test_dry_run_rejects_backup(cli, repo_path, sample_import_arguments):
    assert cli("import", *sample_import_arguments).returncode == 0
    events_before = (repo_path / "catalog.db").read_bytes()

    result = cli("backup", "--type", "full", env={"TVCAT_DEBUG_CONFIG__DRY_RUN": "true"})

    assert result.returncode == 3
    assert "debug_config.dry_run is true (environment variable TVCAT_DEBUG_CONFIG__DRY_RUN)" in result.stderr
    assert (repo_path / "catalog.db").read_bytes() == events_before


def test_backup_verifies_by_config(cli, sample_import_arguments):
    assert cli("import", *sample_import_arguments).returncode == 0

    checked = cli("backup", "--type", "full", "--json")
    unchecked = cli("backup", "--type", "full", env={"TVCAT_BACKUP_CONFIG__VERIFICATION__VERIFY_AFTER_BACKUP": "no"})

    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["verified"]["read_data"] is True
    assert unchecked.returncode == 0, unchecked.stderr
    assert "verified:        no" in unchecked.stdout


def test_compression_level_from_config(cli_factory, tmp_path, sample_import_arguments):
    sizes = {}
    for level in ("1", "19"):
        cli = cli_factory(tmp_path / level / "repo", tmp_path / level / "cache.db", tmp_path / level / "data")
        assert cli("import", *sample_import_arguments).returncode == 0
        result = cli("backup", "--type", "full", "--json", env={"TVCAT_BACKUP_CONFIG__COMPRESSION_LEVEL": level})
        assert result.returncode == 0, result.stderr
        sizes[level] = json.loads(result.stdout)["bytes_written"]

    assert sizes["19"] < sizes["1"]
