"""The settings of a tvcat configuration file, as msgspec structs with their defaults.

A key that the file leaves out takes the default given here. Durations are
in seconds and sizes in gigabytes (10**9 bytes) unless a name says otherwise.
The `check` and `parse` entries of `Meta.extra` name the function in
`checks` that the loader runs on a value after its type is right.
"""

from typing import Annotated, ClassVar, Literal

import msgspec
from msgspec import Meta, field

from . import checks

NonNegativeInt = Annotated[int, Meta(ge=0)]
PositiveInt = Annotated[int, Meta(ge=1)]
PositiveFloat = Annotated[float, Meta(gt=0)]
NonNegativeFloat = Annotated[float, Meta(ge=0)]
Percent = Annotated[float, Meta(ge=0, le=100)]
Port = Annotated[int, Meta(ge=1, le=65535)]
PathText = Annotated[str, Meta(min_length=1)]
Symbol = Annotated[str, Meta(extra={"check": checks.check_symbol})]
Timeframe = Annotated[str, Meta(extra={"check": checks.check_timeframe})]
TimeZone = Annotated[str, Meta(extra={"check": checks.check_timezone})]
CronExpression = Annotated[str, Meta(extra={"check": checks.check_cron})]
Duration = Annotated[str, Meta(extra={"check": checks.check_duration})]
Url = Annotated[str, Meta(extra={"check": checks.check_url})]
WebsocketUrl = Annotated[str, Meta(extra={"check": checks.check_websocket_url})]
# A password, token or key: `config show` masks it and error messages never show it.
Secret = Annotated[str, Meta(min_length=1, extra={"secret": True})]
EncryptionKey = Annotated[str, Meta(min_length=1, extra={"secret": True, "check": checks.check_encryption_key})]

BackupTypeName = Literal["full", "incremental", "differential", "snapshot"]
BACKUP_TYPE_NAMES: tuple[str, ...] = BackupTypeName.__args__


class Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every section. `key_aliases` maps another accepted key to a field name."""

    key_aliases: ClassVar[dict[str, str]] = {}


class TradingViewConfig(Section, frozen=True):
    """The TradingView chart websocket that the `tradingview` source connects to."""

    url: WebsocketUrl = "wss://data.tradingview.com/socket.io/websocket"
    # The Origin header the server expects from a browser chart.
    origin: str = "https://www.tradingview.com"
    # A session's auth token. None uses the anonymous token, which serves delayed data
    # and less history.
    token: Secret | None = None
    # Bars asked for per request when paging back in history.
    page_bars: Annotated[int, Meta(ge=10, le=20000)] = 5000
    timeout_seconds: PositiveFloat = 30.0


class ResourceLimits(Section, frozen=True):
    """Limits above which the sync engine delays new tasks; None turns a limit off."""

    max_memory_percent: Percent | None = 90.0
    max_cpu_percent: Percent | None = None
    min_free_disk_gb: PositiveFloat | None = 1.0
    # How long a task waits for resources before it fails, naming the limit.
    max_wait_seconds: NonNegativeInt = 300


class PriorityTier(Section, frozen=True):
    """Series synced together at one interval; `*` in symbols means every other symbol."""

    symbols: tuple[str, ...] = ()
    timeframes: tuple[Timeframe, ...] = ()
    sync_interval: PositiveInt = 300


class SyncConfig(Section, frozen=True):
    # The bar cache database. None uses $XDG_DATA_HOME/tvcat/cache.db.
    cache_path: PathText | None = None
    # The source that `primary` means: sample, tradingview, csv:DIR, binance:DIR or freqtrade:DIR.
    primary: Annotated[str, Meta(min_length=1)] = "sample"
    # Bars before the newest stored bar that every incremental sync fetches again,
    # so revised recent bars are caught.
    overlap_bars: NonNegativeInt = 2
    # True skips the still-forming newest bar instead of storing it as provisional.
    closed_only: bool = False
    # True stores bars that fail the OHLC checks (such as high below low) and records a warning.
    accept_invalid_bars: bool = False
    # The maximum time in seconds one sync task may run, retries excluded.
    task_timeout_seconds: PositiveFloat = 3600.0
    tradingview: TradingViewConfig = field(default_factory=TradingViewConfig)
    resource_limits: ResourceLimits = field(default_factory=ResourceLimits)
    # The guide's high, medium and low priority tiers, by name.
    priority_tiers: dict[str, PriorityTier] = field(default_factory=dict)
    sync_interval: PositiveInt = 300
    batch_size: PositiveInt = 100
    max_concurrent_tasks: PositiveInt = 5
    priority_symbols: tuple[Symbol, ...] = ()
    priority_timeframes: tuple[Timeframe, ...] = ()
    timeout_seconds: PositiveInt = 30
    retries: NonNegativeInt = 3
    retry_delay_base: PositiveFloat = 2.0
    connection_pool_size: PositiveInt = 10
    connection_timeout: PositiveInt = 30
    keep_alive_timeout: NonNegativeInt = 60
    enable_compression: bool = False

    key_aliases: ClassVar[dict[str, str]] = {"max_retries": "retries"}


class RetentionDays(Section, frozen=True):
    """Days to keep backups of each type; None keeps them until another rule removes them."""

    full: PositiveInt | None = None
    incremental: PositiveInt | None = None
    differential: PositiveInt | None = None
    snapshot: PositiveInt | None = None


class RetentionPolicy(Section, frozen=True):
    """Rules that select the backups to keep. A count of 0 turns that rule off."""

    daily_backups: NonNegativeInt = 7
    weekly_backups: NonNegativeInt = 4
    monthly_backups: NonNegativeInt = 12
    yearly_backups: NonNegativeInt = 3
    keep_last: NonNegativeInt = 0
    keep_hourly: NonNegativeInt = 0
    keep_within: Duration | None = None
    # The zone whose midnight starts a day for the daily, weekly, monthly and yearly rules.
    timezone: TimeZone = "UTC"
    retention_days: RetentionDays = field(default_factory=RetentionDays)


class Verification(Section, frozen=True):
    enable_checksum: bool = True
    verify_after_backup: bool = True


class LocalBackend(Section, frozen=True):
    enabled: bool = True
    # None stores backups in backup_config.backup_dir.
    path: PathText | None = None


class RemoteBackend(Section, frozen=True):
    enabled: bool = False
    type: Literal["s3"] = "s3"
    bucket: str | None = None
    # None lets the S3 client choose its endpoint from the region.
    endpoint_url: Url | None = None
    prefix: str = ""
    region: str | None = None
    # None takes the key from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    access_key_id: Secret | None = None
    secret_access_key: Secret | None = None
    # 64 hex digits: objects and log segments are encrypted before upload. Keep a copy elsewhere;
    # without it the remote copy cannot be read.
    encryption_key: EncryptionKey | None = None


class StorageBackends(Section, frozen=True):
    local: LocalBackend = field(default_factory=LocalBackend)
    remote: RemoteBackend = field(default_factory=RemoteBackend)


class CleanupRetention(Section, frozen=True):
    keep_latest: NonNegativeInt = 5
    keep_daily: NonNegativeInt = 7


class AutoCleanup(Section, frozen=True):
    """Prune with `retention_policy` before a backup when the repository is too big or the disk too full."""

    enabled: bool = False
    # Repository size (bytes written by backups not forgotten) above which cleanup runs.
    size_threshold_gb: PositiveFloat | None = None
    # Free space under the repository below which cleanup runs.
    min_free_disk_gb: PositiveFloat | None = None
    retention_policy: CleanupRetention = field(default_factory=CleanupRetention)


class BackupConfig(Section, frozen=True):
    # The repository directory, relative to the working directory unless absolute.
    # None uses $XDG_DATA_HOME/tvcat/repo (default ~/.local/share/tvcat/repo).
    backup_dir: PathText | None = None
    max_backup_files: PositiveInt | None = 30
    max_total_size_gb: PositiveFloat | None = None
    compression_enabled: bool = True
    # A zstd level: higher levels compress better and run slower.
    compression_level: Annotated[int, Meta(ge=1, le=22)] = 3
    max_backup_workers: PositiveInt = 2
    enable_async_io: bool = False
    retention_policy: RetentionPolicy = field(default_factory=RetentionPolicy)
    verification: Verification = field(default_factory=Verification)
    storage_backends: StorageBackends = field(default_factory=StorageBackends)
    auto_cleanup: AutoCleanup = field(default_factory=AutoCleanup)


class BackupSchedule(Section, frozen=True):
    cron: CronExpression
    # None takes the type from a schedule name such as `full_backup` or `snapshot`.
    type: BackupTypeName | None = None


class VerifySchedule(Section, frozen=True):
    cron: CronExpression
    # True decodes and re-hashes every chunk; false checks that each object exists.
    read_data: bool = False


class PruneSchedule(Section, frozen=True):
    cron: CronExpression


class ScheduleConfig(Section, frozen=True):
    enabled: bool = True
    timezone: TimeZone = "UTC"
    # True runs a schedule once at start when its last run was missed.
    catch_up: bool = False
    backup_schedules: dict[str, BackupSchedule] = field(default_factory=dict)
    verify: VerifySchedule | None = None
    prune: PruneSchedule | None = None
    # How often the daemon looks for tasks that `tvcat sync --queue` added.
    queue_poll_seconds: PositiveFloat = 5.0
    # After SIGTERM or SIGINT, how long running jobs may take to finish before they are interrupted.
    stop_grace_seconds: NonNegativeFloat = 30.0


class EmailChannel(Section, frozen=True):
    enabled: bool = False
    smtp_server: str | None = None
    smtp_port: Port = 587
    # True upgrades the connection with STARTTLS before logging in.
    use_starttls: bool = True
    smtp_username: str | None = None
    smtp_password: Secret | None = None
    sender: str = "tvcat@localhost"
    recipients: tuple[str, ...] = ()
    timeout_seconds: PositiveFloat = 30.0


class WebhookChannel(Section, frozen=True):
    enabled: bool = False
    url: Url | None = None
    # Sent as `Authorization: Bearer <token>` when set.
    token: Secret | None = None
    timeout_seconds: PositiveFloat = 10.0
    retries: NonNegativeInt = 3


class LogChannel(Section, frozen=True):
    enabled: bool = True
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"


class AlertChannels(Section, frozen=True):
    email: EmailChannel = field(default_factory=EmailChannel)
    webhook: WebhookChannel = field(default_factory=WebhookChannel)
    log: LogChannel = field(default_factory=LogChannel)


class AlertCondition(msgspec.Struct, frozen=True):
    """A parsed condition such as `sync_failure_rate > 0.1`."""

    metric: str
    comparison: Literal[">", ">=", "<", "<=", "==", "!="]
    threshold: float


class AlertRule(Section, frozen=True):
    condition: Annotated[AlertCondition, Meta(extra={"parse": checks.parse_condition})]
    # When given, it must equal the number in `condition`.
    threshold: float | None = None
    severity: Literal["info", "warning", "error", "critical"] = "warning"
    message: str = ""
    # Rates and counts look back this far.
    window_seconds: PositiveFloat = 3600.0
    # For backup_age_hours: the backup type to watch; none means any type.
    backup_type: BackupTypeName | None = None


class AlertsConfig(Section, frozen=True):
    enabled: bool = False
    channels: AlertChannels = field(default_factory=AlertChannels)
    rules: dict[str, AlertRule] = field(default_factory=dict)
    evaluation_interval_seconds: PositiveFloat = 30.0
    # A firing alert is sent again no sooner than this; repeats in between are recorded as suppressed.
    suppress_seconds: NonNegativeFloat = 3600.0


class MemoryMonitoring(Section, frozen=True):
    enabled: bool = False
    max_memory_percent: Percent = 80.0
    force_gc_threshold: Percent = 90.0


class MonitoringConfig(Section, frozen=True):
    enabled: bool = False
    metrics_host: str = "127.0.0.1"
    metrics_port: Port = 9090
    # The daemon's log, one line per event; default: logs/tvcat.log under the data directory.
    log_file: PathText | None = None
    log_max_bytes: PositiveInt = 10_000_000
    log_backup_count: NonNegativeInt = 5
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    memory_monitoring: MemoryMonitoring = field(default_factory=MemoryMonitoring)


class DebugConfig(Section, frozen=True):
    debug_mode: bool = False
    verbose_logging: bool = False
    profile_performance: bool = False
    # True logs what would be done and changes nothing.
    dry_run: bool = False


class Config(Section, frozen=True):
    sync_config: SyncConfig = field(default_factory=SyncConfig)
    backup_config: BackupConfig = field(default_factory=BackupConfig)
    schedule_config: ScheduleConfig = field(default_factory=ScheduleConfig)
    monitoring_config: MonitoringConfig = field(default_factory=MonitoringConfig)
    debug_config: DebugConfig = field(default_factory=DebugConfig)


class LegacyBackupSchedule(BackupSchedule, frozen=True):
    """An entry of the top-level `backup_schedule` mapping, an older spelling of the schedules."""

    retention_days: PositiveInt | None = None


class ConfigFile(Config, frozen=True):
    """The top level of a file: Config plus the older `backup_schedule` key that the loader maps."""

    backup_schedule: dict[str, LegacyBackupSchedule] = field(default_factory=dict)
