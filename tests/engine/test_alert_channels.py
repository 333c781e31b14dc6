"""Alert channels against real servers on 127.0.0.1: an HTTP server for the webhook, aiosmtpd for email."""

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgspec
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tvcat.engine.alerts.channels import send_log, send_notification
from tvcat.engine.alerts.mail import send_email
from tvcat.engine.alerts.notification import Notification, build_notification, encode_notification
from tvcat.engine.alerts.webhook import send_webhook
from tvcat.engine.config.schema import (
    AlertChannels,
    AlertCondition,
    AlertRule,
    EmailChannel,
    LogChannel,
    WebhookChannel,
)

TOKEN = "token-5f1c9e-never-shown"
PASSWORD = "password-a81d-never-shown"
SECRET_PATH = "/hooks/T000/B000/path-secret-77"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


# --- a webhook receiver


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """An HTTP server on 127.0.0.1 that records every POST and responds with the scripted statuses."""

    server: ThreadingHTTPServer
    requests: list[ReceivedRequest] = field(default_factory=list)
    # Statuses for the next requests, in order; when empty, 200.
    statuses: list[int] = field(default_factory=list)
    # While set, a request waits for `release` (up to 10 s) and gets no response.
    hold: bool = False
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def origin(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str = "/alerts") -> str:
        return self.origin + path


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.requests.append(ReceivedRequest(self.path, dict(self.headers.items()), body))
            if receiver.hold:
                receiver.release.wait(10)
                return
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args) -> None:
            pass

    return Handler


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    receiver = WebhookReceiver(server)
    server.RequestHandlerClass = _handler_for(receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield receiver
    receiver.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


# --- a mail receiver


@dataclass
class ReceivedMail:
    mail_from: str
    recipients: list[str]
    message: Message
    login: bytes | None


class MailRecorder:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.mails: list[ReceivedMail] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        login = session.auth_data.login if session.authenticated else None
        self.mails.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos),
                                       message_from_bytes(envelope.content), login))
        return "250 OK"


@dataclass
class MailServer:
    controller: Controller
    recorder: MailRecorder

    @property
    def port(self) -> int:
        return self.controller.port

    @property
    def mails(self) -> list[ReceivedMail]:
        return self.recorder.mails


def _free_port() -> int:
    # aiosmtpd's Controller connects to its own port after it starts, so it needs the number before.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _check_login(server, session, envelope, mechanism, auth_data) -> AuthResult:
    if auth_data.login == b"alerts" and auth_data.password == PASSWORD.encode():
        return AuthResult(success=True, auth_data=auth_data)
    # handled=False makes aiosmtpd send the 535 reply itself.
    return AuthResult(success=False, handled=False)


def _start_mail_server(**smtp_parameters) -> MailServer:
    recorder = MailRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=_free_port(),
                            loop=asyncio.new_event_loop(), **smtp_parameters)
    controller.start()
    return MailServer(controller, recorder)


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    server = _start_mail_server()
    yield server
    server.controller.stop()


@pytest.fixture
def mail_server_with_login() -> Iterator[MailServer]:
    # Plain-text AUTH is acceptable only because the connection never leaves 127.0.0.1.
    server = _start_mail_server(authenticator=_check_login, auth_require_tls=False)
    yield server
    server.controller.stop()


# --- helpers


RULE = AlertRule(condition=AlertCondition("backup_failure_count", ">", 0.0), severity="error",
                 message="backup failed")


def notification(status: str = "firing", rule: AlertRule = RULE, value: float = 2.0) -> Notification:
    return build_notification("backup_failure", rule, status, value, NOW)


def webhook(url: str, **settings) -> WebhookChannel:
    return WebhookChannel(enabled=True, url=url, **{"timeout_seconds": 2.0, "retries": 0, **settings})


def email(port: int, **settings) -> EmailChannel:
    defaults = {"smtp_server": "127.0.0.1", "smtp_port": port, "use_starttls": False,
                "sender": "tvcat@example.org", "recipients": ("ops@example.org", "oncall@example.org")}
    return EmailChannel(enabled=True, **{**defaults, **settings})


# --- the notification


