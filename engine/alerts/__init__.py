"""Alerts: rules from the configuration, measured from the repository and sent to webhook, email and log channels.

`evaluate_alerts` is the entry point that the daemon calls every
`evaluation_interval_seconds`. Every alert sent, suppressed or resolved is
an event in the repository's log, which is also where the state of each
rule is read from.
"""

from .measure import MEASURES, UnknownMetric, measure
from .notification import Notification, build_notification, encode_notification
from .rules import RuleState, evaluate_alerts, evaluate_rule, read_rule_state

__all__ = [
    "MEASURES", "Notification", "RuleState", "UnknownMetric", "build_notification", "encode_notification",
    "evaluate_alerts", "evaluate_rule", "measure", "read_rule_state",
]
