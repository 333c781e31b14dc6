"""resolve_settings: whole dicts, section dicts, files, the effective configuration and their errors."""

from pathlib import Path

import pytest
import yaml

from tvcat.api import DataBackupManager, DataSyncEngine, resolve_settings
from tvcat.engine.config import Config, InvalidConfig


def test_whole_dict_ignores_environment(environment, config_dict, monkeypatch):
    monkeypatch.setenv("SYNC_INTERVAL", "120")
    monkeypatch.setenv("TVCAT_REPO", str(environment / "elsewhere"))

    settings = resolve_settings(config_dict)

    assert settings.config.sync_config.sync_interval == 300
    assert settings.repository_path == Path(config_dict["backup_config"]["backup_dir"])
    assert settings.cache_path == Path(config_dict["sync_config"]["cache_path"])


def test_whole_dict_defaults_to_xdg_paths(environment):
    settings = resolve_settings({"sync_config": {"sync_interval": 60}})

    assert settings.repository_path == environment / "xdg-data" / "tvcat" / "repo"
    assert settings.cache_path == environment / "xdg-data" / "tvcat" / "cache.db"


def test_section_dict_overlays_effective_file(config_file, config_dict):
    engine = DataSyncEngine({"sync_interval": 60, "max_concurrent_tasks": 10})

    sync = engine.settings.config.sync_config
    assert sync.sync_interval == 60
    assert sync.max_concurrent_tasks == 10
    assert sync.primary == config_dict["sync_config"]["primary"]
    assert engine.settings.cache_path == Path(config_dict["sync_config"]["cache_path"])


def test_section_dict_keeps_nested_keys(environment):
    (environment / "tvcat.yaml").write_text(yaml.safe_dump(
        {"backup_config": {"retention_policy": {"daily_backups": 3, "weekly_backups": 9}}}), encoding="utf-8")

    manager = DataBackupManager({"retention_policy": {"daily_backups": 14}, "backup_dir": "data/backups"})

    policy = manager.settings.config.backup_config.retention_policy
    assert policy.daily_backups == 14
    assert policy.weekly_backups == 9
    assert manager.settings.repository_path == Path("data/backups")


def test_section_dict_accepts_key_alias(environment):
    engine = DataSyncEngine({"max_retries": 7})

    assert engine.settings.config.sync_config.retries == 7


def test_section_dict_wins_over_variables(environment, monkeypatch):
    monkeypatch.setenv("SYNC_INTERVAL", "120")
    monkeypatch.setenv("MAX_CONCURRENT_TASKS", "8")

    engine = DataSyncEngine({"sync_interval": 60})

    assert engine.settings.config.sync_config.sync_interval == 60
    assert engine.settings.config.sync_config.max_concurrent_tasks == 8


def test_path_variables_apply_to_found_config(config_file, environment, monkeypatch):
    monkeypatch.setenv("TVCAT_REPO", str(environment / "other-repo"))
    monkeypatch.setenv("TVCAT_CACHE", str(environment / "other-cache.db"))

    for settings in (resolve_settings(None), resolve_settings(config_file), DataSyncEngine({}).settings):
        assert settings.repository_path == environment / "other-repo"
        assert settings.cache_path == environment / "other-cache.db"


def test_path_reads_named_file(environment, config_dict):
    path = environment / "elsewhere.yaml"
    path.write_text(yaml.safe_dump(config_dict), encoding="utf-8")

    settings = resolve_settings(str(path))

    assert settings.config.sync_config.primary == config_dict["sync_config"]["primary"]
    assert settings.repository_path == Path(config_dict["backup_config"]["backup_dir"])


def test_config_instance_used_as_given(environment):
    config = Config()

    assert resolve_settings(config).config is config


def test_compression_disabled_rejected(environment):
    with pytest.raises(InvalidConfig) as raised:
        DataBackupManager({"backup_dir": "data/backups", "compression_enabled": False})

    message = str(raised.value)
    assert message.startswith("<dict>: backup_config.compression_enabled: ")
    assert "zstd" in message
    assert raised.value.exit_code == 3


def test_unknown_section_key_suggests(environment):
    with pytest.raises(InvalidConfig) as raised:
        DataSyncEngine({"sync_intervall": 60})

    assert "sync_config.sync_intervall" in str(raised.value)
    assert "did you mean sync_config.sync_interval" in str(raised.value)


def test_invalid_whole_dict_lists_problems(environment):
    with pytest.raises(InvalidConfig) as raised:
        resolve_settings({"sync_config": {"sync_interval": 0, "priority_symbols": ["BTCUSDT"]}})

    keys = [problem.fields["key"] for problem in raised.value.problems]
    assert keys == ["sync_config.sync_interval", "sync_config.priority_symbols[0]"]
    assert all(problem.fields["place"] == "<dict>" for problem in raised.value.problems)


def test_unsupported_value_rejected(environment):
    with pytest.raises(InvalidConfig) as raised:
        resolve_settings({"sync_config": {"cache_path": object()}})

    assert "unsupported value" in str(raised.value)


def test_path_values_and_tuples_accepted(environment):
    settings = resolve_settings({"sync_config": {"cache_path": environment / "c.db",
                                                 "priority_timeframes": ("15", "60")}})

    assert settings.cache_path == environment / "c.db"
    assert settings.config.sync_config.priority_timeframes == ("15", "60")


def test_whole_dict_environments_not_applied(environment, monkeypatch):
    monkeypatch.setenv("TVCAT_ENV", "production")
    config = {"sync_config": {"sync_interval": 300},
              "environments": {"production": {"sync_config": {"sync_interval": 60}}}}

    settings = DataSyncEngine(config).settings

    assert settings.config.sync_config.sync_interval == 300