def test_notification_json_round_trip():
    sent = notification()
    decoded = msgspec.json.decode(encode_notification(sent), type=Notification)
    assert decoded == sent


def test_notification_json_fields():
    body = msgspec.json.decode(encode_notification(notification()))
    assert body["rule"] == "backup_failure"
    assert body["status"] == "firing"
    assert body["severity"] == "error"
    assert body["message"] == "backup failed"
    assert body["metric"] == "backup_failure_count"
    assert body["value"] == 2.0
    assert body["threshold"] == 0.0
    assert body["time"] == "2024-05-01T12:00:00.000000Z"
    assert body["host"] == socket.gethostname()


def test_notification_generated_message():
    rule = AlertRule(condition=AlertCondition("disk_usage", ">", 0.85))
    firing = notification(rule=rule, value=0.9).message
    resolved = notification("resolved", rule=rule, value=0.5).message
    assert firing == "disk_usage is 0.9, which is > 0.85"
    assert resolved == "resolved: disk_usage is 0.5, no longer > 0.85"


def test_notification_resolved_keeps_rule_message():
    assert notification("resolved").message == "resolved: backup failed"


# --- webhook


def test_webhook_posts_json_with_token(webhook_receiver):
    result = send_webhook(webhook(webhook_receiver.url(), token=TOKEN), notification())

    assert result.ok
    assert result.attempts == 1
    assert result.error is None
    [request] = webhook_receiver.requests
    assert request.path == "/alerts"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert msgspec.json.decode(request.body, type=Notification) == notification()


def test_webhook_without_token_sends_no_authorization(webhook_receiver):
    result = send_webhook(webhook(webhook_receiver.url()), notification())
    assert result.ok
    [request] = webhook_receiver.requests
    assert "Authorization" not in request.headers


def test_webhook_retries_after_500(webhook_receiver):
    webhook_receiver.statuses = [500]
    result = send_webhook(webhook(webhook_receiver.url(), retries=2), notification(), retry_delay_seconds=0.05)

    assert result.ok
    assert result.attempts == 2
    assert len(webhook_receiver.requests) == 2
    assert webhook_receiver.requests[0].body == webhook_receiver.requests[1].body


def test_webhook_no_retry_on_4xx(webhook_receiver):
    webhook_receiver.statuses = [404, 200]
    result = send_webhook(webhook(webhook_receiver.url(), retries=3), notification(), retry_delay_seconds=0.05)

    assert not result.ok
    assert result.attempts == 1
    assert len(webhook_receiver.requests) == 1
    assert "HTTP 404" in result.error


def test_webhook_gives_up_after_retries(webhook_receiver):
    webhook_receiver.statuses = [503, 502, 500, 200]
    result = send_webhook(webhook(webhook_receiver.url(), retries=2), notification(), retry_delay_seconds=0.05)

    assert not result.ok
    assert result.attempts == 3
    assert len(webhook_receiver.requests) == 3
    assert "HTTP 500" in result.error


def test_webhook_timeout(webhook_receiver):
    webhook_receiver.hold = True
    result = send_webhook(webhook(webhook_receiver.url(), timeout_seconds=0.3, retries=1), notification(),
                          retry_delay_seconds=0.05)

    assert not result.ok
    assert result.attempts == 2
    assert "timed out" in result.error
    assert len(webhook_receiver.requests) == 2


def test_webhook_error_names_origin_only(webhook_receiver):
    webhook_receiver.statuses = [500]
    url = webhook_receiver.url(SECRET_PATH + "?key=query-secret-31&token=" + TOKEN)
    result = send_webhook(webhook(url, token=TOKEN), notification())

    assert not result.ok
    assert webhook_receiver.origin in result.error
    assert "path-secret-77" not in result.error
    assert "query-secret-31" not in result.error
    assert TOKEN not in result.error


def test_webhook_connection_refused():
    url = f"http://127.0.0.1:{_free_port()}{SECRET_PATH}"
    result = send_webhook(webhook(url, token=TOKEN, retries=1), notification(), retry_delay_seconds=0.01)

    assert not result.ok
    assert result.attempts == 2
    assert "failed" in result.error
    assert "path-secret-77" not in result.error
    assert TOKEN not in result.error


