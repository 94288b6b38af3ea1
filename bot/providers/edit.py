"""The edit "provider": recut, loop and blend made from finished clips with ffmpeg, through the same lifecycle
as any generation (leases, posting) so an edit is votable like the rest."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from pathlib import Path

from bot import media
from bot.assets import LocalAssetStore, discard
from bot.domain import Capability, Edit, GenerationKind, GenerationRequest, JobStatus, ProviderJob
from bot.errors import AssetError, AssetMissing, JobNotFound, ProviderError, ProviderUnavailable
from bot.ports import AssetStore
from bot.providers.transfer import target_path

_JOB_ID_RE = re.compile(r"^edit-[0-9a-f]{16}$")


class EditProvider:
    """Does its ffmpeg work in `submit`, which returns a finished job: an edit takes seconds, so there is
    nothing to poll for, and a sweep that only fetches never starts media work behind the core's back.
    `fetch` reports what exists and `download` copies it.

    Its clips and job records are assets: given the deployment's asset store (under `edits/`), an edit one
    replica made is found, reported and downloaded by any other. Without one, they are files in `work_dir`."""

    name = "edit"
    capabilities: frozenset[Capability] = frozenset()
    internal = True  # made by replies in a thread, never chosen for a draft

    def __init__(self, work_dir: Path, *, assets: AssetStore | None = None) -> None:
        self._assets: AssetStore = LocalAssetStore(work_dir) if assets is None else assets
        self._folder = "" if assets is None else "edits/"

    def submit(self, request: GenerationRequest) -> ProviderJob:
        """Make the clip now. Raises ProviderError when the sources cannot be edited (nothing is kept)."""
        edit = request.edit
        if edit is None or not request.sources:
            raise ProviderError("An edit needs a finished clip to work from.")
        job_id = _job_id(request)
        try:
            existing = self._job(job_id)
        except AssetError as err:
            raise ProviderUnavailable(f"The asset store cannot be read just now: {err}") from None
        if existing is not None:  # a repeated submit lands on the same, finished job and does no work
            return existing
        clip = self._assets.scratch(f"{job_id}.mp4")
        try:
            _run(edit, request.sources, clip)
            seconds = round(media.probe(clip).duration)
        except media.MediaError as err:
            discard(clip)
            raise ProviderError(f"The {edit.kind.value} could not be made: {err}") from err
        record = {
            "kind": edit.kind.value,
            "start": edit.start,
            "end": edit.end,
            "sources": [str(p) for p in request.sources],
            "seconds": seconds,
            "created_at": time.time(),
        }
        record_file = self._assets.scratch(f"{job_id}.json")
        record_file.write_bytes(json.dumps(record).encode())
        try:
            # The record is stored last: its presence means the clip it names is complete.
            self._assets.put(self._clip_key(job_id), clip)
            self._assets.put(self._record_key(job_id), record_file)
        except AssetError as err:
            discard(clip)
            discard(record_file)
            raise ProviderUnavailable(f"The {edit.kind.value} could not be stored: {err}") from None
        return ProviderJob(job_id=job_id, status=JobStatus.COMPLETED, progress=100, seconds=seconds)

    def submitted_jobs(self, request: GenerationRequest, *, since: float) -> list[ProviderJob]:
        """This generation's edit, if a submit made it; the job id derives from the idempotency key."""
        if request.edit is None:
            return []
        job_id = _job_id(request)
        try:
            job = self._job(job_id)
            record = self._record(job_id) if job is not None else {}
        except AssetError as err:
            raise ProviderUnavailable(f"The asset store cannot be read just now: {err}") from None
        if job is None:
            return []
        created_at = record.get("created_at")
        if not isinstance(created_at, int | float):  # a record from before it was kept: the file's own time
            created_at = self._assets.fetch(self._record_key(job_id)).stat().st_mtime
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
        try:
            shutil.copyfile(self._assets.fetch(self._clip_key(job_id)), target)
        except AssetMissing:
            raise JobNotFound(f"The edit {job_id!r} is no longer in the asset store.") from None
        return target

    def cancel(self, job_id: str) -> None:
        """Nothing to stop: an edit is finished by the time its job exists, and it costs nothing to keep."""

    def cost_per_second(self, model: str | None) -> float:
        return 0.0

    def _clip_key(self, job_id: str) -> str:
        return f"{self._folder}clips/{job_id}.mp4"

    def _record_key(self, job_id: str) -> str:
        return f"{self._folder}jobs/{job_id}.json"

    def _record(self, job_id: str) -> dict[str, object]:
        record = json.loads(self._assets.fetch(self._record_key(job_id)).read_text())
        return record if isinstance(record, dict) else {}

    def _job(self, job_id: str) -> ProviderJob | None:
        # Job ids come back from the database; only our own shape may become a key.
        if not _JOB_ID_RE.match(job_id):
            return None
        if not (
            self._assets.exists(self._record_key(job_id)) and self._assets.exists(self._clip_key(job_id))
        ):
            return None
        seconds = self._record(job_id).get("seconds")
        if not isinstance(seconds, int):
            seconds = round(media.probe(self._assets.fetch(self._clip_key(job_id))).duration)
        return ProviderJob(job_id=job_id, status=JobStatus.COMPLETED, progress=100, seconds=seconds)


def _job_id(request: GenerationRequest) -> str:
    # The sources by name: their local copies sit in a different cache folder on each replica.
    names = [p.name for p in request.sources]
    digest = hashlib.sha256(f"{request.idempotency_key}|{request.edit}|{names}".encode()).hexdigest()
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
