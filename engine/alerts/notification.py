"""The notification that every alert channel sends, and its JSON encoding."""

import socket
from datetime import datetime
from typing import Literal

import msgspec

from ...catalog import events as ev
from ...i18n import _
from ..config.schema import AlertRule

FIRING = "firing"
RESOLVED = "resolved"


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """One alert or recovery, as a webhook receives it in its JSON body."""

    rule: str                         # the rule's name in monitoring_config.alerts.rules
    status: Literal["firing", "resolved"]
    severity: str                     # 'info', 'warning', 'error' or 'critical'
    message: str
    metric: str
    value: float
    comparison: str                   # '>', '>=', '<', '<=', '==' or '!='
    threshold: float
    time: str                         # the evaluation time, UTC, in the events.time format
    host: str                         # the host name of the machine that evaluated the rule


_encoder = msgspec.json.Encoder()


def encode_notification(notification: Notification) -> bytes:
    """Return the JSON body of `notification`, with fields in declaration order."""
    return _encoder.encode(notification)


def build_notification(name: str, rule: AlertRule, status: str, value: float, now: datetime) -> Notification:
    """Build the notification of rule `name` for `value` at `now`, firing or resolved."""
    return Notification(
        rule=name,
        status=status,
        severity=rule.severity,
        message=notification_message(rule, status, value),
        metric=rule.condition.metric,
        value=value,
        comparison=rule.condition.comparison,
        threshold=rule.condition.threshold,
        time=ev.format_time(now),
        host=socket.gethostname(),
    )


def notification_message(rule: AlertRule, status: str, value: float) -> str:
    """Return the rule's own message, or one that states the metric, its value and the condition."""
    condition = rule.condition
    fields = {"metric": condition.metric, "value": value, "comparison": condition.comparison,
              "threshold": condition.threshold}
    if status == FIRING:
        if rule.message:
            return rule.message
        return _("{metric} is {value:g}, which is {comparison} {threshold:g}").format(**fields)

    if rule.message:
        return _("resolved: {message}").format(message=rule.message)
    return _("resolved: {metric} is {value:g}, no longer {comparison} {threshold:g}").format(**fields)
