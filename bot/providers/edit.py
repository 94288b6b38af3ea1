"""The edit "provider": recut, loop and blend made from finished clips with ffmpeg, through the same lifecycle
as any generation (queued → in_progress → completed, leases, posting) so an edit is votable like the rest."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from bot import media
from bot.domain import Capability, GenerationKind, GenerationRequest, JobStatus, ProviderJob
from bot.errors import ProviderError


class EditProvider:
    name = "edit"
    capabilities: frozenset[Capability] = frozenset()
    internal = True  # made by replies in a thread, never chosen for a draft

    def __init__(self, work_dir: Path) -> None:
        self._jobs = work_dir / "jobs"
        self._clips = work_dir / "clips"
        self._jobs.mkdir(parents=True, exist_ok=True)
        self._clips.mkdir(parents=True, exist_ok=True)

    def submit(self, request: GenerationRequest) -> ProviderJob:
        if request.edit is None or not request.sources:
            raise ProviderError("An edit needs a finished clip to work from.", code="bad_edit")
        job_id = _job_id(request)
        job = {
            "kind": request.edit.kind.value,
            "start": request.edit.start,
            "end": request.edit.end,
            "sources": [str(p) for p in request.sources],
        }
        path = self._jobs / f"{job_id}.json"
        if not path.exists():  # a repeated submit lands on the same job
            path.write_text(json.dumps(job))
        return ProviderJob(job_id=job_id, status=JobStatus.QUEUED, poll_after=0.0)

    def find_submitted(self, request: GenerationRequest, *, since: float) -> ProviderJob | None:
        job_id = _job_id(request)
        return self.fetch(job_id) if (self._jobs / f"{job_id}.json").exists() else None

    def fetch(self, job_id: str) -> ProviderJob:
        path = self._jobs / f"{job_id}.json"
        if not path.exists():
            return ProviderJob(
                job_id=job_id, status=JobStatus.FAILED, error="No such edit.", error_code="unknown_job"
            )
        out = self._clips / f"{job_id}.mp4"
        if not out.exists():
            job = json.loads(path.read_text())
            try:
                _run(job, out)
            except media.MediaError as err:
                return ProviderJob(
                    job_id=job_id, status=JobStatus.FAILED, error=str(err), error_code="edit_failed"
                )
        seconds = round(media.probe(out).duration)
        return ProviderJob(job_id=job_id, status=JobStatus.COMPLETED, progress=100, seconds=seconds)

    def download(self, job_id: str, into: Path) -> Path:
        out = self._clips / f"{job_id}.mp4"
        if not out.exists():
            raise ProviderError("The edit is not finished yet.", code="not_ready", retryable=True)
        into.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, into)
        return into

    def cancel(self, job_id: str) -> None:
        (self._jobs / f"{job_id}.json").unlink(missing_ok=True)

    def cost_per_second(self, model: str | None) -> float:
        return 0.0


def _job_id(request: GenerationRequest) -> str:
    digest = hashlib.sha256(
        f"{request.idempotency_key}|{request.edit}|{request.sources}".encode()
    ).hexdigest()
    return f"edit-{digest[:16]}"


def _run(job: dict[str, object], out: Path) -> None:
    sources = [Path(str(p)) for p in _list(job.get("sources"))]
    kind = GenerationKind(str(job["kind"]))
    if kind == GenerationKind.RECUT:
        media.trim(sources[0], out, start=_number(job.get("start")), end=_number(job.get("end")))
    elif kind == GenerationKind.LOOP:
        media.loop(sources[0], out, mode="crossfade")
    elif kind == GenerationKind.BLEND:
        media.crossfade(sources[0], sources[1], out, seconds=1.0)
    else:
        raise media.MediaError(f"{kind.value} is not an edit")


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
