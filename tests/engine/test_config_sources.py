"""Where settings come from: the file search order, environment sections, variable overrides and secrets."""

import textwrap
from pathlib import Path

import pytest

from tvcat.engine.config import ConfigUnreadable, InvalidConfig, load_config_text, load_effective_config
from tvcat.engine.config.paths import cache_path, repository_path
from tvcat.engine.config.view import MASK, effective_settings, masked_builtins


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    """A working directory and XDG directories under tmp_path, none of them holding a file yet."""
    paths = {
        "cwd": tmp_path / "work",
        "config_home": tmp_path / "config-home",
        "config_dir": tmp_path / "config-dir",
        "data_home": tmp_path / "data-home",
    }
    for path in paths.values():
        path.mkdir()
    return paths


def base_environ(places: dict[str, Path], **variables: str) -> dict[str, str]:
    return {
        "XDG_CONFIG_HOME": str(places["config_home"]),
        "XDG_CONFIG_DIRS": str(places["config_dir"]),
        "XDG_DATA_HOME": str(places["data_home"]),
        **variables,
    }


def write_config(path: Path, interval: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"sync_config:\n  sync_interval: {interval}\n", encoding="utf-8")
    return path


def load(places, option=None, text: str | None = None, **variables):
    """Load the effective configuration; `text` is written to ./tvcat.yaml first when given."""
    if text is not None:
        (places["cwd"] / "tvcat.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return load_effective_config(option, base_environ(places, **variables), places["cwd"])


# --- search order

def test_search_order_each_step(places, tmp_path):
    option = write_config(tmp_path / "option.yaml", 11)
    tvcat_config = write_config(tmp_path / "tvcat-config.yaml", 12)
    sync_backup_config = write_config(tmp_path / "sync-backup-config.yaml", 13)
    write_config(places["cwd"] / "tvcat.yaml", 14)
    write_config(places["config_home"] / "tvcat" / "tvcat.yaml", 15)
    write_config(places["config_dir"] / "tvcat" / "tvcat.yaml", 16)
    variables = {"TVCAT_CONFIG": str(tvcat_config), "SYNC_BACKUP_CONFIG": str(sync_backup_config)}

    steps = [
        (option, variables, 11, "--config"),
        (None, variables, 12, "TVCAT_CONFIG"),
        (None, {"SYNC_BACKUP_CONFIG": str(sync_backup_config)}, 13, "SYNC_BACKUP_CONFIG"),
        (None, {}, 14, "working directory"),
    ]
    for option_value, step_variables, interval, reason in steps:
        loaded = load(places, option_value, **step_variables)
        assert loaded.config.sync_config.sync_interval == interval, reason
        assert loaded.file_reason == reason

    (places["cwd"] / "tvcat.yaml").unlink()
    assert load(places).config.sync_config.sync_interval == 15
    (places["config_home"] / "tvcat" / "tvcat.yaml").unlink()
    assert load(places).config.sync_config.sync_interval == 16


def test_no_file_gives_defaults_under_xdg_data(places):
    loaded = load(places)

    assert loaded.file is None
    assert loaded.config.sync_config.sync_interval == 300
    assert repository_path(loaded.config, base_environ(places)) == places["data_home"] / "tvcat" / "repo"
    assert cache_path(loaded.config, base_environ(places)) == places["data_home"] / "tvcat" / "cache.db"


def test_named_missing_file_rejected(places, tmp_path):
    missing = tmp_path / "absent.yaml"

    with pytest.raises(ConfigUnreadable) as caught:
        load(places, SYNC_BACKUP_CONFIG=str(missing))

    assert str(missing) in str(caught.value)
    assert "SYNC_BACKUP_CONFIG" in str(caught.value)


def test_local_path_wins_over_backup_dir(places):
    loaded = load(places, text="""
        backup_config:
          backup_dir: data/backups
          storage_backends:
            local:
              path: data/backups/local
        """)

    assert repository_path(loaded.config) == Path("data/backups/local")


# --- environment sections

ENVIRONMENTS = """
    sync_config:
      sync_interval: 300
      batch_size: 50
    environments:
      development:
        sync_config:
          sync_interval: 60
      production:
        backup_config:
          backup_dir: /data/backups
    """


def test_environment_section_applied(places):
    loaded = load(places, text=ENVIRONMENTS, SYNC_BACKUP_ENV="development")

    assert loaded.config.sync_config.sync_interval == 60
    assert loaded.config.sync_config.batch_size == 50
    assert loaded.environment == ("development", "SYNC_BACKUP_ENV")
    assert loaded.source(("sync_config", "sync_interval")).line == 8


def test_environment_sections_kept_apart(places):
    loaded = load(places, text=ENVIRONMENTS, SYNC_BACKUP_ENV="production")

    assert loaded.config.sync_config.sync_interval == 300
    assert loaded.config.backup_config.backup_dir == "/data/backups"


def test_tvcat_env_wins(places):
    loaded = load(places, text=ENVIRONMENTS, TVCAT_ENV="production", SYNC_BACKUP_ENV="development")

    assert loaded.environment == ("production", "TVCAT_ENV")


def test_unknown_environment_rejected(places):
    with pytest.raises(InvalidConfig) as caught:
        load(places, text=ENVIRONMENTS, SYNC_BACKUP_ENV="staging")

    message = str(caught.value)
    assert "'staging'" in message
    assert "development, production" in message


def test_environment_without_sections_ignored(places):
    loaded = load(places, text="sync_config:\n  sync_interval: 90\n", SYNC_BACKUP_ENV="production")

    assert loaded.config.sync_config.sync_interval == 90


def test_validate_checks_every_section():
    text = textwrap.dedent("""
        environments:
          production:
            backup_config:
              compression_levl: 5
        """)

    with pytest.raises(InvalidConfig) as caught:
        load_config_text(text, file="test.yaml")

    assert "line 5" in str(caught.value)
    assert "did you mean backup_config.compression_level?" in str(caught.value)


# --- variable overrides

def test_override_any_key(places):
    loaded = load(
        places,
        TVCAT_BACKUP_CONFIG__RETENTION_POLICY__DAILY_BACKUPS="14",
        TVCAT_SYNC_CONFIG__PRIORITY_SYMBOLS="BINANCE:BTCUSDT, BINANCE:ETHUSDT",
        TVCAT_SYNC_CONFIG__RETRY_DELAY_BASE="1.5",
        TVCAT_MONITORING_CONFIG__ALERTS__CHANNELS__LOG__LEVEL="ERROR",
    )
    config = loaded.config

    assert config.backup_config.retention_policy.daily_backups == 14
    assert config.sync_config.priority_symbols == ("BINANCE:BTCUSDT", "BINANCE:ETHUSDT")
    assert config.sync_config.retry_delay_base == 1.5
    assert config.monitoring_config.alerts.channels.log.level == "ERROR"
    source = loaded.source(("backup_config", "retention_policy", "daily_backups"))
    assert source.variable == "TVCAT_BACKUP_CONFIG__RETENTION_POLICY__DAILY_BACKUPS"


def test_guide_short_variables(places):
    loaded = load(places, text="sync_config:\n  sync_interval: 300\n",
                  SYNC_INTERVAL="120", BACKUP_DIR="/data/backups", MAX_CONCURRENT_TASKS="8")

    assert loaded.config.sync_config.sync_interval == 120
    assert loaded.config.backup_config.backup_dir == "/data/backups"
    assert loaded.config.sync_config.max_concurrent_tasks == 8
    assert loaded.source(("sync_config", "sync_interval")).variable == "SYNC_INTERVAL"


def test_tvcat_variable_wins_over_short(places):
    loaded = load(places, SYNC_INTERVAL="120", TVCAT_SYNC_CONFIG__SYNC_INTERVAL="90")

    assert loaded.config.sync_config.sync_interval == 90


def test_override_beats_environment_section(places):
    loaded = load(places, text=ENVIRONMENTS, SYNC_BACKUP_ENV="development", SYNC_INTERVAL="30")

    assert loaded.config.sync_config.sync_interval == 30


@pytest.mark.parametrize(("text", "expected"), [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("Yes", True),
    ("false", False), ("False", False), ("0", False), ("no", False),
])
def test_boolean_override_accepted(places, text, expected):
    loaded = load(places, TVCAT_DEBUG_CONFIG__DRY_RUN=text)

    assert loaded.config.debug_config.dry_run is expected


@pytest.mark.parametrize("text", ["on", "off", "2", "", "truthy", "nope"])
def test_boolean_override_rejected(places, text):
    with pytest.raises(InvalidConfig) as caught:
        load(places, TVCAT_DEBUG_CONFIG__DRY_RUN=text)

    message = str(caught.value)
    assert "environment variable TVCAT_DEBUG_CONFIG__DRY_RUN" in message
    assert "expected true, false, 1, 0, yes or no" in message


def test_integer_override_rejected(places):
    with pytest.raises(InvalidConfig) as caught:
        load(places, SYNC_INTERVAL="5m")

    message = str(caught.value)
    assert "environment variable SYNC_INTERVAL" in message
    assert "sync_config.sync_interval" in message
    assert "expected an integer, found the text '5m'" in message


def test_override_range_checked(places):
    with pytest.raises(InvalidConfig) as caught:
        load(places, TVCAT_BACKUP_CONFIG__COMPRESSION_LEVEL="40")

    assert "at most 22" in str(caught.value)


def test_override_unknown_key_suggests(places):
    with pytest.raises(InvalidConfig) as caught:
        load(places, TVCAT_SYNC_CONFIG__SYNC_INTERVALL="60")

    message = str(caught.value)
    assert "environment variable TVCAT_SYNC_CONFIG__SYNC_INTERVALL" in message
    assert "did you mean sync_config.sync_interval?" in message


def test_override_of_section_rejected(places):
    with pytest.raises(InvalidConfig) as caught:
        load(places, TVCAT_SYNC_CONFIG__PRIORITY_SYMBOLS__X="1", TVCAT_BACKUP_CONFIG__VERIFICATION="true")

    message = str(caught.value)
    assert "TVCAT_BACKUP_CONFIG__VERIFICATION sets a whole section" in message
    assert "TVCAT_BACKUP_CONFIG__VERIFICATION__ENABLE_CHECKSUM" in message


def test_empty_override_clears_optional(places):
    loaded = load(places, text="backup_config:\n  max_backup_files: 10\n", TVCAT_BACKUP_CONFIG__MAX_BACKUP_FILES="")

    assert loaded.config.backup_config.max_backup_files is None


def test_schedule_entry_override(places):
    loaded = load(places, text="""
        schedule_config:
          backup_schedules:
            full_backup:
              cron: "0 2 * * *"
        """, TVCAT_SCHEDULE_CONFIG__BACKUP_SCHEDULES__FULL_BACKUP__CRON="0 3 * * *")

    assert loaded.config.schedule_config.backup_schedules["full_backup"].cron == "0 3 * * *"
    assert loaded.config.schedule_config.backup_schedules["full_backup"].type == "full"


def test_variables_without_separator_ignored(places):
    loaded = load(places, TVCAT_REPO="/elsewhere", TVCAT_LANG="zh_CN")

    assert loaded.config == load(places).config


# --- sources

def test_sources_of_values(places):
    loaded = load(places, text="""
        sync_config:
          batch_size: 50
        backup_schedule:
          full_backup:
            cron: "0 2 * * 0"
            retention_days: 30
        """, MAX_CONCURRENT_TASKS="8")
    file = str(places["cwd"] / "tvcat.yaml")

    by_key = {setting.key: setting for setting in effective_settings(loaded)}
    assert by_key["sync_config.batch_size"].source.describe() == f"{file}, line 3"
    assert by_key["sync_config.max_concurrent_tasks"].source.describe() == "environment variable MAX_CONCURRENT_TASKS"
    assert by_key["sync_config.sync_interval"].source.describe() == "default"
    assert by_key["schedule_config.backup_schedules.full_backup.cron"].source.line == 6
    assert by_key["backup_config.retention_policy.retention_days.full"].source.line == 7
    assert by_key["backup_config.retention_policy.retention_days.full"].value == 30


def test_condition_shown_as_text(places):
    loaded = load(places, text="""
        monitoring_config:
          alerts:
            rules:
              failures:
                condition: "sync_failure_rate > 0.1"
        """)

    by_key = {setting.key: setting for setting in effective_settings(loaded)}
    assert by_key["monitoring_config.alerts.rules.failures.condition"].value == "sync_failure_rate > 0.1"


# --- secrets

SECRET = "s3cr3t-Value-42"


def test_secrets_masked(places):
    loaded = load(places, text=f"""
        monitoring_config:
          alerts:
            channels:
              webhook:
                token: "{SECRET}"
        """, TVCAT_BACKUP_CONFIG__STORAGE_BACKENDS__REMOTE__SECRET_ACCESS_KEY=SECRET)

    settings = effective_settings(loaded)
    assert SECRET not in repr(settings)
    assert SECRET not in repr(masked_builtins(loaded.config))
    by_key = {setting.key: setting for setting in settings}
    assert by_key["monitoring_config.alerts.channels.webhook.token"].value == MASK
    assert by_key["backup_config.storage_backends.remote.secret_access_key"].value == MASK
    assert by_key["monitoring_config.alerts.channels.email.smtp_password"].value is None
    assert loaded.config.monitoring_config.alerts.channels.webhook.token == SECRET


def test_secret_hidden_in_errors(places):
    with pytest.raises(InvalidConfig) as caught:
        load(places, text=f"""
            monitoring_config:
              alerts:
                channels:
                  email:
                    smtp_password: ["{SECRET}"]
            """)

    message = str(caught.value)
    assert "smtp_password" in message
    assert "a hidden value" in message
    assert SECRET not in message


def test_unquoted_secret_loads():
    from tvcat.engine.config import InvalidConfig, load_config_text

    config = load_config_text("monitoring_config:\n  alerts:\n    channels:\n      webhook: {token: plain-Token-5f1d9c}\n")
    assert config.monitoring_config.alerts.channels.webhook.token == "plain-Token-5f1d9c"

    with pytest.raises(InvalidConfig) as raised:
        load_config_text("monitoring_config:\n  alerts:\n    channels:\n      email: {smtp_password: 0755}\n")
    assert "put it in quotes" in str(raised.value)
    assert "0755" not in str(raised.value)
    assert "493" not in str(raised.value)
