"""HTTP mode: `POST /slack/events` into Bolt, `POST /webhooks/<provider>`, `GET /healthz`, served by waitress.

Waitress reads every request on one asynchronous loop and hands a worker thread only a request it has whole,
so a client that stalls mid-body holds a socket, never a thread, and is dropped after the read timeout; a body
above the cap is answered 413 from its Content-Length, unread.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_bolt.adapter.wsgi.http_response import WsgiHttpResponse
from waitress import wasyncore
from waitress.server import BaseWSGIServer, create_server

from bot.webhooks import InvalidWebhook, Receivers, WebhookEvent, WebhookKeysUnavailable
from handlers.inbound import MAX_SLACK_BODY_BYTES, Refusal, headers_of, read_body, read_slack_request

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
WEBHOOK_PREFIX = "/webhooks/"
MAX_WEBHOOK_BYTES = 1024 * 1024


def make_wsgi_app(
    app: App,
    *,
    signing_secret: str,
    max_body_bytes: int = MAX_SLACK_BODY_BYTES,
    health: Callable[[], dict[str, Any]],
    webhooks: Receivers | None = None,
    on_job_event: Callable[[WebhookEvent], object] | None = None,
) -> WSGIApplication:
    """Raises ValueError without a signing secret: HTTP mode verifies every request."""
    if not signing_secret.strip():
        raise ValueError("HTTP mode needs the Slack signing secret")

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" and method in ("GET", "HEAD"):
            report = health()
            body = json.dumps(report).encode()
            status = "200 OK" if report.get("ok") else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if path == SLACK_PATH:
            if method != "POST":
                return _plain(start_response, 405, "POST only")
            return _slack(environ, start_response, app, signing_secret=signing_secret, limit=max_body_bytes)
        if path.startswith(WEBHOOK_PREFIX) and webhooks is not None and on_job_event is not None:
            if method != "POST":
                return _plain(start_response, 405, "POST only")
            return _webhook(environ, start_response, path[len(WEBHOOK_PREFIX) :], webhooks, on_job_event)
        return _plain(start_response, 404, "Not Found")

    return application


def _slack(
    environ: WSGIEnvironment, start_response: StartResponse, app: App, *, signing_secret: str, limit: int
) -> list[bytes]:
    """Only a signed, readable request reaches Bolt; a refusal is logged by its reason, never with its body."""
    request = read_slack_request(environ, signing_secret=signing_secret, limit=limit)
    if isinstance(request, Refusal):
        log.info("refused a request to %s from %s: %s", SLACK_PATH, _peer(environ), request.reason)
        return _plain(start_response, request.status, request.reason)
    try:
        answer = app.dispatch(request)
    except (
        Exception
    ):  # Bolt handles listener errors itself; this is a fault of ours, answered without details
        log.exception("a signed Slack request could not be dispatched")
        return _plain(start_response, 500, "internal error")
    response = WsgiHttpResponse(status=answer.status, headers=answer.headers, body=answer.body)
    start_response(response.status, response.get_headers())
    return list(response.get_body())


def _webhook(
    environ: WSGIEnvironment,
    start_response: StartResponse,
    provider: str,
    webhooks: Receivers,
    on_job_event: Callable[[WebhookEvent], object],
) -> list[bytes]:
    """A provider's callback: verify it, then poll that job now. Answer fast; the sweep does the work."""
    body = read_body(environ, limit=MAX_WEBHOOK_BYTES)
    if isinstance(body, Refusal):
        return _plain(start_response, body.status, body.reason)
    try:
        event = webhooks.receive(provider, headers=headers_of(environ), body=body)
    except KeyError:
        return _plain(start_response, 404, f"no webhook for {provider[:32]} is configured")
    except WebhookKeysUnavailable:
        return _plain(start_response, 503, "cannot check signatures right now")
    except InvalidWebhook as err:
        log.warning("rejected a %s webhook: %s", provider[:32], err.reason)
        return _plain(start_response, 401, "invalid signature")
    if event.kind != "other":
        on_job_event(event)
    return _plain(start_response, 200, "ok")


