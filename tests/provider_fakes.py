"""Local, stateful fakes of the hosted video APIs (OpenAI `/v1/videos`, fal queue, Veo), with fault injection."""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from bot import media
from bot.domain import Aspect, GenerationRequest, PromptSpec
from bot.providers.local import render


def make_clip(directory: Path, *, seconds: int = 1) -> bytes:
    """A tiny real MP4 (rendered offline by the local provider) for the fakes to serve."""
    spec = PromptSpec(
        subject="fake provider clip",
        action="a disc drifts",
        camera="static",
        environment="gradient",
        finish="flat",
        intent="tests",
    )
    request = GenerationRequest(
        prompt="fake provider clip",
        spec=spec,
        seconds=seconds,
        aspect=Aspect.LANDSCAPE,
        variation=1,
        idempotency_key="fake-provider-clip",
    )
    return render(request, Path(directory) / "fake-clip.mp4").read_bytes()


@dataclass(frozen=True)
class FormField:
    """One part of a multipart/form-data body."""

    value: bytes
    filename: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """One request a fake received, as it arrived; `route` is the fake's name for it (None: no such route)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    route: str | None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, FormField]:
        """The multipart/form-data fields by name (files keep their filename and content type)."""
        content_type = self.header("content-type") or ""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + self.body
        )
        fields: dict[str, FormField] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                has_type = part.get("content-type") is not None
                fields[name] = FormField(
                    value=payload,
                    filename=part.get_filename(),
                    content_type=part.get_content_type() if has_type else None,
                )
        return fields


@dataclass(frozen=True)
class Reply:
    """What a fake answers: status, body and extra headers."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of_json(cls, status: int, payload: object, *, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
        return cls(status, json.dumps(payload).encode(), (("Content-Type", "application/json"), *headers))


@dataclass(frozen=True)
class _Fault:
    kind: str  # "fail", "reset" or "delay"
    status: int = 500
    retry_after: float | None = None
    body: object = None
    seconds: float = 0.0


