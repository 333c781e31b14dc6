"""The email channel: a plain-text mail through an SMTP server, with optional STARTTLS and login."""

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from ...catalog.events import ChannelResult
from ...i18n import _
from ..config.schema import EmailChannel
from .notification import FIRING, Notification
from .redact import scrub

CHANNEL = "email"


def send_email(channel: EmailChannel, notification: Notification,
               timeout_seconds: float | None = None) -> ChannelResult:
    """Mail `notification` to the channel's recipients and return what happened.

    Upgrades the connection with STARTTLS when `use_starttls` is set, and
    fails if the server does not offer it rather than sending in clear
    text. Logs in when both a user name and a password are set. Makes one
    attempt. Never raises for a delivery problem, and the result's error
    never contains the password.
    """
    if not channel.smtp_server or not channel.recipients:
        return ChannelResult(channel=CHANNEL, ok=False, attempts=0,
                             error=_("the email channel is enabled but has no smtp_server or no recipients"))

    server = f"{channel.smtp_server}:{channel.smtp_port}"
    if timeout_seconds is None:
        timeout_seconds = channel.timeout_seconds
    try:
        _deliver(channel, build_message(channel, notification), timeout_seconds)
    except _StartTlsUnavailable:
        error = _("SMTP server {server} does not offer STARTTLS: use a server that does, "
                  "or set use_starttls: false to send without encryption").format(server=server)
    except _LoginUnavailable:
        error = _("SMTP server {server} does not offer login (SMTP AUTH): remove smtp_username and "
                  "smtp_password, or use a server that accepts them").format(server=server)
    except smtplib.SMTPAuthenticationError as failure:
        error = _("SMTP server {server} rejected the login of {user}: {code} {reason}").format(
            server=server, user=channel.smtp_username, code=failure.smtp_code, reason=_reply_text(failure.smtp_error))
    except smtplib.SMTPResponseException as failure:
        error = _("SMTP server {server} rejected the mail: {code} {reason}").format(
            server=server, code=failure.smtp_code, reason=_reply_text(failure.smtp_error))
    except (smtplib.SMTPException, ssl.SSLError, ValueError) as failure:
        error = _("sending mail through {server} failed: {reason}").format(server=server, reason=failure)
    except TimeoutError:
        error = _("SMTP server {server} timed out after {seconds:g} s").format(server=server, seconds=timeout_seconds)
    except OSError as failure:
        error = _("cannot connect to SMTP server {server}: {reason}").format(
            server=server, reason=failure.strerror or failure)
    else:
        return ChannelResult(channel=CHANNEL, ok=True)

    return ChannelResult(channel=CHANNEL, ok=False, error=scrub(error, [channel.smtp_password]))


def build_message(channel: EmailChannel, notification: Notification) -> EmailMessage:
    """Build the plain-text mail: the subject names the severity and the rule, the body every field."""
    message = EmailMessage()
    if notification.status == FIRING:
        subject = _("[tvcat] {severity}: {rule}").format(severity=notification.severity, rule=notification.rule)
    else:
        subject = _("[tvcat] resolved: {rule}").format(rule=notification.rule)
    message["Subject"] = subject
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=notification.host or "localhost")
    message.set_content(_(
        "{message}\n\n"
        "rule: {rule}\n"
        "status: {status}\n"
        "severity: {severity}\n"
        "condition: {metric} {comparison} {threshold:g}\n"
        "value: {value:g}\n"
        "time: {time}\n"
        "host: {host}\n"
    ).format(**{field: getattr(notification, field) for field in notification.__struct_fields__}))
    return message


class _StartTlsUnavailable(Exception):
    """The server does not list STARTTLS among its extensions."""


class _LoginUnavailable(Exception):
    """The server does not list AUTH among its extensions."""


def _deliver(channel: EmailChannel, message: EmailMessage, timeout_seconds: float) -> None:
    with smtplib.SMTP(channel.smtp_server, channel.smtp_port, timeout=timeout_seconds) as client:
        if channel.use_starttls:
            try:
                client.starttls(context=ssl.create_default_context())
            except smtplib.SMTPNotSupportedError:
                raise _StartTlsUnavailable() from None
        if channel.smtp_username and channel.smtp_password:
            try:
                client.login(channel.smtp_username, channel.smtp_password)
            except smtplib.SMTPNotSupportedError:
                raise _LoginUnavailable() from None
        client.send_message(message)


def _reply_text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
