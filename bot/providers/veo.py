"""The Google Veo provider: Gemini API long-running operations over httpx, behind `VideoProvider`.

It does not implement `JobFinder` (`submitted_jobs`): the Gemini API has no way to list the operations a key
started (only get and cancel by name), so a request whose answer was lost cannot be looked up here.

It sends no seed either: on the Gemini API Veo takes none (Google's own Gen AI SDK refuses `seed` for video
in Gemini Developer API mode and maps it to `parameters.seed` only on Vertex AI), so variations differ by
Veo's own sampling.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import mimetypes
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from bot.domain import Aspect, Capability, GenerationRequest, JobStatus, ProviderJob
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

_DURATIONS = (4, 6, 8)
_ASPECTS = {Aspect.LANDSCAPE: "16:9", Aspect.PORTRAIT: "9:16"}
# Google's own examples poll every 10 s and operations carry no progress; asking sooner only costs quota.
_POLL_SECONDS = 10.0
_CHUNK_BYTES = 1 << 20
_MAX_REDIRECTS = 5
# An operation name (`models/<model>/operations/<id>`); job ids come back from the database, so nothing
# else may reach a URL that carries our key.
_OPERATION = re.compile(r"^(?:[A-Za-z0-9._-]+/)*operations/[A-Za-z0-9._-]+$")
_DOT_SEGMENTS = frozenset({".", ".."})
# google.rpc.Code CANCELLED: the operation was cancelled, not failed.
_RPC_CANCELLED = 1
_PROVIDER = "Veo"
_KEY_SETTING = "GEMINI_API_KEY"


class VeoProvider:
    """Google Veo through the Gemini API (`predictLongRunning`, then the operation, then the file).

    Call `close()` when done with a provider that built its own HTTP client.
    """

    name: str = "veo"
    capabilities: frozenset[Capability] = frozenset({Capability.TEXT_TO_VIDEO, Capability.IMAGE_TO_VIDEO})

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "https://generativelanguage.googleapis.com",
        model: str = "veo-3.1-fast-generate-preview",
        http_client: httpx.Client | None = None,
        price_per_second: float = 0.15,
        timeout: float = 60.0,
        max_clip_bytes: int = MAX_CLIP_BYTES,
    ) -> None:
        self._base = httpx.URL(base_url.rstrip("/") + "/")
        self._model = model
        self._key = {"x-goog-api-key": api_key}
        self._price_per_second = price_per_second
        self._max_clip_bytes = max_clip_bytes
        self._owns_client = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)

    def submit(self, request: GenerationRequest) -> ProviderJob:
        seconds = snap(request.seconds, _DURATIONS)
        aspect = _ASPECTS.get(request.aspect)
        if aspect is None:
            log.info(
                "Veo has no %s frame; variation %s is generated at 16:9", request.aspect, request.variation
            )
            aspect = "16:9"
        instance: dict[str, object] = {"prompt": request.prompt}
        if request.reference_image is not None:
            path = request.reference_image
            instance["image"] = {
                "bytesBase64Encoded": base64.b64encode(path.read_bytes()).decode("ascii"),
                "mimeType": mimetypes.guess_type(path.name)[0] or "image/png",
            }
        body = {
            "instances": [instance],
            "parameters": {"aspectRatio": aspect, "resolution": "720p", "durationSeconds": seconds},
        }
        url = self._base.join(f"v1beta/models/{request.model or self._model}:predictLongRunning")
        try:
            response = self._http.post(url, json=body, headers=self._key)
        except httpx.TransportError as err:
            raise transport_error(err, provider=_PROVIDER, creating=True) from err
        if response.is_error:
            raise _status_error(response)
        name = _object(response).get("name")
        if not isinstance(name, str) or not _is_operation(name):
            raise ProviderError(
                f"Veo accepted the request but named its operation {name!r}, which cannot be followed."
            )
        return ProviderJob(
            job_id=name, status=JobStatus.IN_PROGRESS, poll_after=_POLL_SECONDS, seconds=seconds
        )

    def fetch(self, job_id: str) -> ProviderJob:
        operation = self._operation(job_id)
        if operation is None:
            return ProviderJob(
                job_id=job_id,
                status=JobStatus.FAILED,
                error=f"Veo has no operation {job_id!r}: it was never started there, or it has expired.",
            )
        if not operation.get("done"):
            return ProviderJob(job_id=job_id, status=JobStatus.IN_PROGRESS, poll_after=_POLL_SECONDS)
        error = operation.get("error")
        if isinstance(error, Mapping):
            cancelled = error.get("code") == _RPC_CANCELLED
            return ProviderJob(
                job_id=job_id,
                status=JobStatus.CANCELLED if cancelled else JobStatus.FAILED,
                error=f"Veo could not make this video: {error.get('message') or 'no reason given'}",
                error_code=str(error.get("status") or error.get("code") or "") or None,
            )
        if _video_uri(operation) is not None:
            return ProviderJob(job_id=job_id, status=JobStatus.COMPLETED, progress=100)
        reasons = _filtered_reasons(operation)
        if reasons is not None:
            return ProviderJob(
                job_id=job_id,
                status=JobStatus.FAILED,
                error=(
                    f"Veo's safety filters (moderation) blocked this video: {reasons}. Rephrase the prompt "
                    "without real people, children, brands or graphic content, and try again."
                ),
            )
        return ProviderJob(
            job_id=job_id,
            status=JobStatus.FAILED,
            error="Veo finished the operation but returned no video.",
        )

    def download(self, job_id: str, into: Path) -> Path:
        operation = self._operation(job_id)
        if operation is None:
            raise _expired(job_id)
        uri = _video_uri(operation)
        if uri is None:
            raise ProviderError(f"Veo operation {job_id!r} has no finished video yet.", retryable=True)
        target = target_path(into, job_id)
        url = self._base.join(uri)
        try:
            for _ in range(_MAX_REDIRECTS + 1):
                # The file URL wants our key and redirects to the bytes; the key goes only to the API's own
                # origin, never to wherever a redirect points.
                headers = self._key if _origin(url) == _origin(self._base) else {}
                with self._http.stream("GET", url, headers=headers, follow_redirects=False) as response:
                    if response.is_redirect:
                        url = url.join(response.headers["location"])
                        continue
                    if response.status_code in (404, 410):
                        raise _expired(job_id)
                    if response.is_error:
                        response.read()
                        raise _status_error(response, job_id=job_id)
                    return write_atomically(
                        response.iter_bytes(_CHUNK_BYTES), target, max_bytes=self._max_clip_bytes
                    )
        except httpx.TransportError as err:
            raise transport_error(err, provider=_PROVIDER) from err
        raise ProviderError(f"Veo's download of {job_id!r} redirected too many times.")

    def cancel(self, job_id: str) -> None:
        if not _is_operation(job_id):
            return
        try:
            response = self._http.post(self._base.join(f"v1beta/{job_id}:cancel"), headers=self._key)
        except httpx.TransportError as err:
            raise transport_error(err, provider=_PROVIDER) from err
        # Best effort: the Gemini API may not implement cancel (501) or may have forgotten the operation.
        if response.is_error and response.status_code not in (404, 501):
            raise _status_error(response, job_id=job_id)

    def cost_per_second(self, model: str | None) -> float:
        return self._price_per_second

    def close(self) -> None:
        """Close the HTTP client this provider built; a client passed in belongs to the caller."""
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> VeoProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _operation(self, job_id: str) -> Mapping[str, Any] | None:
        """The operation's JSON, or None when Veo does not know it (or the id is not an operation name)."""
        if not _is_operation(job_id):
            return None
        try:
            response = self._http.get(self._base.join(f"v1beta/{job_id}"), headers=self._key)
        except httpx.TransportError as err:
            raise transport_error(err, provider=_PROVIDER) from err
        if response.status_code == 404:
            return None
        if response.is_error:
            raise _status_error(response, job_id=job_id)
        return _object(response)


