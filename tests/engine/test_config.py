"""Loading tvcat.yaml: the guide's examples, defaults, and errors that name the file, line and key."""

import re
import textwrap
from pathlib import Path

import msgspec
import pytest

from tvcat.engine.config import (
    Config,
    ConfigUnreadable,
    InvalidConfig,
    default_config,
    load_config,
    load_config_text,
)

REPOSITORY = Path(__file__).resolve().parents[2]
GUIDE = REPOSITORY.parent / "shared" / "seed" / "user-guide.zh-CN.md"
SAMPLE = REPOSITORY / "tvcat.yaml"

# Copies of the YAML examples of the Chinese user guide, so CI checks them
# without the guide. Block 7 of the guide holds three separate snippets that
# repeat `sync_config`, so it is split into them here.
GUIDE_BLOCKS = {
    "sync_strategy": """
        sync_config:
          sync_interval: 300                    # 同步间隔(秒)
          batch_size: 100                       # 批处理大小
          max_concurrent_tasks: 5               # 最大并发任务

          # 优先级品种和时间框架
          priority_symbols:
            - "BINANCE:BTCUSDT"
            - "BINANCE:ETHUSDT"

          priority_timeframes:
            - "1"      # 1分钟
            - "15"     # 15分钟
        """,
    "backup_strategy": """
        backup_config:
          retention_policy:
            daily_backups: 7
            weekly_backups: 4
            monthly_backups: 12
            yearly_backups: 3
          verification:
            enable_checksum: true
            verify_after_backup: true
          storage_backends:
            local:
              enabled: true
              path: "data/backups/local"
            remote:
              enabled: false
              type: "s3"
              bucket: "tradingview-backups"
        """,
    "main_file": """
        sync_config:
          sync_interval: 300
          batch_size: 100
          max_concurrent_tasks: 5
        backup_config:
          backup_dir: "data/backups"
          max_backup_files: 30
          compression_enabled: true
        schedule_config:
          enabled: true
          backup_schedules:
            full_backup:
              cron: "0 2 * * *"                # 每天凌晨2点
            incremental_backup:
              cron: "*/30 * * * *"             # 每30分钟
        monitoring_config:
          enabled: true
          metrics_port: 9090
          alerts:
            enabled: true
        """,
    "alert_rules": """
        monitoring_config:
          alerts:
            enabled: true
            channels:
              email:
                enabled: true
                smtp_server: "smtp.example.com"
                recipients: ["admin@example.com"]
              webhook:
                enabled: true
                url: "https://hooks.slack.com/services/YOUR/SLACK/WEBHOOK"
              log:
                enabled: true
                level: "ERROR"
            rules:
              sync_failure_rate:
                condition: "sync_failure_rate > 0.1"
                threshold: 0.1
                severity: "critical"
                message: "同步失败率超过10%"
              backup_failure:
                condition: "backup_failure_count > 0"
                threshold: 0
                severity: "error"
                message: "备份任务失败"
              disk_usage:
                condition: "disk_usage > 0.85"
                threshold: 0.85
                severity: "warning"
                message: "磁盘使用率超过85%"
        """,
    "recommended_schedule": """
        backup_schedule:
          full_backup:
            cron: "0 2 * * 0"
            retention_days: 30
          incremental_backup:
            cron: "0 */4 * * *"
            retention_days: 7
          snapshot_backup:
            cron: "0 * * * *"
            retention_days: 1
        """,
    "performance": """
        sync_config:
          max_concurrent_tasks: 8              # CPU核心数
          batch_size: 200                      # 根据内存大小调整
          connection_pool_size: 16             # 2倍并发任务数
          enable_compression: true
          keep_alive_timeout: 60
          connection_timeout: 30
          max_retries: 3
          retry_delay_base: 2                  # 指数退避
        backup_config:
          compression_enabled: true
          compression_level: 6                 # 平衡压缩率和速度
          max_backup_workers: 2                # 避免I/O竞争
          enable_async_io: true
        """,
    "more_tasks": "sync_config:\n  max_concurrent_tasks: 10\n",
    "smaller_batches": "sync_config:\n  batch_size: 50\n",
    "longer_timeout": "sync_config:\n  timeout_seconds: 60\n",
    "auto_cleanup": """
        backup_config:
          max_backup_files: 20
          max_total_size_gb: 50
          auto_cleanup:
            enabled: true
            size_threshold_gb: 40
            retention_policy:
              keep_latest: 5
              keep_daily: 7
        """,
    "memory": """
        sync_config:
          batch_size: 50
          max_concurrent_tasks: 3
        monitoring_config:
          memory_monitoring:
            enabled: true
            max_memory_percent: 70
            force_gc_threshold: 80
        """,
    "debug": """
        debug_config:
          debug_mode: true
          verbose_logging: true
          profile_performance: true
          dry_run: false
        """,
}


