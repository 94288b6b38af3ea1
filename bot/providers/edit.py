"""The edit "provider": recut, loop and blend made from finished clips with ffmpeg, through the same lifecycle
as any generation (leases, posting) so an edit is votable like the rest."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from pathlib import Path

from bot import media
from bot.domain import Capability, Edit, GenerationKind, GenerationRequest, JobStatus, ProviderJob
from bot.errors import JobNotFound, ProviderError
from bot.providers.transfer import target_path

_JOB_ID_RE = re.compile(r"^edit-[0-9a-f]{16}$")


class EditProvider:
    """Does its ffmpeg work in `submit`, which returns a finished job: an edit takes seconds, so there is
    nothing to poll for, and a sweep that only fetches never starts media work behind the core's back.
    `fetch` reports what exists and `download` copies it."""

    name = "edit"
    capabilities: frozenset[Capability] = frozenset()
    internal = True  # made by replies in a thread, never chosen for a draft

    def __init__(self, work_dir: Path) -> None:
        self._jobs = work_dir / "jobs"
        self._clips = work_dir / "clips"
        self._jobs.mkdir(parents=True, exist_ok=True)
        self._clips.mkdir(parents=True, exist_ok=True)

    def submit(self, request: GenerationRequest) -> ProviderJob:
        """Make the clip now. Raises ProviderError when the sources cannot be edited (nothing is kept)."""
        edit = request.edit
        if edit is None or not request.sources:
            raise ProviderError("An edit needs a finished clip to work from.")
        job_id = _job_id(request)
        existing = self._job(job_id)
        if existing is not None:  # a repeated submit lands on the same, finished job and does no work
            return existing
        clip = self._clips / f"{job_id}.mp4"
        try:
            _run(edit, request.sources, clip)
            seconds = round(media.probe(clip).duration)
        except media.MediaError as err:
            clip.unlink(missing_ok=True)
            raise ProviderError(f"The {edit.kind.value} could not be made: {err}") from err
        record = {
            "kind": edit.kind.value,
            "start": edit.start,
            "end": edit.end,
            "sources": [str(p) for p in request.sources],
            "seconds": seconds,
        }
        # The record is written last: its presence means the clip beside it is complete.
        _write_atomically(self._jobs / f"{job_id}.json", json.dumps(record).encode())
        return ProviderJob(job_id=job_id, status=JobStatus.COMPLETED, progress=100, seconds=seconds)

    def submitted_jobs(self, request: GenerationRequest, *, since: float) -> list[ProviderJob]:
        """This generation's edit, if a submit made it; the job id derives from the idempotency key."""
        if request.edit is None:
            return []
        job_id = _job_id(request)
        job = self._job(job_id)
        if job is None:
            return []
        created_at = (self._jobs / f"{job_id}.json").stat().st_mtime
        return [
            ProviderJob(
                job_id=job.job_id,
                status=job.status,
                progress=job.progress,
                seconds=job.seconds,
                reference=request.idempotency_key,
                created_at=created_at,
            )
        ]

    def fetch(self, job_id: str) -> ProviderJob:
        job = self._job(job_id)
        if job is None:
            return ProviderJob(
                job_id=job_id,
                status=JobStatus.FAILED,
                error=f"There is no edit {job_id!r}: it was never made here.",
            )
        return job

    def download(self, job_id: str, into: Path) -> Path:
        if self._job(job_id) is None:
            raise JobNotFound(f"There is no edit {job_id!r}: it was never made here.")
        target = target_path(into, job_id)
        shutil.copyfile(self._clips / f"{job_id}.mp4", target)
        return target

    def cancel(self, job_id: str) -> None:
        """Nothing to stop: an edit is finished by the time its job exists, and it costs nothing to keep."""

    def cost_per_second(self, model: str | None) -> float:
        return 0.0

    def _job(self, job_id: str) -> ProviderJob | None:
        # Job ids come back from the database; only our own shape may become a file name.
        if not _JOB_ID_RE.match(job_id):
            return None
        record_file, clip = self._jobs / f"{job_id}.json", self._clips / f"{job_id}.mp4"
        if not (record_file.exists() and clip.exists()):
            return None
        record = json.loads(record_file.read_text())
        seconds = record.get("seconds") if isinstance(record, dict) else None
        return ProviderJob(
            job_id=job_id,
            status=JobStatus.COMPLETED,
            progress=100,
            seconds=seconds if isinstance(seconds, int) else round(media.probe(clip).duration),
        )


def _job_id(request: GenerationRequest) -> str:
    digest = hashlib.sha256(
        f"{request.idempotency_key}|{request.edit}|{request.sources}".encode()
    ).hexdigest()
    return f"edit-{digest[:16]}"


def _run(edit: Edit, sources: tuple[Path, ...], out: Path) -> None:
    if edit.kind == GenerationKind.RECUT:
        media.trim(sources[0], out, start=edit.start or 0.0, end=edit.end or 0.0)
    elif edit.kind == GenerationKind.LOOP:
        media.loop(sources[0], out, mode="crossfade")
    elif edit.kind == GenerationKind.BLEND:
        if len(sources) < 2:
            raise media.MediaError("a blend needs two finished clips")
        media.crossfade(sources[0], sources[1], out, seconds=1.0)
    else:
        raise media.MediaError(f"{edit.kind.value} is not an edit")


def _write_atomically(path: Path, content: bytes) -> None:
    """Write via a temporary sibling and a rename, so a crash never leaves half a record."""
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(6)}.partial")
    try:
        tmp.write_bytes(content)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