def _is_operation(name: str) -> bool:
    return bool(_OPERATION.match(name)) and not _DOT_SEGMENTS.intersection(name.split("/"))


def _video_uri(operation: Mapping[str, Any]) -> str | None:
    samples = _generate_video_response(operation).get("generatedSamples")
    if not isinstance(samples, list) or not samples or not isinstance(samples[0], Mapping):
        return None
    video = samples[0].get("video")
    uri = video.get("uri") if isinstance(video, Mapping) else None
    return uri if isinstance(uri, str) and uri else None


def _filtered_reasons(operation: Mapping[str, Any]) -> str | None:
    """Why Veo's responsible-AI filters dropped the video, when they did (the operation still succeeds)."""
    result = _generate_video_response(operation)
    reasons = result.get("raiMediaFilteredReasons")
    if isinstance(reasons, list) and reasons:
        return " ".join(str(reason) for reason in reasons)
    count = result.get("raiMediaFilteredCount")
    return "no reason given" if isinstance(count, int) and count > 0 else None


def _generate_video_response(operation: Mapping[str, Any]) -> Mapping[str, Any]:
    response = operation.get("response")
    result = response.get("generateVideoResponse") if isinstance(response, Mapping) else None
    return result if isinstance(result, Mapping) else {}


def _status_error(response: httpx.Response, *, job_id: str | None = None) -> ProviderError:
    status = response.status_code
    error = _error_object(response)
    reasons = {
        str(detail.get("reason"))
        for detail in error.get("details") or []
        if isinstance(detail, Mapping) and detail.get("reason")
    }
    # Google answers a bad key with 400 and the reason API_KEY_INVALID: it means what a 401 means.
    return status_error(
        401 if "API_KEY_INVALID" in reasons else status,
        str(error.get("message") or f"HTTP {status}"),
        response.headers,
        provider=_PROVIDER,
        key_setting=_KEY_SETTING,
        job_id=job_id,
        retry_hint=_retry_delay(error),
    )


def _error_object(response: httpx.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, Mapping) else None
    return error if isinstance(error, Mapping) else {}


def _retry_delay(error: Mapping[str, Any]) -> float | None:
    """`google.rpc.RetryInfo.retryDelay` (e.g. "30s"), which Google sends instead of a Retry-After header."""
    for detail in error.get("details") or []:
        delay = detail.get("retryDelay") if isinstance(detail, Mapping) else None
        if isinstance(delay, str) and delay.endswith("s"):
            with contextlib.suppress(ValueError):
                return max(0.0, float(delay[:-1]))
    return None


def _expired(job_id: str) -> JobNotFound:
    return JobNotFound(
        f"The clip for Veo operation {job_id!r} is no longer available (Google keeps generated files only "
        "for a limited time)."
    )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _object(response: httpx.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        raise ProviderError(
            f"Veo answered {response.request.method} {response.url.path} with something other than a JSON "
            "object."
        )
    return body
