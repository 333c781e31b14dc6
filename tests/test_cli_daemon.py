"""`tvcat daemon` as a real subprocess: schedules, the queue, /metrics, /health, alerts and a clean stop.

The daemon runs a backup every two seconds (cron with a seconds field). The
test breaks the repository so backups fail, and receives the alert by
webhook (an HTTP server on 127.0.0.1) and by mail (aiosmtpd on 127.0.0.1).
"""

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "hook-token-5f1d9c"
PASSWORD = "smtp-password-77e2"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Hooks(ThreadingHTTPServer):
    """A webhook receiver that keeps every request body and its Authorization header."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.received: list[tuple[str, dict]] = []


class _HookHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.headers.get("Authorization", ""), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class Mailbox:
    """An aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"


@pytest.fixture
def hooks():
    server = Hooks()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


def wait_for(condition, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def query(repo: Path, sql: str, *parameters) -> list[tuple]:
    connection = sqlite3.connect(f"file:{repo / 'catalog.db'}?mode=ro", uri=True, timeout=10)
    try:
        return connection.execute(sql, parameters).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()


def samples(text: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def write_config(tmp_path: Path, hooks: Hooks, mailbox: Mailbox, metrics_port: int) -> Path:
    config = tmp_path / "tvcat.yaml"
    config.write_text(f"""
backup_config:
  backup_dir: {tmp_path / 'repo'}
  verification: {{verify_after_backup: false}}
sync_config:
  cache_path: {tmp_path / 'cache.db'}
  sync_interval: 3600
schedule_config:
  backup_schedules:
    often: {{cron: "* * * * * */2", type: incremental}}
  queue_poll_seconds: 0.5
  stop_grace_seconds: 10
monitoring_config:
  enabled: true
  metrics_port: {metrics_port}
  log_file: {tmp_path / 'logs' / 'tvcat.log'}
  alerts:
    enabled: true
    evaluation_interval_seconds: 0.5
    suppress_seconds: 3600
    channels:
      webhook: {{enabled: true, url: "http://127.0.0.1:{hooks.server_port}/hook", token: {TOKEN}, retries: 0}}
      email:
        enabled: true
        smtp_server: 127.0.0.1
        smtp_port: {mailbox.port}
        use_starttls: false
        recipients: [ops@example.test]
      log: {{enabled: true, level: ERROR}}
    rules:
      backup_failure:
        condition: "backup_failure_count > 0"
        severity: error
        message: "a backup failed"
""", encoding="utf-8")
    return config


class Site:
    """A test's directory with its configuration, and the tvcat commands run on it."""

    def __init__(self, tmp_path: Path, environment: dict[str, str], config: Path, metrics_port: int) -> None:
        self.path = tmp_path
        self.metrics_port = metrics_port
        self.repo = tmp_path / "repo"
        self.config = config
        self.environment = {**environment, "TVCAT_LANG": "en", "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
                            "XDG_CONFIG_HOME": str(tmp_path / "xdg-config")}

    def run(self, *arguments) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tvcat.cli.main", "--config", str(self.config), *arguments],
                              env=self.environment, cwd=self.path, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=120)

    def start_daemon(self) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "tvcat.cli.main", "--config", str(self.config), "daemon", "--verbose"],
            env=self.environment, cwd=self.path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )

    def queue_sample_sync(self) -> str:
        queued = self.run("sync", "--source", "sample", "--target", "cache", "--queue", "--json")
        assert queued.returncode == 0, queued.stderr
        return json.loads(queued.stdout)["task_id"]


@pytest.fixture
def site(tmp_path, clean_environ, hooks, mailbox, sample_import_arguments) -> Site:
    port = free_port()
    site = Site(tmp_path, clean_environ, write_config(tmp_path, hooks, mailbox, port), port)
    imported = site.run("import", *sample_import_arguments)
    assert imported.returncode == 0, imported.stderr
    return site


def edit_config(site: Site, old: str, new: str) -> None:
    text = site.config.read_text(encoding="utf-8")
    assert old in text
    site.config.write_text(text.replace(old, new), encoding="utf-8")


def stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


