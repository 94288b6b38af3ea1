"""Slack's Socket Mode on 127.0.0.1: `apps.connections.open` hands out a WebSocket URL, envelopes go down it and
acks come back, and `disconnect` asks the client to come back on a new URL. Tests only (needs `websockets`)."""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, TypeVar

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from devkit.simulator import SimResponse
from devkit.slack_api import FakeSlack

T = TypeVar("T")

EnvelopeType = Literal["slash_commands", "events_api", "interactive"]

# What Slack sets on each kind: a slash command and a modal submission may be answered in the ack itself.
_ACCEPTS_RESPONSE_PAYLOAD = {"slash_commands": True, "events_api": False, "interactive": False}


@dataclass(frozen=True)
class Envelope:
    """One delivery: `connection` is the number of the connection it went down (1 for the first)."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    connection: int
    retry_attempt: int = 0
    retry_reason: str = ""


@dataclass(frozen=True)
class Ack:
    """The client's answer to an envelope; `payload` is what a slash command or modal answered in its ack."""

    envelope_id: str
    payload: dict[str, Any] | None
    connection: int


@dataclass
class _Link:
    number: int
    socket: ServerConnection
    open: bool = True
    told_to_reconnect: bool = False


@dataclass
class _State:
    tickets: set[str] = field(default_factory=set)
    links: list[_Link] = field(default_factory=list)
    envelopes: dict[str, Envelope] = field(default_factory=dict)
    acks: dict[str, Ack] = field(default_factory=dict)
    stray: list[str] = field(default_factory=list)  # messages from the client that are not acks


