"""Evaluation of the alert rules: measure, compare, send or suppress, and record what was done.

The evaluation keeps no state between calls. The state of a rule (firing
or not, when it was last sent, the value last reported) is read from its
latest alert.* events, so it survives a restart of the daemon.
"""

import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec

from ...catalog import events as ev
from ...catalog.repository import Repository
from ..config.schema import AlertRule, AlertsConfig, Config, MonitoringConfig
from .channels import send_notification
from .measure import is_new_evidence, measure
from .notification import FIRING, RESOLVED, build_notification

logger = logging.getLogger(__name__)

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}

_ALERT_KINDS = (ev.AlertSent.kind, ev.AlertSuppressed.kind, ev.AlertResolved.kind)


@dataclass(frozen=True)
class RuleState:
    """A rule's state as its latest alert events record it."""

    firing: bool
    last_sent: datetime | None        # time of the latest alert.sent
    last_value: float | None          # value of the latest alert.sent or alert.suppressed while firing


def read_rule_state(repository: Repository, name: str) -> RuleState:
    """Return the state of rule `name` from the event log; a rule with no alert events is not firing."""
    connection = repository.connection
    placeholders = ", ".join("?" for _kind in _ALERT_KINDS)
    latest = connection.execute(
        f"SELECT kind, payload FROM events WHERE subject = ? AND kind IN ({placeholders}) ORDER BY seq DESC LIMIT 1",
        (name, *_ALERT_KINDS),
    ).fetchone()
    if latest is None or latest[0] == ev.AlertResolved.kind:
        return RuleState(firing=False, last_sent=None, last_value=None)

    kind, payload = latest
    value = msgspec.json.decode(payload, type=ev.EVENT_TYPES[kind]).value
    sent = connection.execute(
        "SELECT time FROM events WHERE subject = ? AND kind = ? ORDER BY seq DESC LIMIT 1",
        (name, ev.AlertSent.kind),
    ).fetchone()
    if sent is None:
        # evaluate_rule records alert.suppressed only after an alert.sent, so another
        # writer made this log; the rule starts afresh as not firing.
        return RuleState(firing=False, last_sent=None, last_value=None)
    return RuleState(firing=True, last_sent=ev.parse_time(sent[0]), last_value=value)


def evaluate_alerts(
    repository: Repository, cache_path: Path | None, config: Config | MonitoringConfig | AlertsConfig,
    now: datetime | None = None,
) -> list[ev.EventRecord]:
    """Evaluate every alert rule at `now` (default: the current time) and return the events recorded.

    For each rule whose metric has a value:
    - condition newly true: send to every enabled channel, record alert.sent;
    - still true and `suppress_seconds` passed since the last send: send a
      reminder, record alert.sent;
    - still true within that time, with a changed value (new evidence):
      send nothing, record alert.suppressed;
    - still true within that time, value unchanged: do nothing;
    - false while firing: announce the recovery, record alert.resolved.
    alert.sent is recorded even when every channel failed, with each
    ChannelResult, and the next try is the reminder. Does nothing when
    alerts are disabled. Sending blocks; see
    `send_notification`. Raises UnknownMetric for a rule whose metric
    tvcat does not measure, which the configuration loader rejects.
    """
    alerts = _alerts_config(config)
    if not alerts.enabled:
        return []
    now = now or datetime.now(timezone.utc)

    records = []
    for name, rule in alerts.rules.items():
        record = evaluate_rule(repository, cache_path, alerts, name, rule, now)
        if record is not None:
            records.append(record)
    return records


def evaluate_rule(
    repository: Repository, cache_path: Path | None, alerts: AlertsConfig, name: str, rule: AlertRule,
    now: datetime,
) -> ev.EventRecord | None:
    """Evaluate one rule at `now` and return the event recorded, if any."""
    value = measure(repository, cache_path, name, rule, now)
    if value is None:
        logger.debug("alert rule skipped, metric has no value rule=%s metric=%s", name, rule.condition.metric)
        return None

    condition = rule.condition
    condition_met = COMPARISONS[condition.comparison](value, condition.threshold)
    state = read_rule_state(repository, name)

    if condition_met and not state.firing:
        return _send_alert(repository, alerts, name, rule, value, now)
    if condition_met:
        return _repeat_alert(repository, alerts, name, rule, value, now, state)
    if state.firing:
        return _resolve_alert(repository, alerts, name, rule, value, now)
    return None


def _repeat_alert(repository, alerts, name, rule, value, now, state: RuleState) -> ev.EventRecord | None:
    """Handle a rule that was firing and still is: remind, suppress or do nothing."""
    suppressed_until = state.last_sent + timedelta(seconds=alerts.suppress_seconds)
    if now >= suppressed_until:
        return _send_alert(repository, alerts, name, rule, value, now)
    if not is_new_evidence(rule.condition.metric, state.last_value, value):
        return None

    logger.info("alert suppressed rule=%s metric=%s value=%g until=%s",
                name, rule.condition.metric, value, ev.format_time(suppressed_until))
    return repository.record(ev.AlertSuppressed(
        rule=name, metric=rule.condition.metric, value=value, until=ev.format_time(suppressed_until),
    ))


def _send_alert(repository, alerts, name, rule, value, now) -> ev.EventRecord:
    notification = build_notification(name, rule, FIRING, value, now)
    results = send_notification(alerts.channels, notification)
    _log_failures(name, results)
    return repository.record(ev.AlertSent(
        rule=name, severity=rule.severity, message=notification.message, metric=rule.condition.metric,
        value=value, threshold=rule.condition.threshold, channels=results,
    ))


def _resolve_alert(repository, alerts, name, rule, value, now) -> ev.EventRecord:
    notification = build_notification(name, rule, RESOLVED, value, now)
    results = send_notification(alerts.channels, notification)
    _log_failures(name, results)
    return repository.record(ev.AlertResolved(
        rule=name, metric=rule.condition.metric, value=value, channels=results,
    ))


def _log_failures(name: str, results: list[ev.ChannelResult]) -> None:
    for result in results:
        if not result.ok:
            logger.error("alert channel failed rule=%s channel=%s attempts=%d error=%s",
                         name, result.channel, result.attempts, result.error)


def _alerts_config(config: Config | MonitoringConfig | AlertsConfig) -> AlertsConfig:
    if isinstance(config, Config):
        return config.monitoring_config.alerts
    if isinstance(config, MonitoringConfig):
        return config.alerts
    return config