def load(text: str) -> Config:
    return load_config_text(textwrap.dedent(text), file="test.yaml")


def problems_of(text: str) -> list[str]:
    with pytest.raises(InvalidConfig) as caught:
        load(text)
    return [str(problem) for problem in caught.value.problems]


# --- the guide's examples


@pytest.mark.parametrize("name", sorted(GUIDE_BLOCKS))
def test_guide_copy_loads(name):
    assert isinstance(load(GUIDE_BLOCKS[name]), Config)


def _guide_yaml_blocks() -> list[tuple[int, str]]:
    text = GUIDE.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, match.start()) + 1, match["body"])
        for match in re.finditer(r"```yaml\n(?P<body>.*?)```", text, re.DOTALL)
    ]


def test_guide_file_blocks_load():
    if not GUIDE.is_file():
        pytest.skip(f"the user guide is not at {GUIDE}")
    blocks = _guide_yaml_blocks()
    assert len(blocks) >= 10
    for line, body in blocks:
        snippets = re.split(r"\n(?=# \d+\. )", body)
        if len(snippets) > 1 and body.count("sync_config:") > 1:
            # Numbered snippets that repeat a section are separate examples.
            for snippet in snippets:
                assert isinstance(load_config_text(snippet, file=f"guide line {line}"), Config)
        else:
            assert isinstance(load_config_text(body, file=f"guide line {line}"), Config)


def test_guide_file_matches_copies():
    if not GUIDE.is_file():
        pytest.skip(f"the user guide is not at {GUIDE}")
    guide_configs = set()
    for line, body in _guide_yaml_blocks():
        # A copy is either a whole block or one numbered snippet of it.
        snippets = re.split(r"\n(?=# \d+\. )", body)
        if body.count("sync_config:") <= 1:
            snippets.append(body)
        for snippet in snippets:
            guide_configs.add(msgspec.json.encode(load_config_text(snippet, file=f"guide line {line}")))
    for name, text in GUIDE_BLOCKS.items():
        assert msgspec.json.encode(load(text)) in guide_configs, name


def test_sync_strategy_values_kept():
    sync = load(GUIDE_BLOCKS["sync_strategy"]).sync_config
    assert sync.sync_interval == 300
    assert sync.batch_size == 100
    assert sync.max_concurrent_tasks == 5
    assert sync.priority_symbols == ("BINANCE:BTCUSDT", "BINANCE:ETHUSDT")
    assert sync.priority_timeframes == ("1", "15")


def test_backup_strategy_values_kept():
    backup = load(GUIDE_BLOCKS["backup_strategy"]).backup_config
    assert backup.retention_policy.daily_backups == 7
    assert backup.retention_policy.yearly_backups == 3
    assert backup.verification.verify_after_backup is True
    assert backup.storage_backends.local.path == "data/backups/local"
    assert backup.storage_backends.remote.enabled is False
    assert backup.storage_backends.remote.bucket == "tradingview-backups"


