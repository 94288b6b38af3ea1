"""The fal.ai queue provider: submit, status, result and cancel over httpx, behind `VideoProvider`.

It does not implement `JobFinder` (`submitted_jobs`): fal's queue API has no way to list a key's requests
(only status, result and cancel by request id), so a submit whose answer was lost cannot be looked up here.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bot.domain import Capability, GenerationRequest, JobStatus, ProviderJob
from bot.errors import JobNotFound, ProviderError
from bot.providers.transfer import (
    MAX_CLIP_BYTES,
    snap,
    status_error,
    target_path,
    transport_error,
    write_atomically,
)

log = logging.getLogger(__name__)

_DURATIONS = (5, 10)
_CHUNK_BYTES = 1 << 20
# One path segment of a queue URL; job ids come back from the database, so nothing else may reach a URL.
_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]+$")
# Never appears unescaped in a URL path, so it can join the three paths of an unusual layout.
_SEPARATOR = "|"
_MODERATION_TYPES = frozenset({"content_policy_violation"})
_PROVIDER = "fal"
_KEY_SETTING = "FAL_KEY"


@dataclass(frozen=True)
class FalJobRef:
    """Where one fal request lives, as paths under the queue's base URL; the job id carries it.

    The paths come from the submit response (`status_url`, `response_url`, `cancel_url`): they use only the
    model's `owner/app`, so building them from the model id would be wrong.
    """

    response_path: str
    status_path: str
    cancel_path: str

    def encode(self) -> str:
        # The documented layout collapses to one readable path (`owner/app/requests/<id>`); anything else
        # keeps all three, so a restarted process still finds them without the submit response.
        if (self.status_path, self.cancel_path) == (
            f"{self.response_path}/status",
            f"{self.response_path}/cancel",
        ):
            return self.response_path
        return _SEPARATOR.join((self.response_path, self.status_path, self.cancel_path))

    @classmethod
    def decode(cls, job_id: str) -> FalJobRef | None:
        """The reference inside `job_id`, or None when it is not one of ours."""
        parts = job_id.split(_SEPARATOR)
        if len(parts) == 1:
            parts = [job_id, f"{job_id}/status", f"{job_id}/cancel"]
        if len(parts) != 3 or not all(_is_safe_path(part) for part in parts):
            return None
        return cls(response_path=parts[0], status_path=parts[1], cancel_path=parts[2])


class FalProvider:
    """Any video model on fal's queue (Kling by default): `Authorization: Key …`, poll status, fetch result.

    Call `close()` when done with a provider that built its own HTTP client.
    """

    name: str = "fal"
    capabilities: frozenset[Capability] = frozenset({Capability.TEXT_TO_VIDEO, Capability.IMAGE_TO_VIDEO})

    def __init__(
        self,
        *,
        key: str,
        base_url: str = "https://queue.fal.run",
        model: str = "fal-ai/kling-video/v2.1/standard/text-to-video",
        http_client: httpx.Client | None = None,
        price_per_second: float = 0.05,
        timeout: float = 60.0,
        max_clip_bytes: int = MAX_CLIP_BYTES,
        webhook_url: str | None = None,
    ) -> None:
        self._webhook = {"fal_webhook": webhook_url} if webhook_url else {}
        self._base = httpx.URL(base_url.rstrip("/") + "/")
        self._model = model.strip("/")
        self._auth = {"Authorization": f"Key {key}"}
        self._price_per_second = price_per_second
        self._max_clip_bytes = max_clip_bytes
        self._owns_client = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)

    def submit(self, request: GenerationRequest) -> ProviderJob:
        seconds = snap(request.seconds, _DURATIONS)
        model = request.model or self._model
        body: dict[str, object] = {
            "prompt": request.prompt,
            "duration": str(seconds),
            "aspect_ratio": request.aspect.value,
        }
        if request.seed is not None:
            # Most fal video models take `seed` (Wan, LTX, Hunyuan, Seedance, …), so variations of a round
            # differ by it; check a new model's schema (its `/api` page) for one that declares none.
            body["seed"] = request.seed
        if request.reference_image is not None:
            body["image_url"] = _data_uri(request.reference_image)
            model = _image_model(model)
        try:
            # With a webhook fal calls us back on completion, so the job is posted without waiting for a poll.
            response = self._http.post(
                self._base.join(model), json=body, headers=self._auth, params=self._webhook
            )
        except httpx.TransportError as err:
            raise transport_error(err, provider=_PROVIDER, creating=True) from err
        if response.is_error:
            raise _status_error(response)
        data = _object(response)
        request_id = str(data.get("request_id") or "?")
        paths = [self._relative(data.get(key)) for key in ("response_url", "status_url", "cancel_url")]
        if not all(paths):
            raise ProviderError(
                f"fal accepted request {request_id} but returned queue URLs outside {self._base}, so it "
                "cannot be followed from here; check FAL_BASE_URL."
            )
        response_path, status_path, cancel_path = (str(path) for path in paths)
        ref = FalJobRef(response_path=response_path, status_path=status_path, cancel_path=cancel_path)
        # fal's webhook names the job by its request id alone; the job id also carries the queue paths.
        return ProviderJob(
            job_id=ref.encode(),
            status=JobStatus.QUEUED,
            seconds=seconds,
            callback_id=str(data.get("request_id")),
        )

    def fetch(self, job_id: str) -> ProviderJob:
        ref = FalJobRef.decode(job_id)
        if ref is None:
            return _unknown(job_id)
        response = self._request("GET", ref.status_path)
        if response.status_code == 404:
            return _unknown(job_id)
        if response.is_error:
            raise _status_error(response, job_id=job_id)
        status = _object(response).get("status")
        if status == "IN_QUEUE":
            # fal reports a queue position here; the contract has no field for it, so progress stays 0.
            return ProviderJob(job_id=job_id, status=JobStatus.QUEUED)
        if status == "COMPLETED":
            return self._result(job_id, ref)
        if status != "IN_PROGRESS":
            log.warning("fal reported status %r for %s; polling on", status, job_id)
        return ProviderJob(job_id=job_id, status=JobStatus.IN_PROGRESS)

    def download(self, job_id: str, into: Path) -> Path:
        ref = FalJobRef.decode(job_id)
        if ref is None:
            raise JobNotFound(f"{job_id!r} is not a fal job id.")
        response = self._request("GET", ref.response_path)
        if response.status_code in (404, 410):
            raise _expired(job_id)
        if response.is_error:
            raise _status_error(response, job_id=job_id)
        url = _video_url(_object(response))
        if url is None:
            raise ProviderError(f"fal's result for {job_id!r} names no video file.")
        target = target_path(into, job_id)
        try:
            # The file lives on fal's CDN behind a public, expiring URL: our key is never sent there.
            with self._http.stream("GET", url, follow_redirects=True) as stream:
                if stream.status_code in (403, 404, 410):
                    raise _expired(job_id)
                if stream.is_error:
                    stream.read()
                    raise _status_error(stream, job_id=job_id)
                return write_atomically(
                    stream.iter_bytes(_CHUNK_BYTES), target, max_bytes=self._max_clip_bytes
                )
        except httpx.TransportError as err:
            raise transport_error(err, provider=_PROVIDER) from err

    def cancel(self, job_id: str) -> None:
        ref = FalJobRef.decode(job_id)
        if ref is None:
            return
        response = self._request("PUT", ref.cancel_path)
        # 400 is ALREADY_COMPLETED and 404 NOT_FOUND: either way there is nothing left to stop.
        if response.is_error and response.status_code not in (400, 404):
            raise _status_error(response, job_id=job_id)

    def cost_per_second(self, model: str | None) -> float:
        return self._price_per_second

    def close(self) -> None:
        """Close the HTTP client this provider built; a client passed in belongs to the caller."""
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> FalProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _result(self, job_id: str, ref: FalJobRef) -> ProviderJob:
        response = self._request("GET", ref.response_path)
        if response.status_code in (401, 403, 429):
            raise _status_error(response, job_id=job_id)
        if not response.is_error and _video_url(_object(response)) is not None:
            return ProviderJob(job_id=job_id, status=JobStatus.COMPLETED, progress=100)
        body = _json(response)
        # fal has no FAILED queue state: a finished request that failed answers its result with `detail`.
        if isinstance(body, Mapping) and "detail" in body:
            failure = _failure(body)
            return ProviderJob(
                job_id=job_id, status=JobStatus.FAILED, error=failure.message, error_code=failure.code
            )
        if response.is_error:
            raise _status_error(response, job_id=job_id)
        return ProviderJob(
            job_id=job_id,
            status=JobStatus.FAILED,
            error="fal finished the request but its result has no video.",
        )

    def _request(self, method: str, path: str) -> httpx.Response:
        try:
            return self._http.request(method, self._base.join(path), headers=self._auth)
        except httpx.TransportError as err:
            raise transport_error(err, provider=_PROVIDER) from err

    def _relative(self, url: object) -> str | None:
        """`url` as a path under the base URL, or None when it points anywhere else."""
        if not isinstance(url, str):
            return None
        parsed, base = httpx.URL(url), self._base
        if (parsed.scheme, parsed.host, parsed.port) != (base.scheme, base.host, base.port):
            return None
        path = parsed.path
        return (
            path[len(base.path) :]
            if path.startswith(base.path) and _is_safe_path(path[len(base.path) :])
            else None
        )


def _is_safe_path(path: str) -> bool:
    segments = path.split("/")
    return bool(path) and all(_SEGMENT.match(s) and s not in (".", "..") for s in segments)


def _image_model(model: str) -> str:
    # fal publishes image-to-video as the sibling endpoint of text-to-video (same owner/app and version);
    # a text-to-video endpoint would reject or ignore `image_url`.
    head, _, last = model.rpartition("/")
    return f"{head}/image-to-video" if head and last == "text-to-video" else model


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _video_url(data: Mapping[str, Any]) -> str | None:
    video = data.get("video")
    url = video.get("url") if isinstance(video, Mapping) else None
    return url if isinstance(url, str) and url else None


@dataclass(frozen=True)
class _Failure:
    """Why fal refused or failed a request: its own error type (if any), our message, and whether it was
    fal's content checker."""

    code: str | None
    message: str
    moderated: bool