def test_daemon_runs_schedules_serves_metrics_alerts_and_stops_cleanly(site, hooks, mailbox):
    repo = site.repo
    daemon = site.start_daemon()
    try:
        # Scheduled backups commit, and /metrics and /health report them from the projections.
        wait_for(lambda: len(query(repo, "SELECT 1 FROM backups WHERE status = 'committed'")) >= 2,
                 what="two scheduled backups")
        base = f"http://127.0.0.1:{site.metrics_port}"
        metrics = samples(httpx.get(f"{base}/metrics", timeout=10).text)
        committed = query(repo, "SELECT count(*) FROM backups WHERE status = 'committed'")[0][0]
        scraped = sum(value for (name, labels), value in metrics.items()
                      if name == "tvcat_backups_total" and ("status", "committed") in labels)
        assert 2 <= scraped <= committed + 1
        assert any(name == "tvcat_series_last_bar_timestamp_seconds" for name, _ in metrics)
        health = httpx.get(f"{base}/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "healthy", health.text

        # A task queued by `tvcat sync --queue` is taken by the daemon.
        task_id = site.queue_sample_sync()
        wait_for(lambda: query(repo, "SELECT 1 FROM sync_tasks WHERE task_id = ? AND status = 'completed'",
                               task_id), what="the queued task to complete")

        # Break the object store: the next backups fail, and the first failure alerts once.
        (repo / "objects").rename(site.path / "objects.moved")
        (repo / "objects").write_text("not a directory", encoding="utf-8")
        wait_for(lambda: hooks.received and mailbox.messages, what="the webhook and the mail")
        wait_for(lambda: query(repo, "SELECT 1 FROM events WHERE kind = 'alert.suppressed'"),
                 what="a second failure to be suppressed")
        health = httpx.get(f"{base}/health", timeout=10)
        assert health.json()["status"] in ("degraded", "unhealthy")
    finally:
        code, stderr = stop(daemon)

    assert code == 0, stderr
    assert len(hooks.received) == 1 and len(mailbox.messages) == 1
    authorization, body = hooks.received[0]
    assert authorization == f"Bearer {TOKEN}"
    assert body["rule"] == "backup_failure" and body["status"] == "firing" and body["severity"] == "error"
    assert "a backup failed" in mailbox.messages[0]
    assert query(repo, "SELECT count(*) FROM events WHERE kind = 'alert.sent'")[0][0] == 1

    # The stop is recorded, nothing is left running, and the secret is nowhere.
    assert query(repo, "SELECT json_extract(payload, '$.reason') FROM events WHERE kind = 'daemon.stopped'") == [
        ("SIGTERM",)]
    assert query(repo, "SELECT count(*) FROM sync_tasks WHERE status IN ('running', 'queued')")[0][0] == 0
    log_text = (site.path / "logs" / "tvcat.log").read_text(encoding="utf-8")
    assert "daemon.started" in log_text and "alert.sent" in log_text and "backup.failed" in log_text
    payloads = " ".join(row[0] for row in query(repo, "SELECT payload FROM events"))
    for text in (payloads, log_text, stderr):
        assert TOKEN not in text and PASSWORD not in text


def test_stop_keeps_queued_tasks_for_the_next_start(site):
    # The first queue check runs at start; tasks queued later wait for the next check, an hour away.
    edit_config(site, "queue_poll_seconds: 0.5", "queue_poll_seconds: 3600")
    daemon = site.start_daemon()
    try:
        wait_for(lambda: query(site.repo, "SELECT 1 FROM events WHERE kind = 'daemon.started'"), what="the start")
        task_ids = [site.queue_sample_sync() for _ in range(2)]
    finally:
        code, stderr = stop(daemon)
    assert code == 0, stderr
    statuses = dict(query(site.repo, "SELECT task_id, status FROM sync_tasks"))
    assert [statuses[task_id] for task_id in task_ids] == ["queued", "queued"]

    # The next daemon takes them at start.
    daemon = site.start_daemon()
    try:
        wait_for(lambda: all(query(site.repo, "SELECT 1 FROM sync_tasks WHERE task_id = ? AND status = 'completed'",
                                   task_id) for task_id in task_ids), what="the kept tasks to complete")
    finally:
        code, stderr = stop(daemon)
    assert code == 0, stderr


def test_second_daemon_on_the_same_repository_is_refused(site):
    edit_config(site, "enabled: true\n  metrics_port", "enabled: false\n  metrics_port")
    daemon = site.start_daemon()
    try:
        wait_for(lambda: query(site.repo, "SELECT 1 FROM events WHERE kind = 'daemon.started'"), what="the start")
        second = site.run("daemon")
    finally:
        code, stderr = stop(daemon)
    assert second.returncode == 1
    assert "another tvcat daemon runs on the repository" in second.stderr
    assert str(daemon.pid) in second.stderr
    assert code == 0, stderr


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers, so a websocket handshake waits."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen()
        self.port = self.socket.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        self.socket.close()
        for connection in self.connections:
            connection.close()


def test_task_running_at_stop_is_interrupted_and_runs_again_at_next_start(site):
    silent = SilentServer()
    edit_config(site, "sync_config:\n", f"sync_config:\n  tradingview: {{url: 'ws://127.0.0.1:{silent.port}/'}}\n")
    edit_config(site, "stop_grace_seconds: 10", "stop_grace_seconds: 0.5")
    queued = site.run("sync", "--source", "tradingview", "--target", "cache", "--symbols", "BINANCE:BTCUSDT",
                      "--timeframes", "60", "--queue", "--json")
    task_id = json.loads(queued.stdout)["task_id"]
    try:
        daemon = site.start_daemon()
        try:
            wait_for(lambda: query(site.repo, "SELECT 1 FROM sync_tasks WHERE task_id = ? AND status = 'running'",
                                   task_id), what="the task to start")
        finally:
            code, stderr = stop(daemon)
        assert code == 0, stderr
        assert query(site.repo, "SELECT status FROM sync_tasks WHERE task_id = ?", task_id) == [("interrupted",)]
        [(stopped,)] = query(site.repo, "SELECT payload FROM events WHERE kind = 'daemon.stopped'")
        assert json.loads(stopped)["interrupted_tasks"] == [task_id]

        daemon = site.start_daemon()
        try:
            wait_for(lambda: query(site.repo, "SELECT 1 FROM events WHERE kind = 'sync.requeued' AND subject = ?",
                                   task_id), what="the task to be queued again")
            wait_for(lambda: query(site.repo, "SELECT attempts FROM sync_tasks WHERE task_id = ? AND attempts >= 2",
                                   task_id), what="the second attempt")
        finally:
            code, stderr = stop(daemon)
        assert code == 0, stderr
        [(started,)] = query(site.repo, "SELECT payload FROM events WHERE kind = 'daemon.started' ORDER BY seq DESC "
                                        "LIMIT 1")
        assert json.loads(started)["requeued_tasks"] == [task_id]
    finally:
        silent.close()