@dataclass
class _Job:
    """A job as a fake keeps it; `polls` counts status requests, which is what moves it along.

    With `seconds_to_complete` set on the fake, wall time since `started` moves it along instead.
    """

    id: str
    model: str
    prompt: str
    seconds: int
    size: str = "1280x720"
    created_at: int = field(default_factory=lambda: int(time.time()))
    started: float = field(default_factory=time.monotonic)
    polls: int = 0
    cancelled: bool = False
    deleted: bool = False
    status_override: str | None = None
    remixed_from: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    # Handler threads are joined on close, so a stopped fake leaves no thread or socket behind.
    daemon_threads = False
    block_on_close = True

    def __init__(self, fake: FakeProviderServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so no idle keep-alive connection holds a thread at stop.
    protocol_version = "HTTP/1.0"
    timeout = 10
    server: _Server

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeProviderServer:
    """The machinery every fake shares: the server thread, the request log and the faults.

    Routes have the same names in every fake where they mean the same thing: `submit`, `poll`,
    `download` and `cancel` (plus each API's own, e.g. `result` on fal or `blob` on Veo).

    For benchmarks: `latency` holds every answer back that many seconds (a network round trip), and
    `seconds_to_complete` finishes a job after that much wall time (`time.monotonic`) since it was
    created, however often it is polled, instead of on its `polls_to_complete`-th status request.
    """

    def __init__(
        self,
        *,
        clip: bytes,
        api_key: str = "test-key",
        polls_to_complete: int = 3,
        latency: float = 0.0,
        seconds_to_complete: float | None = None,
    ) -> None:
        self.clip = clip
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.latency = latency
        self.seconds_to_complete = seconds_to_complete
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []
        self._jobs: dict[str, _Job] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._hooks: list[tuple[str, Callable[[RecordedRequest], None], list[int]]] = []
        self._stuck: set[str] = set()
        self._failing: dict[str, str] = {}
        self._expired_status: int | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        self._server = _Server(self)
        # A short poll interval: `shutdown()` waits for the loop to notice, and every test stops a fake.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes any delayed answer
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.origin

    # ---------------------------------------------------------------------------------------- inspection

    def requests_to(self, route: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.route == route]

    @property
    def jobs_created(self) -> int:
        with self._lock:
            return len(self._jobs)

    @property
    def latest_job(self) -> str:
        """The fake's own id of the newest job."""
        with self._lock:
            return list(self._jobs)[-1]

    def completes_at(self, job: str) -> float | None:
        """When (`time.monotonic`) the job finishes with `seconds_to_complete` set; None without it or the job."""
        with self._lock:
            found = self._jobs.get(self._key(job))
        if found is None or self.seconds_to_complete is None:
            return None
        return found.started + self.seconds_to_complete

    # ----------------------------------------------------------------------------------- fault injection

    def after(self, route: str, action: Callable[[RecordedRequest], None], *, times: int = 1) -> None:
        """Run `action(request)` once a `route` request has been carried out and before it is answered (fault
        tests kill the bot there: the provider did it, the bot never heard)."""
        with self._lock:
            self._hooks.append((route, action, [times]))

    def fail_next(
        self,
        route: str,
        status: int,
        *,
        retry_after: float | None = None,
        times: int = 1,
        body: object = None,
    ) -> None:
        """Answer the next `times` requests to `route` with `status` (the API's error shape, or `body`)."""
        self._add_fault(route, [_Fault("fail", status=status, retry_after=retry_after, body=body)] * times)

    def reset_connection_next(self, route: str) -> None:
        """Read the next request to `route`, then reset the connection without answering."""
        self._add_fault(route, [_Fault("reset")])

    def delay_next(self, route: str, seconds: float) -> None:
        """Handle the next request to `route` as usual, but hold the answer back for `seconds`."""
        self._add_fault(route, [_Fault("delay", seconds=seconds)])

    def stick(self, job: str) -> None:
        """The job stays in progress for ever."""
        with self._lock:
            self._stuck.add(self._key(job))

    def fail_job_after_accept(self, job: str, code: str = "moderation_blocked") -> None:
        """The accepted job fails at its next status check, the way this API reports `code`."""
        with self._lock:
            self._failing[self._key(job)] = code

    def expire_downloads(self, status: int = 404) -> None:
        """Every finished clip has expired: downloads answer `status` (404 or 410)."""
        with self._lock:
            self._expired_status = status

    # ------------------------------------------------------------------------------- for the subclasses

    def _match(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        raise NotImplementedError

    def _respond(self, route: str, params: dict[str, str], request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def _authorized(self, route: str, request: RecordedRequest) -> Reply | None:
        """None when the request may proceed, else the API's refusal."""
        raise NotImplementedError

    def _error(
        self, status: int, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> Reply:
        raise NotImplementedError

    def _job(self, job_id: str) -> _Job | None:
        with self._lock:
            return self._jobs.get(self._key(job_id))

    def _add_job(self, job: _Job) -> _Job:
        with self._lock:
            self._jobs[job.id] = job
        return job

    def _advance(self, job: _Job) -> str:
        """Count one status request; returns "stuck", "failing:<code>", "cancelled", "done" or "running"."""
        with self._lock:
            job.polls += 1
            if job.cancelled:
                return "cancelled"
            if job.id in self._stuck:
                return "stuck"
            if job.id in self._failing:
                return f"failing:{self._failing[job.id]}"
            return "done" if self._due(job) else "running"

    def _due(self, job: _Job) -> bool:
        """Whether the job has run its course: enough status requests, or enough wall time."""
        if self.seconds_to_complete is not None:
            return time.monotonic() - job.started >= self.seconds_to_complete
        return job.polls >= self.polls_to_complete

    def _progress(self, job: _Job) -> int:
        """Percent done while running, by status requests or by wall time."""
        if self.seconds_to_complete is not None:
            elapsed = time.monotonic() - job.started
            return min(99, int(100 * elapsed / self.seconds_to_complete)) if self.seconds_to_complete else 99
        return 100 * job.polls // self.polls_to_complete

    def _finished(self, job: _Job) -> bool:
        with self._lock:
            return (
                self._due(job)
                and job.id not in self._stuck
                and job.id not in self._failing
                and not job.cancelled
            )

    @property
    def _expired(self) -> int | None:
        with self._lock:
            return self._expired_status

    @staticmethod
    def _key(job: str) -> str:
        # Tests may pass the fake's own id or the provider's job id (which ends with it).
        return job.rstrip("/").rsplit("/", 1)[-1]

    @staticmethod
    def _new_id(prefix: str) -> str:
        return f"{prefix}{secrets.token_hex(8)}"

    # ------------------------------------------------------------------------------------------- serving

    def _add_fault(self, route: str, faults: list[_Fault]) -> None:
        with self._lock:
            self._faults.setdefault(route, []).extend(faults)

    def _take_fault(self, route: str | None) -> _Fault | None:
        with self._lock:
            queue = self._faults.get(route or "")
            return queue.pop(0) if queue else None

    def _serve(self, handler: _Handler) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        matched = self._match(handler.command, url.path)
        route, params = matched if matched else (None, {})
        request = RecordedRequest(
            method=handler.command,
            path=url.path,
            query=parse_qs(url.query),
            headers={name.lower(): value for name, value in handler.headers.items()},
            body=body,
            route=route,
        )
        with self._lock:
            self.requests.append(request)
        if self.latency > 0:
            self._stopping.wait(self.latency)  # the simulated round trip; a stopping fake answers at once
        fault = self._take_fault(route)
        if fault is not None and fault.kind == "reset":
            _reset(handler)
            return
        reply = self._reply(fault, route, params, request)
        with self._lock:
            due = [h for h in self._hooks if h[0] == route and h[2][0] > 0]
            for hook in due:
                hook[2][0] -= 1
        for _, action, _ in due:
            action(request)
        if fault is not None and fault.kind == "delay":
            self._stopping.wait(fault.seconds)
        try:
            handler.send_response(reply.status)
            for name, value in reply.headers:
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test)

    def _reply(
        self, fault: _Fault | None, route: str | None, params: dict[str, str], request: RecordedRequest
    ) -> Reply:
        if fault is not None and fault.kind == "fail":
            if fault.body is not None:
                return Reply.of_json(fault.status, fault.body, headers=_retry_after_header(fault.retry_after))
            return self._error(fault.status, "injected failure", retry_after=fault.retry_after)
        if route is None:
            return self._error(404, f"no route for {request.method} {request.path}")
        refusal = self._authorized(route, request)
        if refusal is not None:
            return refusal
        try:
            return self._respond(route, params, request)
        except Exception as err:  # a bug in the fake must show up in the test, not hang it
            self.errors.append(f"{request.method} {request.path}: {type(err).__name__}: {err}")
            return self._error(500, f"the fake failed: {err}")


def _reset(handler: _Handler) -> None:
    # SO_LINGER with a zero timeout turns close() into a TCP RST: the client sees a reset, not an answer.
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()
    handler.close_connection = True


def _retry_after_header(retry_after: float | None) -> tuple[tuple[str, str], ...]:
    return (("Retry-After", f"{retry_after:g}"),) if retry_after is not None else ()


# ================================================================================================ OpenAI


_OPENAI_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"^/v1/videos$"), "submit"),
    ("GET", re.compile(r"^/v1/videos$"), "list"),
    ("POST", re.compile(r"^/v1/videos/extensions$"), "extend"),
    ("GET", re.compile(r"^/v1/videos/(?P<id>[^/]+)$"), "poll"),
    ("DELETE", re.compile(r"^/v1/videos/(?P<id>[^/]+)$"), "cancel"),
    ("GET", re.compile(r"^/v1/videos/(?P<id>[^/]+)/content$"), "download"),
    ("POST", re.compile(r"^/v1/videos/(?P<id>[^/]+)/remix$"), "remix"),
)
_OPENAI_SECONDS = {"4", "8", "12"}
_POLL_AFTER_MS = "1000"