def test_main_file_schedules_typed():
    config = load(GUIDE_BLOCKS["main_file"])
    schedules = config.schedule_config.backup_schedules
    assert schedules["full_backup"].cron == "0 2 * * *"
    assert schedules["full_backup"].type == "full"
    assert schedules["incremental_backup"].type == "incremental"
    assert config.monitoring_config.metrics_port == 9090
    assert config.monitoring_config.alerts.enabled is True


def test_alert_conditions_parsed():
    alerts = load(GUIDE_BLOCKS["alert_rules"]).monitoring_config.alerts
    condition = alerts.rules["disk_usage"].condition
    assert condition.metric == "disk_usage"
    assert condition.comparison == ">"
    assert condition.threshold == 0.85
    assert alerts.rules["backup_failure"].condition.metric == "backup_failure_count"
    assert alerts.rules["sync_failure_rate"].severity == "critical"
    assert alerts.channels.email.recipients == ("admin@example.com",)
    assert alerts.channels.log.level == "ERROR"


def test_legacy_schedule_mapped():
    config = load(GUIDE_BLOCKS["recommended_schedule"])
    schedules = config.schedule_config.backup_schedules
    assert schedules["snapshot_backup"].cron == "0 * * * *"
    assert schedules["snapshot_backup"].type == "snapshot"
    days = config.backup_config.retention_policy.retention_days
    assert days.full == 30
    assert days.incremental == 7
    assert days.snapshot == 1
    assert days.differential is None


def test_performance_aliases_applied():
    config = load(GUIDE_BLOCKS["performance"])
    assert config.sync_config.retries == 3
    assert config.sync_config.connection_pool_size == 16
    assert config.backup_config.compression_level == 6
    assert config.backup_config.enable_async_io is True


def test_troubleshooting_values_kept():
    assert load(GUIDE_BLOCKS["longer_timeout"]).sync_config.timeout_seconds == 60
    backup = load(GUIDE_BLOCKS["auto_cleanup"]).backup_config
    assert backup.max_total_size_gb == 50.0
    assert backup.auto_cleanup.size_threshold_gb == 40.0
    assert backup.auto_cleanup.retention_policy.keep_latest == 5
    memory = load(GUIDE_BLOCKS["memory"]).monitoring_config.memory_monitoring
    assert memory.enabled is True
    assert memory.force_gc_threshold == 80.0
    assert load(GUIDE_BLOCKS["debug"]).debug_config.profile_performance is True


# --- defaults and the sample file


def test_default_config_values():
    config = default_config()
    assert config.monitoring_config.metrics_host == "127.0.0.1"
    assert config.monitoring_config.metrics_port == 9090
    assert config.backup_config.storage_backends.remote.enabled is False
    assert config.backup_config.storage_backends.remote.endpoint_url is None
    assert config.debug_config.dry_run is False


def test_default_config_round_trips():
    # The struct annotations accept the defaults, so msgspec and the loader agree on them.
    encoded = msgspec.json.encode(default_config())
    assert msgspec.json.decode(encoded, type=Config) == default_config()


def test_empty_file_gives_defaults():
    assert load("") == default_config()
    assert load("# only a comment\n") == default_config()


def test_null_section_gives_defaults():
    assert load("backup_config:\n").backup_config == default_config().backup_config


def test_sample_file_validates():
    config = load_config(SAMPLE)
    assert config.schedule_config.timezone == "Asia/Shanghai"
    assert config.schedule_config.backup_schedules["full_backup"].type == "full"
    assert config.backup_config.retention_policy.keep_within == "30d"


def test_sample_file_commented_bilingually():
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    sections = [index for index, line in enumerate(lines) if re.fullmatch(r"[a-z_]+:", line)]
    assert len(sections) == 6  # five sections and `environments`
    for index in sections:
        comments = " ".join(lines[max(0, index - 2):index])
        assert re.search(r"# [A-Z][a-z]", comments), lines[index]
        assert re.search(r"[\u4e00-\u9fff]", comments), lines[index]


