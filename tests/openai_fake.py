"""A local fake of OpenAI's text endpoints (responses, chat completions, moderations, image generations).

With `responses=False` it is a server that only speaks Chat Completions (Ollama, vLLM, LM Studio): the
Responses route answers as those servers do, 404 with a plain-text body (or `missing_status`).
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)

DEFAULT_DRAFT: Mapping[str, object] = {
    "subject": "A small delivery robot",
    "action": "rolls through a rain-soaked neon alley at night",
    "camera": "slow dolly-in at robot height",
    "environment": "puddles reflecting pink signs",
    "finish": "shallow depth of field, soft film grain",
    "intent": "8-second product teaser, 16:9",
    "beats": [],
}


def tiny_png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (255, 64, 160)) -> bytes:
    """A valid RGB PNG, built by hand so the fake needs nothing beyond the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class Request:
    """One request the fake received, and the status it answered with."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    status: int


@dataclass(frozen=True)
class _Fault:
    status: int
    retry_after: float | None
    body: Mapping[str, Any] | None


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    headers: Mapping[str, str]


def _path(path: str) -> str:
    """ "responses", "/responses" and "/v1/responses" all name the same endpoint."""
    path = "/" + path.lstrip("/")
    return path if path.startswith("/v1/") else "/v1" + path


class FakeOpenAI:
    """Serves `/v1/responses`, `/v1/chat/completions`, `/v1/moderations`, `/v1/images/generations` on
    127.0.0.1 with a free port.

    Use as a context manager and point the real SDK at it: `OpenAI(api_key="sk-test", base_url=fake.base_url)`.
    """

    def __init__(
        self,
        *,
        draft: Mapping[str, object] | str | None = None,
        responses: bool = True,
        missing_status: int = 404,
    ) -> None:
        self._responses = responses
        self._missing_status = missing_status
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._draft: Mapping[str, object] | str = DEFAULT_DRAFT if draft is None else draft
        self._flagged: tuple[str, ...] = ()
        self._faults: dict[str, deque[_Fault]] = {}
        self._delays: dict[str, deque[float]] = {}
        self._refusals: deque[str] = deque()
        self._requests: list[Request] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai"
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        # Wake delayed handlers first, so shutting down does not wait out their delays.
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not started; use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    # --- scripting ---------------------------------------------------------------------------------

    def set_draft(self, draft: Mapping[str, object] | str) -> None:
        """What `/v1/responses` and `/v1/chat/completions` answer: a mapping is sent as JSON text; a string
        is sent as is (to break it)."""
        with self._lock:
            self._draft = draft

    def set_moderation(self, flagged: Iterable[str] = ()) -> None:
        """The categories `/v1/moderations` flags from now on (none: not flagged)."""
        with self._lock:
            self._flagged = tuple(flagged)

    def fail_next(
        self,
        path: str,
        status: int,
        *,
        retry_after: float | None = None,
        body: Mapping[str, Any] | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` requests to `path` answer `status` with OpenAI's error shape (or `body`)."""
        with self._lock:
            queue = self._faults.setdefault(_path(path), deque())
            queue.extend(_Fault(status, retry_after, body) for _ in range(times))

    def delay_next(self, path: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` requests to `path` wait `seconds` before answering (to make clients time out)."""
        with self._lock:
            self._delays.setdefault(_path(path), deque()).extend([seconds] * times)

    def refuse_next(self, message: str = "I'm sorry, but I can't help with that.") -> None:
        """The next draft answer is a refusal (a content item, or the chat message's `refusal`) instead of text."""
        with self._lock:
            self._refusals.append(message)

    def requests(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == _path(path)]

    # --- serving -----------------------------------------------------------------------------------

    def _handle(self, method: str, path: str, headers: Mapping[str, str], raw: bytes) -> _Reply | None:
        route = path.split("?", 1)[0]
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            delays = self._delays.get(route)
            delay = delays.popleft() if delays else 0.0
        if delay and self._stopping.wait(delay):
            return None
        with self._lock:
            faults = self._faults.get(route)
            fault = faults.popleft() if faults else None
            reply = self._fault(fault) if fault else self._answer(method, route, body)
            self._requests.append(Request(method, route, dict(headers), body, reply.status))
        return reply

    def _answer(self, method: str, route: str, body: Any) -> _Reply:
        if method == "POST" and route == "/v1/responses":
            if not self._responses:
                # Ollama's answer for a route it lacks; vLLM's and LM Studio's differ only in the body.
                return _Reply(self._missing_status, b"404 page not found", {"Content-Type": "text/plain"})
            return _json(200, self._response(body))
        if method == "POST" and route == "/v1/chat/completions":
            return _json(200, self._chat_completion(body))
        if method == "POST" and route == "/v1/moderations":
            return _json(200, self._moderation(body))
        if method == "POST" and route == "/v1/images/generations":
            count = int(body.get("n") or 1) if isinstance(body, dict) else 1
            image = base64.b64encode(tiny_png()).decode("ascii")
            return _json(200, {"created": int(time.time()), "data": [{"b64_json": image}] * count})
        return _json(404, _error(f"Unknown request URL: {method} {route}", "invalid_request_error"))

    def _response(self, body: Any) -> dict[str, Any]:
        model = body.get("model", "gpt-test") if isinstance(body, dict) else "gpt-test"
        if self._refusals:
            content: dict[str, Any] = {"type": "refusal", "refusal": self._refusals.popleft()}
        else:
            text = self._draft if isinstance(self._draft, str) else json.dumps(self._draft)
            content = {"type": "output_text", "text": text, "annotations": []}
        return {
            "id": f"resp_{uuid.uuid4().hex}",
            "object": "response",
            "created_at": int(time.time()),
            "model": model,
            "status": "completed",
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "metadata": {},
            "temperature": None,
            "top_p": None,
            "output": [
                {
                    "type": "message",
                    "id": f"msg_{uuid.uuid4().hex}",
                    "role": "assistant",
                    "status": "completed",
                    "content": [content],
                }
            ],
            "parallel_tool_calls": False,
            "tool_choice": "auto",
            "tools": [],
        }

    def _chat_completion(self, body: Any) -> dict[str, Any]:
        model = body.get("model", "gpt-test") if isinstance(body, dict) else "gpt-test"
        if self._refusals:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": None,
                "refusal": self._refusals.popleft(),
            }
        else:
            text = self._draft if isinstance(self._draft, str) else json.dumps(self._draft)
            message = {"role": "assistant", "content": text, "refusal": None}
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
        }

    def _moderation(self, body: Any) -> dict[str, Any]:
        model = (
            body.get("model", "omni-moderation-latest")
            if isinstance(body, dict)
            else "omni-moderation-latest"
        )
        flagged = set(self._flagged)
        return {
            "id": f"modr-{uuid.uuid4().hex}",
            "model": model,
            "results": [
                {
                    "flagged": bool(flagged),
                    "categories": {c: c in flagged for c in MODERATION_CATEGORIES},
                    "category_scores": {c: 0.97 if c in flagged else 0.001 for c in MODERATION_CATEGORIES},
                    "category_applied_input_types": {
                        c: ["text"] if c in flagged else [] for c in MODERATION_CATEGORIES
                    },
                }
            ],
        }

    def _fault(self, fault: _Fault) -> _Reply:
        kinds = {400: "invalid_request_error", 401: "invalid_request_error", 429: "rate_limit_exceeded"}
        body = fault.body or _error(f"Fake failure {fault.status}", kinds.get(fault.status, "server_error"))
        headers = {} if fault.retry_after is None else {"retry-after": f"{fault.retry_after:g}"}
        return _json(fault.status, body, headers)


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> _Reply:
    return _Reply(
        status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
    )


class _Server(ThreadingHTTPServer):
    # Handler threads are joined on close (block_on_close), so no test leaves a thread or socket behind.
    daemon_threads = False

    def __init__(self, fake: FakeOpenAI) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that timed out and hung up is the scenario under test, not a failure."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        reply = self.server.fake._handle(
            method, self.path, {k.lower(): v for k, v in self.headers.items()}, raw
        )
        if reply is None:
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the fake records requests itself."""
