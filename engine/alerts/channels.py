"""Delivery of a notification to every enabled channel: webhook, email and the log."""

import logging

from ...catalog.events import ChannelResult
from ..config.schema import AlertChannels, LogChannel
from .mail import send_email
from .notification import Notification
from .webhook import send_webhook

# The logger of the log channel; the daemon's log file and stderr handlers receive its lines.
alert_logger = logging.getLogger("tvcat.alerts")


def send_log(channel: LogChannel, notification: Notification) -> ChannelResult:
    """Write one line for `notification` on the `tvcat.alerts` logger at the channel's level."""
    alert_logger.log(
        logging.getLevelName(channel.level),
        "alert %s rule=%s severity=%s metric=%s value=%g condition=%s %s %g: %s",
        notification.status, notification.rule, notification.severity, notification.metric,
        notification.value, notification.metric, notification.comparison, notification.threshold,
        notification.message,
    )
    return ChannelResult(channel="log", ok=True)


def send_notification(channels: AlertChannels, notification: Notification) -> list[ChannelResult]:
    """Send `notification` to each enabled channel in turn: webhook, email, then log.

    Blocks until every channel has finished, which for a webhook with
    retries can take its timeout times (retries + 1) plus the retry delays.
    A failure of one channel does not stop the others.
    """
    results = []
    if channels.webhook.enabled:
        results.append(send_webhook(channels.webhook, notification))
    if channels.email.enabled:
        results.append(send_email(channels.email, notification))
    if channels.log.enabled:
        results.append(send_log(channels.log, notification))
    return results
