"""The monitoring HTTP server: GET /metrics for Prometheus and GET /health for load balancers and people.

It runs in a background thread of the daemon, one thread per request, and
reads everything at request time (see metrics.py and health.py), so it
keeps no state of its own besides the address it listens on.
"""

import json
import logging
import socket
import socketserver
import sys
import threading
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from ...errors import TvcatError
from ...i18n import N_
from ..config import Config
from ..daemon.state import DaemonState
from .health import UNHEALTHY, assess_health
from .metrics import create_registry

logger = logging.getLogger(__name__)

# A client that sends nothing for this long loses its connection, so idle clients cannot hold every thread.
REQUEST_TIMEOUT_SECONDS = 10.0
# How often the serving thread checks for a stop request, which is also the longest wait in stop().
POLL_INTERVAL_SECONDS = 0.2

HEALTH_CONTENT_TYPE = "application/json; charset=utf-8"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"


class MonitoringAddressUnavailable(TvcatError):
    """The monitoring server cannot listen on the configured host and port."""

    template = N_(
        "cannot serve metrics on {host} port {port}: {reason}; set another "
        "monitoring_config.metrics_host or monitoring_config.metrics_port in the configuration, "
        "or stop the program that uses the port"
    )


class MonitoringServer:
    """A running monitoring server: its address, and `stop` to close it.

    `port` is the port actually bound, which differs from the requested one
    when that was 0. `stop` may be called more than once. The server is
    also a context manager that stops it on exit.
    """

    def __init__(self, server: "_MonitoringHTTPServer", thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.host: str = server.server_address[0]
        self.port: int = server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop serving, close the socket and wait for the serving thread to end."""
        if not self._thread.is_alive():
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        logger.info("monitoring server stopped url=%s", self.url)

    def __enter__(self) -> "MonitoringServer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_monitoring_server(host: str, port: int, repository_path: Path | str, cache_path: Path | str,
                            config: Config, state: DaemonState | None) -> MonitoringServer:
    """Listen on `host`:`port` (0 picks a free port) and serve /metrics and /health in a daemon thread.

    Raises MonitoringAddressUnavailable when the address cannot be bound,
    for example when the port is in use or needs privileges.
    """
    registry = create_registry(repository_path, cache_path, config, state)
    try:
        server = _MonitoringHTTPServer((host, port), _MonitoringRequestHandler)
    except OSError as error:
        raise MonitoringAddressUnavailable(host=host, port=port, reason=error.strerror or str(error)) from error
    server.registry = registry
    server.health_inputs = (Path(repository_path), Path(cache_path), config, state)

    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL_SECONDS},
                              name="tvcat-monitoring", daemon=True)
    thread.start()
    handle = MonitoringServer(server, thread)
    logger.info("monitoring server listening url=%s", handle.url)
    return handle


class _MonitoringHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler) -> None:
        # An IPv6 literal such as ::1 needs an IPv6 socket. Host names and IPv4 addresses use IPv4.
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's fully qualified name, which can wait on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    def handle_error(self, request, client_address) -> None:
        # socketserver prints the traceback to stderr, but it belongs in the daemon's log.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            logger.debug("monitoring client %s went away: %s", client_address[0], error)
            return
        logger.exception("monitoring request from %s failed", client_address[0])


class _MonitoringRequestHandler(BaseHTTPRequestHandler):
    server: _MonitoringHTTPServer
    server_version = "tvcat"
    timeout = REQUEST_TIMEOUT_SECONDS

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path not in ("/metrics", "/health"):
            self._send(HTTPStatus.NOT_FOUND, TEXT_CONTENT_TYPE, b"not found: use /metrics or /health\n")
            return
        try:
            if path == "/metrics":
                self._send_metrics()
            else:
                self._send_health()
        except ConnectionError:
            raise
        except Exception:
            # Catalog errors become an unhealthy report, so an exception here is a bug. Log it and return 500.
            logger.exception("monitoring request failed path=%s", path)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, TEXT_CONTENT_TYPE, b"internal error: see the daemon log\n")

    def _send_metrics(self) -> None:
        body = generate_latest(self.server.registry)
        self._send(HTTPStatus.OK, CONTENT_TYPE_LATEST, body)

    def _send_health(self) -> None:
        repository_path, cache_path, config, state = self.server.health_inputs
        health = assess_health(repository_path, cache_path, config, state, now=datetime.now(timezone.utc))
        status = HTTPStatus.SERVICE_UNAVAILABLE if health["status"] == UNHEALTHY else HTTPStatus.OK
        body = json.dumps(health, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
        self._send(status, HEALTH_CONTENT_TYPE, body)

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        # BaseHTTPRequestHandler writes every request to stderr. Send it to the log at DEBUG instead.
        logger.debug("monitoring %s " + format, self.address_string(), *args)
