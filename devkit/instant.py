"""An instant video provider for tests and benches: every job is done at once, from one small clip per size.

The clip is made once per process with ffmpeg (a few KB, the requested length and aspect), so workflow and Slack
tests exercise the whole lifecycle without paying for a render per variation. It keeps what it was asked, so a
test can count provider jobs per generation.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bot import media
from bot.domain import Aspect, Capability, GenerationRequest, JobStatus, ProviderJob
from bot.errors import JobNotFound

_CLIPS: dict[tuple[Aspect, int], Path] = {}
_CLIPS_LOCK = threading.Lock()
_CLIP_DIR: Path | None = None


def instant_clip(aspect: Aspect, seconds: int) -> Path:
    """A small real H.264 clip of `seconds` at `aspect`, made once per process."""
    global _CLIP_DIR
    with _CLIPS_LOCK:
        found = _CLIPS.get((aspect, seconds))
        if found is not None and found.exists():
            return found
        if _CLIP_DIR is None:
            _CLIP_DIR = Path(tempfile.mkdtemp(prefix="instant-clips-"))
        width, height = aspect.dimensions
        size = f"{width // 8 // 2 * 2}x{height // 8 // 2 * 2}"
        out = _CLIP_DIR / f"{aspect.name.lower()}-{seconds}s.mp4"
        subprocess.run(
            [
                media.ffmpeg_exe(),
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"testsrc=size={size}:rate=12:duration={seconds}",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-preset",
                "ultrafast",
                str(out),
            ],
            check=True,
            capture_output=True,
        )
        _CLIPS[(aspect, seconds)] = out
        return out


@dataclass
class InstantProvider:
    """A `VideoProvider` (and `JobFinder`) whose jobs finish the moment they are submitted."""

    name: str = "local"
    capabilities: frozenset[Capability] = frozenset({Capability.TEXT_TO_VIDEO, Capability.IMAGE_TO_VIDEO})
    submits: list[GenerationRequest] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    _jobs: dict[str, tuple[GenerationRequest, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, request: GenerationRequest) -> ProviderJob:
        job_id = f"instant-{request.idempotency_key}"
        with self._lock:
            self.submits.append(request)
            self._jobs.setdefault(job_id, (request, time.time()))
        return ProviderJob(job_id=job_id, status=JobStatus.QUEUED, seconds=request.seconds, poll_after=0.0)

    def submitted_jobs(self, request: GenerationRequest, *, since: float) -> list[ProviderJob]:
        job_id = f"instant-{request.idempotency_key}"
        with self._lock:
            found = self._jobs.get(job_id)
        if found is None:
            return []
        return [
            ProviderJob(
                job_id=job_id,
                status=JobStatus.COMPLETED,
                progress=100,
                seconds=request.seconds,
                reference=request.idempotency_key,
                created_at=found[1],
            )
        ]

    def fetch(self, job_id: str) -> ProviderJob:
        with self._lock:
            found = self._jobs.get(job_id)
        if found is None:
            return ProviderJob(job_id=job_id, status=JobStatus.FAILED, error="No such job.")
        return ProviderJob(job_id=job_id, status=JobStatus.COMPLETED, progress=100, seconds=found[0].seconds)

    def download(self, job_id: str, into: Path) -> Path:
        with self._lock:
            found = self._jobs.get(job_id)
        if found is None:
            raise JobNotFound(f"No instant job {job_id!r}.")
        into.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(instant_clip(found[0].aspect, found[0].seconds), into)
        return into

    def cancel(self, job_id: str) -> None:
        with self._lock:
            self.cancelled.append(job_id)

    def cost_per_second(self, model: str | None) -> float:
        return 0.0

    def jobs_per_key(self) -> dict[str, int]:
        """How many creates each generation caused (exactly one each, when nothing was sent twice)."""
        counts: dict[str, int] = {}
        with self._lock:
            for request in self.submits:
                counts[request.idempotency_key] = counts.get(request.idempotency_key, 0) + 1
        return counts
