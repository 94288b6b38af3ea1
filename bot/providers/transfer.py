"""What every hosted provider adapter shares: HTTP failures as exceptions, rate-limit hints, duration snapping
and safe clip downloads."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from bot.errors import (
    AuthFailed,
    JobNotFound,
    Moderated,
    NotAClip,
    OutcomeUnknown,
    ProviderError,
    ProviderTimedOut,
    ProviderUnavailable,
    RateLimited,
)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
# httpx and httpx2 (under the openai SDK) both name the failures that happen before a request leaves the
# machine like this; anything later may have reached the provider.
_NEVER_SENT = frozenset({"ConnectError", "ConnectTimeout"})
# The default largest clip a download may be (SORA_BOT_MAX_CLIP_MB): a few seconds of 1080p is a few MB.
MAX_CLIP_BYTES = 100 << 20


def status_error(
    status: int,
    detail: str,
    headers: Mapping[str, str],
    *,
    provider: str,
    key_setting: str,
    job_id: str | None = None,
    moderation: str | None = None,
    retry_hint: float | None = None,
) -> ProviderError:
    """The exception for an HTTP error answer from `provider` (named as it starts a sentence, e.g. "fal").

    `detail` is the provider's own reason in plain words. `key_setting` is the setting that holds the key,
    named when the key is refused. `job_id` is the job the request was about (a 404 then means the provider
    does not know it); None for a create, where a 404 means a wrong model or base URL. `moderation` is the
    message to show when the adapter recognised a safety refusal in the body. `retry_hint` is a delay the
    provider sent in its body (Google's RetryInfo), used when no Retry-After header came.
    """
    wait = retry_after(headers)
    wait = retry_hint if wait is None else wait
    if status == 429:
        return RateLimited(f"{provider} is rate limiting us: {detail}", retry_after=wait)
    if status in (401, 403):
        return AuthFailed(f"{provider} refused our key (HTTP {status}: {detail}); check {key_setting}.")
    if status == 408:
        return ProviderTimedOut(f"{provider} timed out reading the request (HTTP 408); trying again later.")
    if status >= 500:
        return ProviderUnavailable(
            f"{provider} failed (HTTP {status}: {detail}); trying again later.", retry_after=wait
        )
    if status in (404, 410) and job_id is not None:
        return JobNotFound(f"{provider} has no job {job_id!r} (HTTP {status}: {detail}).")
    if moderation is not None:
        return Moderated(moderation)
    # A 409 is a conflict on the provider's side (e.g. a lock) that clears by itself.
    return ProviderError(f"{provider} refused the request (HTTP {status}): {detail}", retryable=status == 409)


def transport_error(err: BaseException, *, provider: str, creating: bool = False) -> ProviderError:
    """The exception for a request to `provider` that got no answer (a timeout, a refused or dropped
    connection) from httpx, httpx2 or the openai SDK. `creating`: the request would have started a job."""
    name = type(err).__name__
    if _never_sent(err):
        return ProviderUnavailable(f"{provider} could not be reached ({name}); trying again later.")
    if creating:
        # The request left: the job may exist (and bill). Resending blindly could make (and bill) two.
        return OutcomeUnknown(
            f"{provider} did not answer the create request after it was sent, so the job may or may not "
            "exist there (and may be billed). It was not sent again automatically."
        )
    return ProviderTimedOut(
        f"{provider} did not answer in time or dropped the connection ({name}); trying again later."
    )


def _never_sent(err: BaseException) -> bool:
    cause: BaseException | None = err
    while cause is not None:
        if any(cls.__name__ in _NEVER_SENT for cls in type(cause).__mro__):
            return True
        cause = cause.__cause__
    return False


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if milliseconds := headers.get("retry-after-ms"):
        with contextlib.suppress(ValueError):
            return max(0.0, float(milliseconds) / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    return None


def snap(seconds: int, allowed: Iterable[int]) -> int:
    """The nearest allowed duration; a tie goes to the longer one, so the action still fits."""
    return min(allowed, key=lambda option: (abs(option - seconds), -option))


def target_path(into: Path, job_id: str) -> Path:
    """`into` itself, or a file named after the job when `into` is a folder."""
    target = Path(into)
    if target.is_dir():
        target = target / f"{_SAFE_NAME.sub('_', job_id)[-80:] or 'video'}.mp4"
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def write_atomically(chunks: Iterable[bytes], target: Path, *, max_bytes: int = MAX_CLIP_BYTES) -> Path:
    """Stream into a temporary sibling, then rename: a broken download never looks like a finished clip.

    Clips are streamed chunk by chunk, never held whole in memory, and the download stops at `max_bytes`: a
    provider that sends far more than a clip is not filling our disk or Slack.
    """
    partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
    written = 0
    try:
        with partial.open("wb") as out:
            try:
                for chunk in chunks:
                    written += len(chunk)
                    if written > max_bytes:
                        raise NotAClip(too_big(max_bytes))
                    out.write(chunk)
            except (ProviderError, OSError):
                raise
            except Exception as err:
                # Bodies stream outside each client's error mapping, so a dropped connection arrives as a raw
                # transport exception (httpx or httpx2); the clip is incomplete either way.
                raise ProviderUnavailable(
                    f"The clip download was interrupted ({type(err).__name__}); trying again later."
                ) from err
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def too_big(max_bytes: int) -> str:
    """Why a clip larger than `max_bytes` was refused."""
    return (
        f"The provider sent more than {max_bytes / (1 << 20):g} MB for this clip, so the download was stopped "
        "(the limit is SORA_BOT_MAX_CLIP_MB); reply `again` to try once more."
    )