def _plain(start_response: StartResponse, status: int, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _peer(environ: WSGIEnvironment) -> str:
    return str(environ.get("REMOTE_ADDR") or "?")


@dataclass(frozen=True)
class HttpLimits:
    """What the server allows a client; `sora-bot serve` reads them from SORA_BOT_HTTP_* settings."""

    threads: int = 8  # requests handled at once (a slash command holds one until its ack, at most 3 s)
    timeout_seconds: int = (
        15  # a connection that sends nothing this long (stalled body, idle keep-alive) closes
    )
    max_body_bytes: int = MAX_SLACK_BODY_BYTES  # a larger Content-Length is answered 413, unread
    connection_limit: int = 500  # open connections; beyond it new ones wait in the listen backlog
    backlog: int = 1024  # the kernel's queue of connections not yet accepted (capped by somaxconn)
    shutdown_seconds: float = 10.0  # how long `stop()` lets requests already received finish


class HttpServer:
    """Waitress in a background thread of this process; `port=0` picks a free port.

    `stop()` closes the listening socket at once, lets requests already received finish (up to
    `shutdown_seconds`), drops idle and half-sent connections, and returns."""

    def __init__(
        self,
        application: WSGIApplication,
        *,
        host: str = "0.0.0.0",
        port: int = 3000,
        limits: HttpLimits | None = None,
    ) -> None:
        self.limits = limits = limits or HttpLimits()
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
        except OSError:
            listener.close()
            raise
        self._map: dict[int, Any] = {}
        server = create_server(
            application,
            map=self._map,
            sockets=[listener],
            threads=limits.threads,
            backlog=limits.backlog,
            connection_limit=limits.connection_limit,
            channel_timeout=limits.timeout_seconds,
            # How often stalled connections are looked for: a fraction of the timeout, so one is dropped soon after.
            cleanup_interval=max(1, limits.timeout_seconds // 4),
            max_request_body_size=limits.max_body_bytes,
            max_request_header_size=64 * 1024,
            asyncore_use_poll=True,  # select() cannot watch more than 1024 sockets
            ident="sora-bot",
        )
        assert isinstance(server, BaseWSGIServer)
        self._server = server
        self._host = str(address[0])
        self._port = int(server.effective_port)
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._stopped = False

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(self._host, self._host)
        return f"http://{host}:{self.port}"

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def _run(self) -> None:
        # The loop ends when `stop()` has closed every socket in the map.
        wasyncore.loop(timeout=1.0, map=self._map, use_poll=True)

    def stop(self) -> None:
        """Finish what was received, then close everything. Safe to call twice, and before `start()`."""
        if self._stopped:
            return
        self._stopped = True
        if not self._thread.is_alive():
            wasyncore.close_all(self._map)
            self._server.task_dispatcher.shutdown(timeout=1)
            return
        self._in_loop(self._stop_accepting)
        deadline = time.monotonic() + self.limits.shutdown_seconds
        while self._busy() and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._busy():
            log.warning("stopping with requests still in flight after %ss", self.limits.shutdown_seconds)
        self._in_loop(lambda: wasyncore.close_all(self._map))
        self._thread.join(timeout=5)
        self._server.task_dispatcher.shutdown(timeout=1)

    def _in_loop(self, thunk: Callable[[], object]) -> None:
        """Run `thunk` on the server's loop thread (waitress's channels are not thread-safe) and wait for it."""
        done = threading.Event()

        def run() -> None:
            try:
                thunk()
            finally:
                done.set()

        self._server.trigger.pull_trigger(run)
        done.wait(timeout=5)

    def _stop_accepting(self) -> None:
        wasyncore.dispatcher.close(self._server)  # the listening socket only: the trigger stays
        for channel in list(self._server.active_channels.values()):
            if not channel.requests and not channel.total_outbufs_len:
                channel.will_close = True  # idle keep-alive or still sending its request: nothing to finish

    def _busy(self) -> bool:
        """A request received whole is being handled, or its answer is still being written."""
        return any(
            channel.requests or channel.total_outbufs_len
            for channel in list(self._server.active_channels.values())
        )