def test_webhook_without_url():
    result = send_webhook(WebhookChannel(enabled=True), notification())
    assert not result.ok
    assert result.attempts == 0
    assert "no url" in result.error


# --- email


def test_email_delivered(mail_server):
    result = send_email(email(mail_server.port), notification())

    assert result.ok
    assert result.error is None
    [mail] = mail_server.mails
    assert mail.mail_from == "tvcat@example.org"
    assert mail.recipients == ["ops@example.org", "oncall@example.org"]
    assert mail.message["Subject"] == "[tvcat] error: backup_failure"
    body = mail.message.get_payload(decode=True).decode()
    assert body.splitlines()[0] == "backup failed"
    assert "condition: backup_failure_count > 0" in body
    assert "value: 2" in body
    assert mail.message.get_content_type() == "text/plain"


def test_email_resolved_subject(mail_server):
    result = send_email(email(mail_server.port), notification("resolved"))
    assert result.ok
    [mail] = mail_server.mails
    assert mail.message["Subject"] == "[tvcat] resolved: backup_failure"


def test_email_login(mail_server_with_login):
    channel = email(mail_server_with_login.port, smtp_username="alerts", smtp_password=PASSWORD)
    result = send_email(channel, notification())

    assert result.ok
    [mail] = mail_server_with_login.mails
    assert mail.login == b"alerts"


def test_email_login_rejected(mail_server_with_login):
    channel = email(mail_server_with_login.port, smtp_username="alerts", smtp_password=PASSWORD + "-wrong")
    result = send_email(channel, notification())

    assert not result.ok
    assert "rejected the login of alerts" in result.error
    assert "535" in result.error
    assert PASSWORD not in result.error
    assert mail_server_with_login.mails == []


def test_email_login_unavailable(mail_server):
    channel = email(mail_server.port, smtp_username="alerts", smtp_password=PASSWORD)
    result = send_email(channel, notification())

    assert not result.ok
    assert "does not offer login" in result.error
    assert PASSWORD not in result.error
    assert mail_server.mails == []


def test_email_starttls_unavailable(mail_server):
    result = send_email(email(mail_server.port, use_starttls=True), notification())

    assert not result.ok
    assert "does not offer STARTTLS" in result.error
    assert f"127.0.0.1:{mail_server.port}" in result.error
    assert mail_server.mails == []


def test_email_connection_refused():
    port = _free_port()
    result = send_email(email(port), notification(), timeout_seconds=2.0)
    assert not result.ok
    assert f"cannot connect to SMTP server 127.0.0.1:{port}" in result.error


def test_email_without_recipients():
    result = send_email(EmailChannel(enabled=True, smtp_server="127.0.0.1"), notification())
    assert not result.ok
    assert result.attempts == 0


# --- log and dispatch


def test_log_channel_level(caplog):
    caplog.set_level(logging.DEBUG, logger="tvcat.alerts")
    result = send_log(LogChannel(level="ERROR"), notification())

    assert result.ok
    [record] = [record for record in caplog.records if record.name == "tvcat.alerts"]
    assert record.levelno == logging.ERROR
    assert "rule=backup_failure" in record.getMessage()
    assert "backup failed" in record.getMessage()


def test_send_notification_skips_disabled(webhook_receiver, caplog):
    caplog.set_level(logging.DEBUG, logger="tvcat.alerts")
    channels = AlertChannels(webhook=webhook(webhook_receiver.url()), log=LogChannel(enabled=False))
    results = send_notification(channels, notification())

    assert [result.channel for result in results] == ["webhook"]
    assert len(webhook_receiver.requests) == 1
    assert not [record for record in caplog.records if record.name == "tvcat.alerts"]


def test_send_notification_all_channels(webhook_receiver, mail_server):
    channels = AlertChannels(webhook=webhook(webhook_receiver.url()), email=email(mail_server.port))
    results = send_notification(channels, notification())

    assert [result.channel for result in results] == ["webhook", "email", "log"]
    assert all(result.ok for result in results)
    assert len(webhook_receiver.requests) == 1
    assert len(mail_server.mails) == 1
