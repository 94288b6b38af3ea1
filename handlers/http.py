"""HTTP mode: `POST /slack/events` into Bolt, `GET /healthz`, on a small threaded WSGI server."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.webhooks import InvalidWebhook, Receivers, WebhookEvent, WebhookKeysUnavailable

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
WEBHOOK_PREFIX = "/webhooks/"


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)


MAX_WEBHOOK_BYTES = 1024 * 1024


def make_wsgi_app(
    app: App,
    *,
    health: Callable[[], dict[str, Any]],
    webhooks: Receivers | None = None,
    on_job_event: Callable[[WebhookEvent], object] | None = None,
    metrics: Callable[[], tuple[bytes, str]] | None = None,
) -> WSGIApplication:
    slack = SlackRequestHandler(app, path=SLACK_PATH)

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" and method in ("GET", "HEAD"):
            report = health()
            body = json.dumps(report).encode()
            status = "200 OK" if report.get("ok") else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/metrics" and method in ("GET", "HEAD") and metrics is not None:
            body, content_type = metrics()
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
            return [body]
        if path == SLACK_PATH:
            if method != "POST":
                return _plain(start_response, "405 Method Not Allowed", "POST only")
            return slack(environ, start_response)
        if path.startswith(WEBHOOK_PREFIX) and webhooks is not None and on_job_event is not None:
            if method != "POST":
                return _plain(start_response, "405 Method Not Allowed", "POST only")
            return _webhook(environ, start_response, path[len(WEBHOOK_PREFIX) :], webhooks, on_job_event)
        return _plain(start_response, "404 Not Found", "Not Found")

    return application


def _webhook(
    environ: WSGIEnvironment,
    start_response: StartResponse,
    provider: str,
    webhooks: Receivers,
    on_job_event: Callable[[WebhookEvent], object],
) -> list[bytes]:
    """A provider's callback: verify it, then poll that job now. Answer fast; the sweep does the work."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_WEBHOOK_BYTES:
        return _plain(start_response, "413 Payload Too Large", "too large")
    body = environ["wsgi.input"].read(length) if length else b""
    headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
    try:
        event = webhooks.receive(provider, headers=headers, body=body)
    except KeyError:
        return _plain(start_response, "404 Not Found", f"no webhook for {provider[:32]} is configured")
    except WebhookKeysUnavailable:
        return _plain(start_response, "503 Service Unavailable", "cannot check signatures right now")
    except InvalidWebhook as err:
        log.warning("rejected a %s webhook: %s", provider[:32], err.reason)
        return _plain(start_response, "401 Unauthorized", "invalid signature")
    if event.kind != "other":
        on_job_event(event)
    return _plain(start_response, "200 OK", "ok")


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


class HttpServer:
    """A threaded WSGI server in a background thread; `port=0` picks a free port."""

    def __init__(self, application: WSGIApplication, *, host: str = "0.0.0.0", port: int = 3000) -> None:
        self._server = make_server(
            host, port, application, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        # A short poll interval: `stop()` waits for the serving loop to notice, and tests start and stop many.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{self.port}"

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
