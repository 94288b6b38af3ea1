"""The HTTP edge through the real server on real sockets: Slack's bodies parsed right whatever people type,
malformed and unsigned requests refused with 4xx (never 500), forged bodies kept out of the logs, oversized and
stalled bodies refused without holding a thread, and a graceful stop that finishes what it received."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator

import pytest
from conftest import CHANNEL, OWNER, SECRET, Bot
from test_slack_loop import draft

from devkit.simulator import SlackSimulator
from handlers import blocks
from handlers.http import HttpLimits, HttpServer
from handlers.inbound import Refusal, parse_body

MARKER = "FORGED-7f3a9c"


def sign(body: bytes, *, timestamp: str | None = None, secret: str = SECRET) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


def raw_request(
    port: int, body: bytes, headers: dict[str, str], *, path: str = "/slack/events", send: bytes | None = None
) -> bytes:
    """The bytes of one HTTP/1.1 POST; `send` replaces the body actually written (to cut it short)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    headers = {"Content-Length": str(len(body)), **headers}
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body if send is None else send)


def exchange(port: int, data: bytes, *, timeout: float = 10.0) -> tuple[int, str]:
    """Send `data`, read the answer until the server closes; the status and the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode("utf-8", "replace")


def post(sora: Bot, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    return exchange(sora.server.port, raw_request(sora.server.port, body, headers))


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


def command_body(sora: Bot, text: str) -> bytes:
    fields = {
        "team_id": sora.sim.team_id,
        "channel_id": CHANNEL,
        "user_id": OWNER,
        "command": "/sora",
        "text": text,
        "response_url": sora.fake.new_response_url(CHANNEL, OWNER),
        "trigger_id": "1.2.abc",
        "api_app_id": sora.sim.api_app_id,
    }
    return urllib.parse.urlencode(fields).encode()


# --- Slack's bodies, parsed right --------------------------------------------------------------------


@pytest.mark.parametrize(
    "idea",
    [
        "a payload drone drops a parcel onto a rooftop garden, aerial tracking shot",
        'payload={"type":"block_actions"} & payload=x, a glitch-art title card',
        "{ a bracketed idea } that starts like JSON, macro shot of a snail",
    ],
)
def test_a_slash_command_that_mentions_payload_gets_its_draft(sora: Bot, idea: str) -> None:
    card = draft(sora, idea)
    assert "payload" in json.dumps(card.blocks) or "bracketed" in json.dumps(card.blocks)


def test_a_button_click_on_a_payload_draft_still_reaches_its_listener(sora: Bot) -> None:
    card = draft(sora, "a payload drone drops a parcel onto a rooftop garden")
    assert sora.sim.click_button(OWNER, message=card, action_id=blocks.GENERATE).status == 200
    sora.fake.wait_for(
        lambda: next((m for m in sora.fake.messages(CHANNEL) if m.text.startswith("Round:")), None),
        what="the round message",
    )


def test_slack_bodies_parse_by_their_content_type() -> None:
    command = urllib.parse.urlencode({"command": "/sora", "text": "draft a payload drone"})
    assert parse_body(command, "application/x-www-form-urlencoded") == {
        "command": "/sora",
        "text": "draft a payload drone",
    }
    action = {"type": "block_actions", "actions": [{"action_id": "draft_generate", "value": "payload"}]}
    click = "payload=" + urllib.parse.quote(json.dumps(action))
    assert parse_body(click, "application/x-www-form-urlencoded; charset=utf-8") == action
    assert parse_body("payload=" + urllib.parse.quote('{"type": "block_actions"}'), "") == Refusal(
        400, "interaction payload: block_actions without actions"
    )
    assert parse_body('{"type": "url_verification"}', "application/json") == {"type": "url_verification"}
    assert parse_body("payload=%7Bnot+json", "application/x-www-form-urlencoded") == Refusal(
        400, "interaction payload is not JSON"
    )
    assert parse_body("[1, 2]", "application/json") == Refusal(400, "JSON body is not a JSON object")
    assert parse_body("text=%FF%FE", "application/x-www-form-urlencoded") == Refusal(400, "unreadable form")


# --- malformed, unsigned, forged -------------------------------------------------------------------


def cases(sora: Bot) -> Iterable[tuple[str, int, bytes, dict[str, str]]]:
    forged = command_body(sora, f"draft {MARKER} a forged request")
    now = int(time.time())
    yield "no signature at all", 401, forged, FORM
    yield "a wrong signature", 401, forged, {**FORM, **sign(forged, secret="not-the-secret")}
    yield (
        "a non-integer timestamp",
        401,
        forged,
        {**FORM, "X-Slack-Request-Timestamp": "12abc", "X-Slack-Signature": "v0=00"},
    )
    yield "non-ASCII digits", 401, forged, {**FORM, **sign(forged, timestamp="١٧٠٠٠٠٠٠٠٠")}
    yield "a stale timestamp", 401, forged, {**FORM, **sign(forged, timestamp=str(now - 301))}
    # Read the clock as it is sent: `now` above was read before the earlier cases, and a loaded machine takes
    # seconds over them, bringing `now + 301` back inside the five minutes.
    future = int(time.time()) + 302
    yield "a timestamp from the future", 401, forged, {**FORM, **sign(forged, timestamp=str(future))}
    yield "a body that is not the one signed", 401, forged, {**FORM, **sign(forged + b"x")}
    bad_utf8 = b"command=%2Fsora&text=" + MARKER.encode() + b"\xff\xfe"
    yield "signed invalid UTF-8", 400, bad_utf8, {**FORM, **sign(bad_utf8)}
    for payload in (b"payload=not-json-" + MARKER.encode(), b"payload=%5B1%2C2%5D", b"payload="):
        yield f"a signed {payload[:20]!r}", 400, payload, {**FORM, **sign(payload)}
    for body in (b"{" + MARKER.encode(), b"[]", b'"a string"', b'{"type": "event_callback", "event": "x"}'):
        yield f"signed JSON {body[:20]!r}", 400, body, {**JSON, **sign(body)}
    form_in_pct = b"text=%E0%A4" + MARKER.encode()
    yield "a signed form with a broken escape", 400, form_in_pct, {**FORM, **sign(form_in_pct)}
    yield "a signed body of another type", 415, b"hello", {"Content-Type": "text/plain", **sign(b"hello")}


def test_malformed_and_unsigned_requests_get_4xx_and_forged_bodies_never_reach_the_logs(
    sora: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Bolt logs a refused body here; were anything forged to reach Bolt, it would show.
    caplog.set_level(logging.DEBUG, logger="slack_bolt")
    caplog.set_level(logging.DEBUG, logger="slack_bolt.middleware.request_verification")
    for what, expected, body, headers in cases(sora):
        status, text = post(sora, body, headers)
        assert status == expected, f"{what}: {status} {text}"
        assert "Traceback" not in text and MARKER not in text, what
    assert MARKER not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert not sora.fake.ephemerals(CHANNEL, OWNER), "nothing refused was acted on"


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "12 34"])
def test_an_unreadable_content_length_is_a_bad_request(sora: Bot, length: str) -> None:
    body = command_body(sora, "draft a cat")
    data = raw_request(sora.server.port, body, {**FORM, **sign(body), "Content-Length": length})
    assert exchange(sora.server.port, data)[0] == 400


def test_a_body_larger_than_slack_ever_sends_is_refused_413_before_it_is_read(sora: Bot) -> None:
    body = b"x" * 20_000_000
    headers = {**FORM, **sign(body)}
    # Only the first 64 kB is ever sent: the answer must come from the Content-Length alone.
    data = raw_request(sora.server.port, body, headers, send=body[:65536])
    status, text = exchange(sora.server.port, data)
    assert status == 413, text


def test_a_signed_request_still_answers_after_the_refusals(sora: Bot) -> None:
    for _, _, body, headers in cases(sora):
        post(sora, body, headers)
    draft(sora, "a lighthouse keeper feeds a cat at dawn")


# --- the production server: stalled bodies, keep-alive, graceful stop ------------------------------


@pytest.fixture
def quick(sora: Bot) -> Iterator[tuple[HttpServer, SlackSimulator]]:
    """The same app on a server with two workers and a one-second read timeout."""
    server = HttpServer(
        sora.runtime.wsgi(), host="127.0.0.1", port=0, limits=HttpLimits(threads=2, timeout_seconds=1)
    ).start()
    yield server, SlackSimulator(sora.fake, app_url=server.url, signing_secret=SECRET)
    server.stop()


def waitress_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("waitress-"))


def test_stalled_bodies_hold_no_worker_and_are_dropped_after_the_read_timeout(
    sora: Bot, quick: tuple[HttpServer, SlackSimulator]
) -> None:
    server, sim = quick
    workers = waitress_threads()
    stalled = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        body = command_body(sora, "draft a cat")
        sock.sendall(raw_request(server.port, body, {**FORM, **sign(body)}, send=body[:10]))
        stalled.append(sock)
    try:
        seen = len(sora.fake.ephemerals(CHANNEL, OWNER))
        assert sim.command(OWNER, CHANNEL, "draft a lighthouse at dusk, slow push-in").status == 200
        sora.fake.wait_for(lambda: len(sora.fake.ephemerals(CHANNEL, OWNER)) > seen, what="the draft card")
        assert waitress_threads() == workers, "stalled clients started no threads"
        for sock in stalled:
            with contextlib.suppress(ConnectionResetError):  # closed either way
                assert sock.recv(1024) == b"", "a stalled request is closed, unanswered"
    finally:
        for sock in stalled:
            sock.close()
    assert not sora.fake.ephemerals(CHANNEL, OWNER)[seen + 1 :], "no stalled command was acted on"


def test_keep_alive_serves_several_requests_on_one_connection(sora: Bot) -> None:
    with socket.create_connection(("127.0.0.1", sora.server.port), timeout=10) as sock:
        stream = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{sora.server.port}\r\n\r\n".encode())
            assert stream.readline().startswith(b"HTTP/1.1 200")
            length = 0
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            assert json.loads(stream.read(length))["ok"] is True


def test_stop_finishes_a_request_in_flight_then_refuses_new_connections() -> None:
    entered, release = threading.Event(), threading.Event()

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        if environ["PATH_INFO"] == "/slow":
            entered.set()
            release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "8")])
        return [b"finished"]

    server = HttpServer(app, host="127.0.0.1", port=0).start()
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    idle.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
    first = b""
    while not first.endswith(b"finished"):
        first += idle.recv(4096)
    assert first.startswith(b"HTTP/1.1 200"), "a keep-alive connection, now idle"
    answers: list[tuple[int, str]] = []
    client = threading.Thread(
        target=lambda: answers.append(exchange(server.port, raw_request(server.port, b"", {}, path="/slow")))
    )
    client.start()
    assert entered.wait(10)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    while True:  # the listening socket closes first, while the request in flight is still being answered
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        except OSError:
            break
        time.sleep(0.01)
    assert idle.recv(1) == b"", "an idle connection is closed at once"
    assert stopper.is_alive() and not answers
    release.set()
    stopper.join(10)
    client.join(10)
    assert not stopper.is_alive()
    assert answers == [(200, "finished")]
    idle.close()