# --- errors


def test_unknown_key_suggests_closest():
    [message] = problems_of("backup_config:\n  retention_policy:\n    daily_backup: 7\n")
    assert "test.yaml, line 3" in message
    assert "backup_config.retention_policy.daily_backup:" in message
    assert "did you mean backup_config.retention_policy.daily_backups?" in message


def test_unknown_key_lists_valid():
    [message] = problems_of("debug_config:\n  zzz: 1\n")
    assert "debug_mode, dry_run, profile_performance, verbose_logging" in message


def test_wrong_type_names_value():
    [message] = problems_of("sync_config:\n  batch_size: lots\n")
    assert "line 2, column 15" in message
    assert "sync_config.batch_size" in message
    assert "expected an integer" in message
    assert "'lots'" in message


def test_out_of_range_rejected():
    [message] = problems_of("monitoring_config:\n  metrics_port: 70000\n")
    assert "monitoring_config.metrics_port" in message
    assert "at most 65535" in message


def test_all_problems_reported():
    messages = problems_of("sync_config:\n  batch_size: 0\n  retries: -1\ndebug_config:\n  dry_run: maybe\n")
    assert len(messages) == 3
    assert "line 2" in messages[0]
    assert "line 3" in messages[1]
    assert "line 5" in messages[2]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sync_config:\n  priority_timeframes: [on]\n", "reads on as the boolean true"),
        ("sync_config:\n  priority_symbols: no\n", "reads no as the boolean false"),
        ("monitoring_config:\n  alerts:\n    rules:\n      a:\n        condition: yes\n", "reads yes as the boolean true"),
        ("schedule_config:\n  backup_schedules:\n    full: {cron: 23:30}\n", "reads 23:30 as the base-60 number 1410"),
        ("sync_config:\n  priority_timeframes: [010]\n", "reads 010 as the octal number 8"),
        ("sync_config:\n  batch_size: 010\n", "reads 010 as the octal number 8"),
    ],
)
def test_yaml11_trap_says_quote(text, fragment):
    [message] = problems_of(text)
    assert fragment in message
    assert "put it in quotes" in message


def test_quoted_trap_values_accepted():
    config = load('sync_config:\n  priority_timeframes: ["15", 240]\n')
    assert config.sync_config.priority_timeframes == ("15", "240")


def test_yes_accepted_for_boolean():
    assert load("debug_config:\n  dry_run: yes\n").debug_config.dry_run is True


def test_duplicate_key_names_lines():
    [message] = problems_of("sync_config:\n  batch_size: 1\nsync_config:\n  batch_size: 2\n")
    assert "line 3" in message
    assert "line 1 already sets it" in message


def test_merge_key_overrides_allowed():
    config = load(
        """
        schedule_config:
          backup_schedules:
            full_backup: &base
              cron: "0 2 * * *"
            snapshot:
              <<: *base
              cron: "0 * * * *"
        """
    )
    assert config.schedule_config.backup_schedules["snapshot"].cron == "0 * * * *"
    assert config.schedule_config.backup_schedules["snapshot"].type == "snapshot"


def test_alias_and_field_conflict():
    [message] = problems_of("sync_config:\n  retries: 1\n  max_retries: 2\n")
    assert "sync_config.max_retries" in message
    assert "retries is already set" in message


def test_condition_never_evaluated():
    [message] = problems_of(
        'monitoring_config:\n  alerts:\n    rules:\n      x: {condition: "__import__(\'os\').getpid() > 0"}\n'
    )
    assert "invalid alert condition" in message


def test_condition_threshold_mismatch():
    [message] = problems_of(
        'monitoring_config:\n  alerts:\n    rules:\n      x: {condition: "disk_usage > 0.85", threshold: 0.9}\n'
    )
    assert "monitoring_config.alerts.rules.x.threshold" in message
    assert "line 4" in message