def _failure(body: Mapping[str, Any]) -> _Failure:
    """What a fal `detail` payload (a string or a validation list) says, in plain words."""
    detail = body.get("detail")
    items = detail if isinstance(detail, list) else []
    for item in items:
        if isinstance(item, Mapping) and item.get("type") in _MODERATION_TYPES:
            return _Failure(
                code=str(item["type"]),
                message=(
                    f"fal's content moderation blocked this video ({_detail_text(detail)}). Rephrase the "
                    "prompt without real people, brands or graphic content, or try another model."
                ),
                moderated=True,
            )
    code = body.get("error_type")
    return _Failure(
        code=None if code is None else str(code),
        message=f"fal could not make this video: {_detail_text(detail)}",
        moderated=False,
    )


def _detail_text(detail: object) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        messages = []
        for item in detail:
            if not isinstance(item, Mapping):
                continue
            loc = item.get("loc")
            field = str(loc[-1]) if isinstance(loc, list) and loc else None
            message = str(item.get("msg") or item.get("type") or "invalid")
            messages.append(f"{field}: {message}" if field else message)
        return "; ".join(messages) or "no reason given"
    return "no reason given"


def _status_error(response: httpx.Response, *, job_id: str | None = None) -> ProviderError:
    body = _json(response)
    detail = _detail_text(body.get("detail")) if isinstance(body, Mapping) else f"HTTP {response.status_code}"
    failure = _failure(body) if isinstance(body, Mapping) else None
    return status_error(
        response.status_code,
        detail,
        response.headers,
        provider=_PROVIDER,
        key_setting=_KEY_SETTING,
        job_id=job_id,
        moderation=failure.message if failure is not None and failure.moderated else None,
    )


def _expired(job_id: str) -> JobNotFound:
    return JobNotFound(f"The clip for fal job {job_id!r} is no longer available (fal's file links expire).")


def _unknown(job_id: str) -> ProviderJob:
    return ProviderJob(
        job_id=job_id,
        status=JobStatus.FAILED,
        error=f"fal has no request {job_id!r}: it was never submitted there, or it has expired.",
    )


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _object(response: httpx.Response) -> Mapping[str, Any]:
    body = _json(response)
    if not isinstance(body, Mapping):
        raise ProviderError(
            f"fal answered {response.request.method} {response.url.path} with something other than a JSON "
            "object."
        )
    return body
