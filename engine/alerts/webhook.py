"""The webhook channel: an HTTP POST of the notification's JSON."""

import logging
import time

import httpx

from ...catalog.events import ChannelResult
from ...i18n import _
from ..config.schema import WebhookChannel
from .notification import Notification, encode_notification
from .redact import scrub, url_origin, url_secrets

logger = logging.getLogger(__name__)

# httpx logs every request with its full URL at INFO, and a webhook URL can
# carry its secret in the path or query. Unless the application set a level
# for the httpx logger itself, keep it to warnings and errors.
_httpx_logger = logging.getLogger("httpx")
if _httpx_logger.level == logging.NOTSET:
    _httpx_logger.setLevel(logging.WARNING)

CHANNEL = "webhook"
# The delay before the first retry; each later retry waits twice as long, up to the maximum.
RETRY_DELAY_SECONDS = 0.5
MAX_RETRY_DELAY_SECONDS = 5.0


class _RetryableFailure(Exception):
    """A failure worth another attempt: a connection error, a timeout or an HTTP 5xx response."""


class _FinalFailure(Exception):
    """A failure that another attempt would repeat, such as an HTTP 4xx response."""


def send_webhook(
    channel: WebhookChannel, notification: Notification, retry_delay_seconds: float = RETRY_DELAY_SECONDS
) -> ChannelResult:
    """POST `notification` to the channel's URL and return what happened.

    Sends `Authorization: Bearer <token>` when the channel has a token.
    Retries up to `channel.retries` times after a connection error, a
    timeout or an HTTP 5xx response, waiting `retry_delay_seconds`, then
    twice as long each time. An HTTP 4xx or 3xx response is not retried.
    Never raises for a delivery problem, and the result's error names only
    scheme://host:port of the URL.
    """
    if not channel.url:
        return ChannelResult(channel=CHANNEL, ok=False, attempts=0,
                             error=_("the webhook channel is enabled but has no url"))

    headers = {"Content-Type": "application/json"}
    if channel.token:
        headers["Authorization"] = f"Bearer {channel.token}"
    body = encode_notification(notification)
    secrets = [channel.token, *url_secrets(channel.url)]
    origin = url_origin(channel.url)

    attempts = 0
    error = ""
    with httpx.Client(timeout=channel.timeout_seconds, follow_redirects=False) as client:
        while attempts <= channel.retries:
            if attempts:
                delay = min(retry_delay_seconds * 2 ** (attempts - 1), MAX_RETRY_DELAY_SECONDS)
                logger.warning("webhook retry origin=%s attempt=%d delay=%.1fs error=%s",
                               origin, attempts + 1, delay, error)
                time.sleep(delay)
            attempts += 1

            try:
                _post(client, channel, body, headers, origin)
            except _RetryableFailure as failure:
                error = scrub(str(failure), secrets)
                continue
            except _FinalFailure as failure:
                error = scrub(str(failure), secrets)
                break
            return ChannelResult(channel=CHANNEL, ok=True, attempts=attempts)

    return ChannelResult(channel=CHANNEL, ok=False, attempts=attempts, error=error)


def _post(client: httpx.Client, channel: WebhookChannel, body: bytes, headers: dict, origin: str) -> None:
    try:
        response = client.post(channel.url, content=body, headers=headers)
    except httpx.TimeoutException:
        raise _RetryableFailure(
            _("webhook {origin} timed out after {seconds:g} s").format(origin=origin, seconds=channel.timeout_seconds)
        ) from None
    except httpx.TransportError as error:
        raise _RetryableFailure(
            _("webhook {origin} failed: {reason}").format(origin=origin, reason=str(error) or type(error).__name__)
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise _FinalFailure(
            _("webhook {origin} failed: {reason}").format(origin=origin, reason=str(error) or type(error).__name__)
        ) from None

    if response.is_success:
        return
    message = _("webhook {origin} returned HTTP {status}").format(origin=origin, status=response.status_code)
    if response.is_server_error:
        raise _RetryableFailure(message)
    raise _FinalFailure(message)
