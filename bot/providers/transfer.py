"""What every hosted provider adapter shares: rate-limit hints, duration snapping and safe clip downloads."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from bot.errors import ProviderError

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


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


def write_atomically(chunks: Iterable[bytes], target: Path) -> Path:
    """Stream into a temporary sibling, then rename: a broken download never looks like a finished clip.

    Clips are streamed chunk by chunk, never held whole in memory.
    """
    partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
    try:
        with partial.open("wb") as out:
            try:
                for chunk in chunks:
                    out.write(chunk)
            except (ProviderError, OSError):
                raise
            except Exception as err:
                # Bodies stream outside each client's error mapping, so a dropped connection arrives as a raw
                # transport exception (httpx or httpx2); the clip is incomplete either way.
                raise ProviderError(
                    f"The clip download was interrupted ({type(err).__name__}); trying again later.",
                    retryable=True,
                    code="download_interrupted",
                ) from err
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