class FakeSocketMode:
    """Socket Mode for a `FakeSlack`: use `with FakeSocketMode(fake) as socket_mode:` (after the fake started).

    `apps.connections.open` (an `xapp-` token only) answers a `ws://` URL with a one-time ticket. Each connection
    gets `hello`; `deliver` sends an envelope down the newest connection not asked to reconnect (waiting for one
    while the client reconnects, as Slack holds events for an app with no connection); `ask_to_reconnect` sends
    `disconnect`; `drop` closes connections without a word, as a restarting Slack host does."""

    def __init__(self, fake: FakeSlack, *, timeout: float = 10.0) -> None:
        self.fake = fake
        self.timeout = timeout
        self._state = _State()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._numbers = itertools.count(1)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeSocketMode:
        if self._server is not None:
            return self
        server = serve(
            self._serve,
            "127.0.0.1",
            0,
            process_request=self._check_ticket,
            compression=None,
            logger=logging.getLogger("devkit.socket_mode.server"),
        )
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fake-socket-mode", daemon=True)
        self._thread.start()
        self.fake.serve_socket_mode(self._issue_url)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSocketMode is not started; call start() or use it as a context manager")
        return int(self._server.socket.getsockname()[1])

    # --- what a test does ---------------------------------------------------------------------

    def deliver(
        self,
        kind: EnvelopeType,
        payload: Mapping[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float | None = None,
    ) -> Envelope:
        """Send an envelope down the current connection (waiting for one if the client is reconnecting)."""
        envelope_id = str(uuid.uuid4())
        message: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": dict(payload),
            "accepts_response_payload": _ACCEPTS_RESPONSE_PAYLOAD[kind],
        }
        if kind == "events_api":
            message |= {"retry_attempt": retry_attempt, "retry_reason": retry_reason}
        text = json.dumps(message)
        while True:
            link = self._wait(self._current, timeout, "an open Socket Mode connection")
            envelope = Envelope(
                envelope_id=envelope_id,
                type=kind,
                payload=dict(payload),
                connection=link.number,
                retry_attempt=retry_attempt,
                retry_reason=retry_reason,
            )
            with self._lock:
                self._state.envelopes[envelope_id] = envelope
            try:
                link.socket.send(text)
                return envelope
            except ConnectionClosed:
                self._closed(link)  # it closed under us: Slack sends it down another connection

    def wait_ack(self, envelope_id: str, *, timeout: float | None = None) -> Ack:
        return self._wait(lambda: self._state.acks.get(envelope_id), timeout, f"the ack of {envelope_id}")

    def request(self, kind: EnvelopeType, payload: Mapping[str, Any], **options: Any) -> Ack:
        """`deliver`, then wait for its ack."""
        envelope = self.deliver(kind, payload, **options)
        return self.wait_ack(envelope.envelope_id, timeout=options.get("timeout"))

    def ask_to_reconnect(self, reason: str = "refresh_requested") -> None:
        """Send `disconnect` down every open connection; envelopes then wait for a connection opened after it."""
        with self._lock:
            links = [link for link in self._state.links if link.open]
            for link in links:
                link.told_to_reconnect = True
        for link in links:
            try:
                link.socket.send(
                    json.dumps({"type": "disconnect", "reason": reason, "debug_info": _DEBUG_INFO})
                )
            except ConnectionClosed:
                self._closed(link)

    def drop(self) -> None:
        """Close every open connection (1001, going away) without sending `disconnect` first."""
        with self._lock:
            links = [link for link in self._state.links if link.open]
        for link in links:
            link.socket.close(code=1001, reason="going away")

    def wait_for_connections(self, count: int, *, timeout: float | None = None) -> None:
        """Until `count` connections have been opened in all (each got `hello`) and one is open for envelopes."""
        self._wait(
            lambda: len(self._state.links) >= count and self._current() is not None,
            timeout,
            f"{count} Socket Mode connection(s)",
        )

    def connections(self) -> list[int]:
        """The numbers of the connections still open."""
        with self._lock:
            return [link.number for link in self._state.links if link.open]

    def connections_opened(self) -> int:
        with self._lock:
            return len(self._state.links)

    def acks(self) -> list[Ack]:
        with self._lock:
            return list(self._state.acks.values())

    def envelopes(self) -> list[Envelope]:
        with self._lock:
            return list(self._state.envelopes.values())

    # --- the server side ----------------------------------------------------------------------

    def _issue_url(self) -> str:
        ticket = secrets.token_hex(16)
        with self._lock:
            self._state.tickets.add(ticket)
        query = urllib.parse.urlencode({"ticket": ticket, "app_id": self.fake.app_id})
        return f"ws://127.0.0.1:{self.port}/link/?{query}"

    def _check_ticket(self, connection: ServerConnection, request: Request) -> Response | None:
        """A URL from `apps.connections.open` opens one connection; any other path or a used ticket is refused."""
        url = urllib.parse.urlsplit(request.path)
        ticket = urllib.parse.parse_qs(url.query).get("ticket", [""])[0]
        with self._lock:
            if url.path.rstrip("/") != "/link" or ticket not in self._state.tickets:
                return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid or used ticket\n")
            self._state.tickets.discard(ticket)
        return None

    def _serve(self, socket: ServerConnection) -> None:
        with self._lock:
            link = _Link(number=next(self._numbers), socket=socket)
            self._state.links.append(link)
            count = len([lk for lk in self._state.links if lk.open])
        hello = {
            "type": "hello",
            "num_connections": count,
            "debug_info": {**_DEBUG_INFO, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.fake.app_id},
        }
        try:
            socket.send(json.dumps(hello))
            with self._changed:
                self._changed.notify_all()
            for message in socket:
                self._receive(link, message if isinstance(message, str) else message.decode())
        except ConnectionClosed:
            pass
        finally:
            self._closed(link)

    def _receive(self, link: _Link, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        with self._changed:
            if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                payload = message.get("payload")
                self._state.acks[message["envelope_id"]] = Ack(
                    envelope_id=message["envelope_id"],
                    payload=payload if isinstance(payload, dict) else None,
                    connection=link.number,
                )
            else:
                self._state.stray.append(text)
            self._changed.notify_all()

    def _closed(self, link: _Link) -> None:
        with self._changed:
            link.open = False
            self._changed.notify_all()

    def _current(self) -> _Link | None:
        with self._lock:
            live = [link for link in self._state.links if link.open and not link.told_to_reconnect]
            return live[-1] if live else None

    def _wait(self, find: Callable[[], T | None], timeout: float | None, what: str) -> T:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._changed:
            while True:
                found = find()
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out waiting for {what}")
                self._changed.wait(timeout=min(left, 0.5))


_DEBUG_INFO = {"host": "applink-fake", "build_number": 1}


class SocketModeDelivery:
    """The simulator's people-actions as Socket Mode envelopes: `SlackSimulator(fake, delivery=...)`.

    An ack is answered as HTTP mode's 200 (its payload as the JSON body); an envelope no one acks raises
    TimeoutError, as an HTTP client's read would."""

    def __init__(self, socket_mode: FakeSocketMode, *, timeout: float = 10.0) -> None:
        self.socket_mode = socket_mode
        self.timeout = timeout

    def command(self, fields: Mapping[str, str]) -> SimResponse:
        return self._send("slash_commands", fields)

    def interaction(self, payload: Mapping[str, Any]) -> SimResponse:
        return self._send("interactive", payload)

    def event(self, envelope: Mapping[str, Any], *, retry_num: int | None) -> SimResponse:
        if retry_num is None:
            return self._send("events_api", envelope)
        return self._send("events_api", envelope, retry_attempt=retry_num, retry_reason="timeout")

    def _send(self, kind: EnvelopeType, payload: Mapping[str, Any], **retry: Any) -> SimResponse:
        ack = self.socket_mode.request(kind, payload, timeout=self.timeout, **retry)
        body = json.dumps(ack.payload) if ack.payload is not None else ""
        return SimResponse(status=200, headers={}, body=body, json=ack.payload)