class FakeOpenAI(FakeProviderServer):
    """`/v1/videos` as OpenAI served it (and gateways still do): multipart or JSON create, polling, content.

    Routes: submit (POST /videos), poll (GET /videos/{id}), download (GET /videos/{id}/content),
    cancel (DELETE /videos/{id}), remix, extend (POST /videos/extensions), list (GET /videos: cursor
    pages by `after`, `limit` capped at `list_page_size`, `order` desc by default, as the API documents).
    """

    list_page_size = 100

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def backdate(self, job: str, seconds: float) -> None:
        """The job was created `seconds` earlier than it was (for listings with a cut-off)."""
        found = self._job(job)
        assert found is not None, f"no job {job}"
        found.created_at -= int(seconds)

    def set_status(self, job: str, status: str) -> None:
        """Report `status` (e.g. a gateway's own `cancelled`) for the job from now on."""
        found = self._job(job)
        assert found is not None, f"no job {job}"
        found.status_override = status

    def _match(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        for route_method, pattern, name in _OPENAI_ROUTES:
            match = pattern.match(path)
            if match and method == route_method:
                return name, match.groupdict()
        return None

    def _authorized(self, route: str, request: RecordedRequest) -> Reply | None:
        if request.header("authorization") == f"Bearer {self.api_key}":
            return None
        return self._error(401, "Incorrect API key provided.", code="invalid_api_key")

    def _error(
        self, status: int, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> Reply:
        kind = "invalid_request_error" if status < 500 else "server_error"
        payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return Reply.of_json(status, payload, headers=_retry_after_header(retry_after))

    def _respond(self, route: str, params: dict[str, str], request: RecordedRequest) -> Reply:
        handlers: dict[str, Callable[[dict[str, str], RecordedRequest], Reply]] = {
            "submit": self._create,
            "list": self._list,
            "extend": self._extend,
            "poll": self._retrieve,
            "cancel": self._delete,
            "download": self._content,
            "remix": self._remix,
        }
        return handlers[route](params, request)

    def _create(self, params: dict[str, str], request: RecordedRequest) -> Reply:
        content_type = request.header("content-type") or ""
        if content_type.startswith("multipart/form-data"):
            form = request.form()
            fields = {name: f.value.decode() for name, f in form.items() if f.filename is None}
            reference = form.get("input_reference")
            extra: dict[str, object] = {}
            if reference is not None:
                extra["input_reference"] = {
                    "filename": reference.filename,
                    "content_type": reference.content_type,
                    "bytes": reference.value,
                }
        else:
            data = request.json()
            fields = {k: str(v) for k, v in data.items() if isinstance(v, str | int)}
            extra = {"input_reference": data["input_reference"]} if "input_reference" in data else {}
        if not fields.get("prompt"):
            return self._error(
                400, "Missing required parameter: 'prompt'.", code="missing_required_parameter"
            )
        seconds = fields.get("seconds", "4")
        if seconds not in _OPENAI_SECONDS:
            return self._error(400, f"Invalid value: '{seconds}'. Supported values are: '4', '8', and '12'.")
        job = self._add_job(
            _Job(
                id=self._new_id("video_"),
                model=fields.get("model", "sora-2"),
                prompt=fields["prompt"],
                seconds=int(seconds),
                size=fields.get("size", "720x1280"),
                extra=extra,
            )
        )
        return self._video_reply(job, "queued")

    def _retrieve(self, params: dict[str, str], request: RecordedRequest) -> Reply:
        job = self._job(params["id"])
        if job is None or job.deleted:
            return self._error(404, f"Video with id '{params['id']}' not found.", code="video_not_found")
        state = self._advance(job)
        if job.status_override is not None:
            return self._video_reply(job, job.status_override)
        if state == "stuck":
            return self._video_reply(job, "in_progress", progress=10)
        if state.startswith("failing:"):
            code = state.split(":", 1)[1]
            message = (
                "Your request was blocked by our moderation system."
                if code in ("moderation_blocked", "sentinel_block")
                else "The video could not be generated."
            )
            return self._video_reply(job, "failed", error={"code": code, "message": message})
        if state == "done":
            return self._video_reply(job, "completed")
        if job.polls == 1:
            return self._video_reply(job, "queued")
        return self._video_reply(job, "in_progress", progress=self._progress(job))

    def _content(self, params: dict[str, str], request: RecordedRequest) -> Reply:
        job = self._job(params["id"])
        if job is None or job.deleted:
            return self._error(404, f"Video with id '{params['id']}' not found.", code="video_not_found")
        if (expired := self._expired) is not None:
            return self._error(expired, "The video content has expired.", code="video_expired")
        if not self._finished(job):
            return self._error(400, "Video is not ready yet; wait until it completes.")
        if request.query.get("variant", ["video"]) != ["video"]:
            return self._error(400, "Only the video variant is served by this fake.")
        return Reply(200, self.clip, (("Content-Type", "video/mp4"),))

    def _remix(self, params: dict[str, str], request: RecordedRequest) -> Reply:
        source = self._job(params["id"])
        if source is None or source.deleted:
            return self._error(404, f"Video with id '{params['id']}' not found.", code="video_not_found")
        if not self._finished(source):
            return self._error(400, "Only completed videos can be remixed.")
        job = _Job(
            id=self._new_id("video_"),
            model=source.model,
            prompt=request.json()["prompt"],
            seconds=source.seconds,
            size=source.size,
            remixed_from=source.id,
        )
        return self._video_reply(self._add_job(job), "queued")

    def _extend(self, params: dict[str, str], request: RecordedRequest) -> Reply:
        data = request.json()
        source = self._job(str(data.get("video", {}).get("id", "")))
        if source is None or source.deleted:
            return self._error(404, "The video to extend was not found.", code="video_not_found")
        if str(data.get("seconds")) not in _OPENAI_SECONDS:
            return self._error(400, f"Invalid value: '{data.get('seconds')}'.")
        job = _Job(
            id=self._new_id("video_"),
            model=source.model,
            prompt=str(data["prompt"]),
            seconds=source.seconds + int(data["seconds"]),  # the stitched total
            size=source.size,
            extra={"extends": source.id},
        )
        return self._video_reply(self._add_job(job), "queued")

    def _delete(self, params: dict[str, str], request: RecordedRequest) -> Reply:
        job = self._job(params["id"])
        if job is None or job.deleted:
            return self._error(404, f"Video with id '{params['id']}' not found.", code="video_not_found")
        job.deleted = True
        return Reply.of_json(200, {"id": job.id, "object": "video.deleted", "deleted": True})

    def _list(self, params: dict[str, str], request: RecordedRequest) -> Reply:
        with self._lock:
            # Creation order breaks ties between videos created in the same second.
            jobs = [
                job
                for _, job in sorted(enumerate(self._jobs.values()), key=lambda p: (p[1].created_at, p[0]))
            ]
        jobs = [job for job in jobs if not job.deleted]
        if request.query.get("order", ["desc"]) != ["asc"]:
            jobs.reverse()
        after = request.query.get("after", [None])[0]
        if after is not None:
            ids = [job.id for job in jobs]
            if after not in ids:
                return self._error(400, f"Invalid 'after': no video {after!r}.")
            jobs = jobs[ids.index(after) + 1 :]
        limit = min(int(request.query.get("limit", ["20"])[0]), self.list_page_size)
        page, has_more = jobs[:limit], len(jobs) > limit
        data = [self._video(job, "completed" if self._finished(job) else "in_progress") for job in page]
        return Reply.of_json(
            200,
            {"object": "list", "data": data, "has_more": has_more, "last_id": page[-1].id if page else None},
        )

    def _video_reply(self, job: _Job, status: str, *, progress: int = 0, error: object = None) -> Reply:
        headers = () if status in ("completed", "failed") else (("openai-poll-after-ms", _POLL_AFTER_MS),)
        return Reply.of_json(200, self._video(job, status, progress=progress, error=error), headers=headers)

    def _video(self, job: _Job, status: str, *, progress: int = 0, error: object = None) -> dict[str, object]:
        done = status == "completed"
        return {
            "id": job.id,
            "object": "video",
            "model": job.model,
            "status": status,
            "progress": 100 if done else progress,
            "created_at": job.created_at,
            "completed_at": job.created_at + 30 if done else None,
            "expires_at": job.created_at + 3600 if done else None,
            "seconds": str(job.seconds),
            "size": job.size,
            "prompt": job.prompt,
            "remixed_from_video_id": job.remixed_from,
            "error": error,
        }


# =================================================================================================== fal


_FAL_QUEUE = re.compile(r"^/(?P<app>[^/]+/[^/]+)/requests/(?P<id>[^/]+)(?P<suffix>/status|/cancel)?$")
_FAL_FILE = re.compile(r"^/files/(?P<name>[^/]+)$")
_FAL_DURATIONS = {"5", "10"}
_FAL_ASPECTS = {"16:9", "9:16", "1:1"}


class FakeFal(FakeProviderServer):
    """fal's queue: submit to any model path; status, result and cancel under `app_path` (not the model id).

    Routes: submit (POST /{model id}), poll (GET …/requests/{id}/status), result (GET …/requests/{id}),
    cancel (PUT …/requests/{id}/cancel), download (GET /files/{name}, public like fal's CDN).
    """

    def __init__(
        self,
        *,
        clip: bytes,
        api_key: str = "test-key",
        polls_to_complete: int = 3,
        app_path: str = "fake-owner/fake-app",
        latency: float = 0.0,
        seconds_to_complete: float | None = None,
    ) -> None:
        super().__init__(
            clip=clip,
            api_key=api_key,
            polls_to_complete=polls_to_complete,
            latency=latency,
            seconds_to_complete=seconds_to_complete,
        )
        self.app_path = app_path

    def _match(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        if method == "GET" and (match := _FAL_FILE.match(path)):
            return "download", match.groupdict()
        match = _FAL_QUEUE.match(path)
        if match is not None:
            routes = {("GET", "/status"): "poll", ("GET", None): "result", ("PUT", "/cancel"): "cancel"}
            name = routes.get((method, match.group("suffix")))
            return (name, match.groupdict()) if name else None
        if method == "POST" and len(path) > 1:
            return "submit", {"model": path.strip("/")}
        return None

    def _authorized(self, route: str, request: RecordedRequest) -> Reply | None:
        if route == "download" or request.header("authorization") == f"Key {self.api_key}":
            return None
        return self._error(401, "Invalid or missing credentials.")

    def _error(
        self, status: int, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> Reply:
        payload: dict[str, object] = {"detail": message}
        headers = _retry_after_header(retry_after)
        if code is not None:
            payload["error_type"] = code
            headers = (*headers, ("X-Fal-Error-Type", code))
        return Reply.of_json(status, payload, headers=headers)

    def _respond(self, route: str, params: dict[str, str], request: RecordedRequest) -> Reply:
        if route == "submit":
            return self._submit(params["model"], request)
        if route == "download":
            return self._file(params["name"])
        job = self._job(params["id"])
        if params["app"] != self.app_path or job is None:
            # fal answers a request id under the wrong owner/app as unknown: the gotcha this fake guards.
            return Reply.of_json(
                404, {"status": "NOT_FOUND"} if route == "cancel" else {"detail": "Not found"}
            )
        handlers = {"poll": self._status, "result": self._result, "cancel": self._cancel}
        return handlers[route](job)

    def _submit(self, model: str, request: RecordedRequest) -> Reply:
        data = request.json()
        problems = []
        if not data.get("prompt"):
            problems.append(("prompt", "Field required", "missing"))
        if str(data.get("duration", "5")) not in _FAL_DURATIONS:
            problems.append(("duration", "Input should be '5' or '10'", "literal_error"))
        if data.get("aspect_ratio", "16:9") not in _FAL_ASPECTS:
            problems.append(("aspect_ratio", "Input should be '16:9', '9:16' or '1:1'", "literal_error"))
        if model.endswith("image-to-video") and not str(data.get("image_url", "")).startswith(
            ("data:", "http")
        ):
            problems.append(("image_url", "Field required", "missing"))
        if problems:
            detail = [{"loc": ["body", loc], "msg": msg, "type": kind} for loc, msg, kind in problems]
            return Reply.of_json(422, {"detail": detail})
        job = self._add_job(
            _Job(
                id=f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}",
                model=model,
                prompt=data["prompt"],
                seconds=int(data.get("duration", "5")),
                extra={"input": data},
            )
        )
        base = f"{self.origin}/{self.app_path}/requests/{job.id}"
        return Reply.of_json(
            200,
            {
                "request_id": job.id,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
            },
        )

    def _status(self, job: _Job) -> Reply:
        state = self._advance(job)
        response_url = f"{self.origin}/{self.app_path}/requests/{job.id}"
        if state == "stuck" or (state == "running" and job.polls > 1):
            return Reply.of_json(202, {"status": "IN_PROGRESS", "response_url": response_url, "logs": None})
        if state == "running":
            return Reply.of_json(
                202, {"status": "IN_QUEUE", "queue_position": 0, "response_url": response_url}
            )
        # Failed and cancelled requests also end COMPLETED on fal; their result carries the error.
        return Reply.of_json(200, {"status": "COMPLETED", "response_url": response_url, "logs": None})

    def _result(self, job: _Job) -> Reply:
        with self._lock:
            failing = self._failing.get(job.id)
        if job.cancelled:
            return Reply.of_json(400, {"detail": "Request was cancelled.", "error_type": "request_cancelled"})
        if failing in ("moderation_blocked", "content_policy_violation"):
            detail = [
                {
                    "loc": ["body", "prompt"],
                    "msg": "The content could not be processed because it contained material flagged by a "
                    "content checker.",
                    "type": "content_policy_violation",
                    "url": "https://docs.fal.ai/errors#content_policy_violation",
                }
            ]
            return Reply.of_json(422, {"detail": detail})
        if failing is not None:
            return self._error(500, "The model runner disconnected.", code=failing)
        if not self._finished(job):
            return Reply.of_json(400, {"detail": "Request is still in progress"})
        return Reply.of_json(
            200,
            {
                "video": {
                    "url": f"{self.origin}/files/{job.id}.mp4",
                    "content_type": "video/mp4",
                    "file_name": "output.mp4",
                    "file_size": len(self.clip),
                },
                "seed": 42,
            },
        )

    def _cancel(self, job: _Job) -> Reply:
        if self._finished(job):
            return Reply.of_json(400, {"status": "ALREADY_COMPLETED"})
        job.cancelled = True
        return Reply.of_json(202, {"status": "CANCELLATION_REQUESTED"})

    def _file(self, name: str) -> Reply:
        job = self._job(name.removesuffix(".mp4"))
        if job is None or not self._finished(job):
            return Reply(404, b"Not Found", (("Content-Type", "text/plain"),))
        if (expired := self._expired) is not None:
            return Reply(expired, b"Not Found", (("Content-Type", "text/plain"),))
        return Reply(200, self.clip, (("Content-Type", "video/mp4"),))


# =================================================================================================== Veo


_VEO_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", re.compile(r"^/v1beta/models/(?P<model>[^/:]+):predictLongRunning$"), "submit"),
    ("GET", re.compile(r"^/v1beta/models/(?P<model>[^/:]+)/operations/(?P<id>[^/:]+)$"), "poll"),
    ("POST", re.compile(r"^/v1beta/models/(?P<model>[^/:]+)/operations/(?P<id>[^/:]+):cancel$"), "cancel"),
    ("GET", re.compile(r"^/v1beta/files/(?P<id>[^/:]+):download$"), "download"),
    ("GET", re.compile(r"^/blobs/(?P<id>[^/]+)$"), "blob"),
)
_VEO_ASPECTS = {"16:9", "9:16"}
_VEO_DURATIONS = {4, 6, 8}
_VEO_RESOLUTIONS = {"720p", "1080p", "4k"}
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
}


class FakeVeo(FakeProviderServer):
    """Veo on the Gemini API: predictLongRunning, the operation flipping `done`, a redirecting download.

    Routes: submit, poll (GET /v1beta/{operation name}), cancel (POST …:cancel), download
    (GET /v1beta/files/{id}:download, wants the key, answers 302), blob (the bytes behind the redirect).
    """

    def _match(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        for route_method, pattern, name in _VEO_ROUTES:
            match = pattern.match(path)
            if match and method == route_method:
                return name, match.groupdict()
        return None

    def _authorized(self, route: str, request: RecordedRequest) -> Reply | None:
        if route == "blob":
            return None  # a signed URL, like the storage Google redirects to
        key = request.header("x-goog-api-key") or request.query.get("key", [None])[0]
        if key is None:
            return self._error(403, "Method doesn't allow unregistered callers. Please use an API key.")
        if key != self.api_key:
            return self._error(400, "API key not valid. Please pass a valid API key.", code="API_KEY_INVALID")
        return None

    def _error(
        self, status: int, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> Reply:
        error: dict[str, object] = {
            "code": status,
            "message": message,
            "status": _STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"),
        }
        details: list[dict[str, object]] = []
        if code is not None:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": code,
                    "domain": "googleapis.com",
                }
            )
        if retry_after is not None:
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"}
            )
        if details:
            error["details"] = details
        return Reply.of_json(status, {"error": error}, headers=_retry_after_header(retry_after))

    def _respond(self, route: str, params: dict[str, str], request: RecordedRequest) -> Reply:
        if route == "submit":
            return self._submit(params["model"], request)
        job = self._job(params["id"])
        if job is None:
            return self._error(404, "Requested entity was not found.")
        handlers = {
            "poll": self._operation,
            "cancel": self._cancel,
            "download": self._download,
            "blob": self._blob,
        }
        return handlers[route](job, request)

    def _submit(self, model: str, request: RecordedRequest) -> Reply:
        data = request.json()
        instances = data.get("instances") or [{}]
        parameters = data.get("parameters") or {}
        instance = instances[0]
        problems = []
        if not instance.get("prompt"):
            problems.append("instances[0].prompt is required")
        if parameters.get("aspectRatio", "16:9") not in _VEO_ASPECTS:
            problems.append(f"aspectRatio {parameters.get('aspectRatio')!r} is not supported")
        if parameters.get("durationSeconds", 8) not in _VEO_DURATIONS:
            problems.append(f"durationSeconds {parameters.get('durationSeconds')!r} is out of bounds")
        if parameters.get("resolution", "720p") not in _VEO_RESOLUTIONS:
            problems.append(f"resolution {parameters.get('resolution')!r} is not supported")
        image = instance.get("image")
        if image is not None and not (image.get("bytesBase64Encoded") and image.get("mimeType")):
            problems.append("image needs bytesBase64Encoded and mimeType")
        if problems:
            return self._error(400, "; ".join(problems))
        job = self._add_job(
            _Job(
                id=self._new_id(""),
                model=model,
                prompt=instance["prompt"],
                seconds=int(parameters.get("durationSeconds", 8)),
                extra={"body": data, "file": self._new_id("file"), "sig": secrets.token_hex(8)},
            )
        )
        return Reply.of_json(200, {"name": self._name(job)})

    def _operation(self, job: _Job, request: RecordedRequest) -> Reply:
        state = self._advance(job)
        name = self._name(job)
        if state == "cancelled":
            return Reply.of_json(
                200, {"name": name, "done": True, "error": {"code": 1, "message": "Cancelled."}}
            )
        if state in ("stuck", "running"):
            # A fresh operation omits `done` altogether; later polls say false.
            return Reply.of_json(200, {"name": name} if job.polls == 1 else {"name": name, "done": False})
        response: dict[str, object] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
        }
        if state == "failing:moderation_blocked":
            response["generateVideoResponse"] = {
                "raiMediaFilteredCount": 1,
                "raiMediaFilteredReasons": [
                    "Your prompt could not be submitted because it may violate our usage guidelines."
                ],
            }
        elif state.startswith("failing:"):
            error = {"code": 13, "message": f"Video generation failed ({state.split(':', 1)[1]})."}
            return Reply.of_json(200, {"name": name, "done": True, "error": error})
        else:
            uri = f"{self.origin}/v1beta/files/{job.extra['file']}:download?alt=media"
            response["generateVideoResponse"] = {"generatedSamples": [{"video": {"uri": uri}}]}
        return Reply.of_json(200, {"name": name, "done": True, "response": response})

    def _cancel(self, job: _Job, request: RecordedRequest) -> Reply:
        if not self._finished(job):
            job.cancelled = True
        return Reply.of_json(200, {})

    def _download(self, job: _Job, request: RecordedRequest) -> Reply:
        if (expired := self._expired) is not None:
            return self._error(expired, "The file has expired.")
        if request.query.get("alt") != ["media"] or not self._finished(job):
            return self._error(400, "The file is not ready for download.")
        return Reply(
            302, headers=(("Location", f"{self.origin}/blobs/{job.extra['file']}?sig={job.extra['sig']}"),)
        )

    def _blob(self, job: _Job, request: RecordedRequest) -> Reply:
        if request.query.get("sig") != [job.extra["sig"]]:
            return Reply(403, b"bad signature", (("Content-Type", "text/plain"),))
        return Reply(200, self.clip, (("Content-Type", "video/mp4"),))

    def _job(self, job_id: str) -> _Job | None:
        # Files and blobs are looked up by file id, operations by operation id.
        found = super()._job(job_id)
        if found is not None:
            return found
        with self._lock:
            return next((job for job in self._jobs.values() if job.extra.get("file") == job_id), None)

    @staticmethod
    def _name(job: _Job) -> str:
        return f"models/{job.model}/operations/{job.id}"


def make_png(directory: Path) -> Path:
    """A small real PNG (a still frame to start from), for image-to-video requests."""
    width, height = 64, 36
    pixels = bytes(channel for i in range(width * height) for channel in (i % 256, 80, 160, 255))
    return media.write_png(
        media.RgbaImage(width=width, height=height, pixels=pixels), Path(directory) / "still.png"
    )
