"""The OpenAI-compatible `/v1/videos` provider: the openai SDK's `client.videos` behind `VideoProvider`."""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import httpx
import openai
from openai.types import Video, VideoSeconds, VideoSize

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

_DEFAULT_BASE_URL = "https://api.openai.com/v1"
_SECONDS: dict[int, VideoSeconds] = {4: "4", 8: "8", 12: "12"}
_STATUSES = {
    "queued": JobStatus.QUEUED,
    "in_progress": JobStatus.IN_PROGRESS,
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
}
# Moderation blocks arrive either as a 400 on create or as a job that later fails with one of these codes.
_MODERATION_CODES = frozenset({"moderation_blocked", "sentinel_block"})
_CHUNK_BYTES = 1 << 20
_PROVIDER = "The video gateway"
_KEY_SETTING = "OPENAI_API_KEY"
# Listing after a lost create: the newest videos first, a page at a time, until they predate the create.
# A handful of pages covers any burst a round makes; more would only cost requests.
_LIST_PAGE_SIZE = 100
_LIST_PAGES = 5
# `since` is our clock, `created_at` the gateway's: allow them to disagree by a minute.
_CLOCK_SLACK = 60.0


class OpenAICompatibleProvider:
    """`/v1/videos` on OpenAI or any gateway serving its shape; native remix and extend.

    The SDK never retries here (`max_retries=0`): it sends no idempotency key, so a retried create can
    start and bill a second job, and the sweep already retries reads with backoff and the gateway's hints.
    Call `close()` when done with a provider that built its own HTTP client.
    """

    name: str = "openai"
    capabilities: frozenset[Capability] = frozenset(
        {Capability.TEXT_TO_VIDEO, Capability.IMAGE_TO_VIDEO, Capability.REMIX, Capability.EXTEND}
    )

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str = "sora-2",
        http_client: httpx.Client | None = None,
        price_per_second: float = 0.10,
        timeout: float = 60.0,
        max_clip_bytes: int = MAX_CLIP_BYTES,
    ) -> None:
        self._model = model
        self._price_per_second = price_per_second
        self._max_clip_bytes = max_clip_bytes
        self._owns_client = http_client is None
        self._client = openai.OpenAI(
            api_key=api_key,
            # Explicit, so the SDK never falls back to reading OPENAI_BASE_URL itself (config.py owns the env).
            base_url=base_url or _DEFAULT_BASE_URL,
            max_retries=0,
            # A client passed in brings its own timeouts, as it does for the httpx-based providers.
            timeout=timeout if http_client is None else openai.not_given,
            # Typed for httpx2 only, but a plain httpx.Client is accepted at runtime (openai.md §1).
            http_client=cast(Any, http_client),
        )

    def submit(self, request: GenerationRequest) -> ProviderJob:
        seconds = snap(request.seconds, _SECONDS)
        reference = openai.omit if request.reference_image is None else _reference(request.reference_image)
        try:
            with _sora_calls():
                raw = self._client.videos.with_raw_response.create(
                    prompt=request.prompt,
                    model=request.model or self._model,
                    seconds=_SECONDS[seconds],
                    # The literal lists OpenAI's sizes; gateways take others (e.g. 1024x1024) unchanged.
                    size=cast(VideoSize, request.size),
                    input_reference=reference,
                )
        except openai.OpenAIError as err:
            raise _provider_error(err, creating=True) from err
        return _job(raw.parse(), poll_after=_poll_after(raw.headers))

    def submitted_jobs(self, request: GenerationRequest, *, since: float) -> list[ProviderJob]:
        """The videos an unanswered create may have made: same prompt, size and model, created since
        `since` (less a minute of clock slack), oldest first.

        The API takes no idempotency key and keeps no client reference (`reference` stays None), so after
        a lost answer this listing is the only way to learn whether the job exists without paying for a
        second one. The list is newest first; pages are followed while they are newer than the cut-off.
        """
        cutoff = since - _CLOCK_SLACK
        model = request.model or self._model
        found: list[ProviderJob] = []
        after: str | openai.Omit = openai.omit
        for _ in range(_LIST_PAGES):
            try:
                with _sora_calls():
                    page = self._client.videos.list(limit=_LIST_PAGE_SIZE, order="desc", after=after)
            except openai.OpenAIError as err:
                raise _provider_error(err) from err
            reached_cutoff = False
            for video in page.data:
                if _created_at(video) < cutoff:
                    reached_cutoff = True
                    break
                if _matches(video, request, model=model):
                    found.append(_job(video, poll_after=None))
            if reached_cutoff or page.has_more is False or not page.last_id:
                break
            after = page.last_id
        # Newest first as listed; a stable sort of the reversed list keeps same-second videos in order.
        return sorted(reversed(found), key=lambda job: job.created_at or 0.0)

    def fetch(self, job_id: str) -> ProviderJob:
        if not _usable(job_id):
            return _unknown(job_id)
        try:
            with _sora_calls():
                raw = self._client.videos.with_raw_response.retrieve(job_id)
        except openai.NotFoundError:
            return _unknown(job_id)
        except openai.OpenAIError as err:
            raise _provider_error(err, job_id=job_id) from err
        return _job(raw.parse(), poll_after=_poll_after(raw.headers))

    def download(self, job_id: str, into: Path) -> Path:
        if not _usable(job_id):
            raise JobNotFound(f"{job_id!r} is not a video job id.")
        target = target_path(into, job_id)
        try:
            with (
                _sora_calls(),
                self._client.videos.with_streaming_response.download_content(
                    job_id, variant="video"
                ) as response,
            ):
                return write_atomically(
                    response.iter_bytes(_CHUNK_BYTES), target, max_bytes=self._max_clip_bytes
                )
        except openai.APIStatusError as err:
            if err.status_code in (404, 410):
                raise JobNotFound(
                    f"The clip for job {job_id!r} is no longer available at the video gateway "
                    "(download links expire about an hour after the job finishes)."
                ) from err
            raise _provider_error(err, job_id=job_id) from err
        except openai.OpenAIError as err:
            raise _provider_error(err, job_id=job_id) from err

    def cancel(self, job_id: str) -> None:
        if not _usable(job_id):
            return
        try:
            with _sora_calls():
                self._client.videos.delete(job_id)
        except openai.NotFoundError:
            return  # already gone: nothing left to stop
        except openai.OpenAIError as err:
            raise _provider_error(err, job_id=job_id) from err

    def remix(self, job_id: str, prompt: str) -> ProviderJob:
        """Start a native remix of a finished job with one changed prompt (JSON `POST /videos/{id}/remix`)."""
        if not _usable(job_id):
            raise JobNotFound(f"{job_id!r} is not a video job id.")
        try:
            with _sora_calls():
                raw = self._client.videos.with_raw_response.remix(job_id, prompt=prompt)
        except openai.OpenAIError as err:
            raise _provider_error(err, creating=True, job_id=job_id) from err
        return _job(raw.parse(), poll_after=_poll_after(raw.headers))

    def extend(self, job_id: str, prompt: str, *, seconds: int) -> ProviderJob:
        """Continue a finished job by about `seconds` (snapped to 4/8/12); the prompt describes the next beat."""
        body = {"prompt": prompt, "seconds": _SECONDS[snap(seconds, _SECONDS)], "video": {"id": job_id}}
        try:
            # `videos.extend(video={"id": …})` fails inside the SDK before sending (openai.md §2.2);
            # the documented JSON route works.
            video = self._client.post("/videos/extensions", body=body, cast_to=Video)
        except openai.OpenAIError as err:
            raise _provider_error(err, creating=True, job_id=job_id) from err
        return _job(video, poll_after=None)

    def cost_per_second(self, model: str | None) -> float:
        return self._price_per_second

    def close(self) -> None:
        """Close the HTTP client this provider built; a client passed in belongs to the caller."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> OpenAICompatibleProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def _sora_calls() -> Iterator[None]:
    # Every `client.videos` method warns that OpenAI's own Sora API shut down; gateways still serve the
    # shape, so the warning tells an operator nothing (and `-W error` would turn it into a failure).
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="The Sora API is scheduled to permanently shut down",
            category=DeprecationWarning,
        )
        yield


def _job(video: Video, *, poll_after: float | None) -> ProviderJob:
    # The SDK builds responses without validation, so a gateway that omits a field leaves it unset.
    raw_status = str(getattr(video, "status", "") or "")
    status = _STATUSES.get(raw_status)
    if status is None:
        # Like the SDK's own `poll`, any status outside the four is terminal (gateways add e.g. `cancelled`).
        log.info("video gateway reported status %r for %s; treating it as cancelled", raw_status, video.id)
        return ProviderJob(
            job_id=video.id,
            status=JobStatus.CANCELLED,
            error=f"The video gateway reports this job as {raw_status or 'unknown'}.",
            error_code=raw_status or None,
            created_at=_created_at(video) or None,
        )
    error: str | None = None
    error_code: str | None = None
    if status == JobStatus.FAILED:
        failure = getattr(video, "error", None)
        error_code = getattr(failure, "code", None) or None
        message = getattr(failure, "message", None) or "The video gateway gave no reason."
        error = _moderation_message(message) if error_code in _MODERATION_CODES else message
    progress = getattr(video, "progress", 0) or 0
    return ProviderJob(
        job_id=video.id,
        status=status,
        progress=100 if status == JobStatus.COMPLETED else max(0, min(100, int(progress))),
        error=error,
        error_code=error_code,
        poll_after=poll_after,
        seconds=_seconds(getattr(video, "seconds", None)),
        created_at=_created_at(video) or None,
    )


def _usable(job_id: str) -> bool:
    # The SDK refuses empty ids and dot segments with a ValueError; to the core they are simply unknown.
    return job_id not in ("", ".", "..")


def _unknown(job_id: str) -> ProviderJob:
    return ProviderJob(
        job_id=job_id,
        status=JobStatus.FAILED,
        error=f"The video gateway has no job {job_id!r}: it was never created there, or it was deleted.",
    )


def _created_at(video: Video) -> float:
    # The SDK builds responses without validation: a gateway may omit the field or send it as text.
    try:
        return float(getattr(video, "created_at", 0) or 0)
    except (TypeError, ValueError):
        return 0.0


def _matches(video: Video, request: GenerationRequest, *, model: str) -> bool:
    # A gateway that leaves out the model still lists the video; prompt and size must agree exactly.
    listed_model = getattr(video, "model", None)
    return (
        getattr(video, "prompt", None) == request.prompt
        and getattr(video, "size", None) == request.size
        and (not listed_model or listed_model == model)
    )


def _provider_error(
    err: openai.OpenAIError, *, creating: bool = False, job_id: str | None = None
) -> ProviderError:
    """The SDK's exception as the shared mapping sees it: a transport failure, or an HTTP status."""
    if isinstance(err, openai.APIConnectionError):  # also APITimeoutError
        return transport_error(err, provider=_PROVIDER, creating=creating)
    if not isinstance(err, openai.APIStatusError):
        return ProviderError(f"The video gateway's answer could not be read: {err}")
    detail = _detail(err)
    return status_error(
        err.status_code,
        detail,
        err.response.headers,
        provider=_PROVIDER,
        key_setting=_KEY_SETTING,
        job_id=job_id,
        moderation=_moderation_message(detail) if err.code in _MODERATION_CODES else None,
    )


def _moderation_message(detail: str) -> str:
    return (
        f"The provider's moderation blocked this video ({detail.rstrip('.')}). Rephrase the prompt without "
        "real people, copyrighted characters or music, or graphic content, and try again."
    )


def _detail(err: openai.APIStatusError) -> str:
    body = err.body
    if isinstance(body, Mapping):
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
    return f"HTTP {err.status_code}"


def _reference(path: Path) -> tuple[str, bytes, str]:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return path.name, path.read_bytes(), mime


def _poll_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("openai-poll-after-ms")
    try:
        return max(0.0, float(value) / 1000) if value else None
    except ValueError:
        return None


def _seconds(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