@pytest.mark.parametrize(
    "cron",
    ["0 24 * * *", "* * * *", "*/0 * * * *", "0 2 30 2 *", "0 0 0 * *", "0 0 * 13 *", "0 0 * * 8"],
)
def test_cron_invalid_rejected(cron):
    [message] = problems_of(f'schedule_config:\n  backup_schedules:\n    full: {{cron: "{cron}"}}\n')
    assert "invalid cron expression" in message


def test_cron_names_accepted():
    config = load('schedule_config:\n  backup_schedules:\n    full: {cron: "0 2 * jan-jun sun,sat"}\n')
    assert config.schedule_config.backup_schedules["full"].cron == "0 2 * jan-jun sun,sat"


def test_schedule_without_type_rejected():
    [message] = problems_of('schedule_config:\n  backup_schedules:\n    nightly: {cron: "@daily"}\n')
    assert "cannot tell the backup type" in message
    config = load('schedule_config:\n  backup_schedules:\n    nightly: {cron: "@daily", type: differential}\n')
    assert config.schedule_config.backup_schedules["nightly"].type == "differential"


def test_legacy_schedule_conflict_rejected():
    messages = problems_of(
        """
        schedule_config:
          backup_schedules:
            full_backup: {cron: "0 3 * * *"}
        backup_schedule:
          full_backup: {cron: "0 2 * * 0", retention_days: 30}
        """
    )
    assert len(messages) == 1
    assert "backup_schedule.full_backup" in messages[0]


def test_invalid_symbol_timezone_rejected():
    messages = problems_of(
        'sync_config:\n  priority_symbols: ["BTCUSDT"]\nschedule_config:\n  timezone: "Mars/Base"\n'
    )
    assert "invalid symbol 'BTCUSDT'" in messages[0]
    assert "unknown time zone 'Mars/Base'" in messages[1]


def test_enabled_remote_needs_bucket():
    [message] = problems_of("backup_config:\n  storage_backends:\n    remote:\n      enabled: true\n")
    assert "backup_config.storage_backends.remote.bucket" in message
    assert "line 4" in message


def test_cleanup_threshold_above_limit():
    [message] = problems_of("backup_config:\n  max_total_size_gb: 10\n  auto_cleanup:\n    size_threshold_gb: 40\n")
    assert "backup_config.auto_cleanup.size_threshold_gb" in message


def test_top_level_list_rejected():
    [message] = problems_of("- a\n- b\n")
    assert "expected a mapping" in message


def test_yaml_syntax_error_located():
    with pytest.raises(ConfigUnreadable) as caught:
        load("sync_config:\n  batch_size: [1\n")
    assert "test.yaml" in str(caught.value)
    assert "line 3" in str(caught.value)


def test_missing_file_unreadable(tmp_path):
    with pytest.raises(ConfigUnreadable) as caught:
        load_config(tmp_path / "absent.yaml")
    assert "absent.yaml" in str(caught.value)


def test_invalid_config_exit_code():
    with pytest.raises(InvalidConfig) as caught:
        load("debug_config: 1\n")
    assert caught.value.exit_code == 3


def test_cron_seconds_field_accepted():
    config = load('schedule_config:\n  backup_schedules:\n    often: {cron: "* * * * * */5", type: snapshot}\n')
    assert config.schedule_config.backup_schedules["often"].cron == "* * * * * */5"


@pytest.mark.parametrize(("cron", "field"), [("61 * * * *", "minute"), ("0 25 * * *", "hour"),
                                             ("0 2 * 13 *", "month"), ("* * * * * 61", "second")])
def test_cron_error_names_field(cron, field):
    [message] = problems_of(f'schedule_config:\n  backup_schedules:\n    full: {{cron: "{cron}"}}\n')
    assert f"the {field} field" in message
