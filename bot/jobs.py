"""Jobs: submit due generations to their providers, poll running ones, take provider callbacks, cancel.

A provider job belongs to one generation. The row is marked `submitting` and committed before the provider is
called, and the job id is stored the moment it is known (the database refuses a second owner). A create whose
answer was lost is looked up, never blindly resent: the provider's job list is matched to the unanswered rows
(by the client reference where the provider keeps one, else in creation order, once no other create for that
prompt is unsettled), and a listed job that no generation owns is cancelled at the provider and logged.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bot import channels, media, poll_policy
from bot.assets import clip_key, discard, verify_clip
from bot.domain import Aspect, Edit, GenerationKind, GenerationRequest, JobStatus, PromptSpec, ProviderJob
from bot.errors import (
    AssetError,
    AssetMissing,
    NotAllowed,
    NotFound,
    OutcomeUnknown,
    ProviderError,
    ProviderUnavailable,
    UserError,
)
from bot.ports import AssetStore, Clock, JobFinder, VideoProvider
from bot.posting import Posting
from bot.providers.registry import Providers
from bot.redaction import redact
from bot.tuning import CoreSettings
from bot.views import Outcome
from storage.generations import JobTaken
from storage.models import Generation
from storage.store import Repo, Store

log = logging.getLogger(__name__)

EDIT_KINDS = frozenset({GenerationKind.RECUT, GenerationKind.LOOP, GenerationKind.BLEND})
UNCERTAIN_SUBMIT = (
    "The provider did not confirm this job and cannot be asked whether it exists, so it was not sent again "
    "(that could bill twice). Reply `again` to try once more."
)
LOOKING = "The provider did not answer in time; checking whether it started the job."


@dataclass
class JobReport:
    submitted: int = 0
    polled: int = 0
    completed: int = 0
    failed: int = 0
    more: bool = False  # a full batch was claimed: more may be due at once


class Jobs:
    def __init__(
        self,
        *,
        store: Store,
        providers: Providers,
        posting: Posting,
        assets: AssetStore,
        clock: Clock,
        settings: CoreSettings,
        worker_id: str,
    ) -> None:
        self.store = store
        self.providers = providers
        self.posting = posting
        self.assets = assets
        self.clock = clock
        self.settings = settings
        self.worker_id = worker_id
        self.run_times = poll_policy.RunTimes()
        self._pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="jobs")
        # Callbacks get their own workers so a job a provider just finished never queues behind a busy sweep.
        self._callbacks = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="callback")

    def close(self) -> None:
        self._callbacks.shutdown(wait=True, cancel_futures=True)
        self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_seconds)

    # --- submit -------------------------------------------------------------------------------

    def submit_due(self, report: JobReport) -> None:
        now = self.clock.now()
        fresh: list[Generation] = []
        unanswered: list[Generation] = []
        with self.store.transaction() as repo:
            claimed = repo.generations.claim_due(
                statuses=[JobStatus.QUEUED.value, JobStatus.SUBMITTING.value],
                now=now,
                owner=self.worker_id,
                lease=self._lease,
                limit=self.settings.claim_batch,
            )
            room = {
                name: self.settings.max_concurrent - repo.generations.count_inflight(name)
                for name in {r.provider for r in claimed}
            }
            for row in claimed:
                assert row.id is not None
                if row.status == JobStatus.SUBMITTING.value:
                    unanswered.append(row)  # a submit that crashed or went unanswered
                elif room[row.provider] <= 0:
                    repo.generations.release(row.id)  # at its limit: stays queued, its place in line kept
                else:
                    room[row.provider] -= 1
                    repo.generations.mark_submitting(row, now=now)
                    fresh.append(row)
        report.submitted += len(fresh) + len(unanswered)
        report.failed += sum(self._pool.map(self._submit, fresh))
        groups: dict[tuple[str, str, str, str | None], list[Generation]] = {}
        for row in unanswered:
            groups.setdefault((row.provider, row.prompt, row.aspect, row.model), []).append(row)
        report.failed += sum(self._pool.map(self._settle, groups.values()))
        report.more = report.more or len(claimed) >= self.settings.claim_batch

    def _submit(self, row: Generation) -> bool:
        """Send one create; True when the generation failed for good."""
        assert row.id is not None
        try:
            provider = self.providers.get(row.provider)
            job = provider.submit(self._request(row))
        except OutcomeUnknown:
            # It may exist: stay "submitting" and look it up on a later sweep instead of paying twice.
            self._unanswered(row.id)
            return False
        except (ProviderError, UserError) as err:
            return self._refused(row, err)
        return self._started(row, job, provider)

    def _unanswered(self, generation_id: int) -> None:
        look_at = self.clock.now() + timedelta(seconds=self.settings.poll_min_seconds * 5)
        with self.store.transaction() as repo:
            repo.generations.mark_uncertain(generation_id, error=LOOKING, look_at=look_at)

    def _started(self, row: Generation, job: ProviderJob, provider: VideoProvider) -> bool:
        assert row.id is not None
        now = self.clock.now()
        delay = poll_policy.first_poll_delay(
            typical=self.run_times.typical(row.provider),
            hint=job.poll_after,
            low=self.settings.poll_min_seconds,
        )
        try:
            with self.store.transaction() as repo:
                status = repo.generations.mark_started(
                    row.id,
                    job_id=job.job_id,
                    callback_id=job.callback_id,
                    seconds=job.seconds,
                    progress=job.progress,
                    next_poll_at=now + timedelta(seconds=delay),
                )
                self.posting.variation_changed(repo, row.round_id, row.id)
        except JobTaken:
            log.error("provider %s returned job %s, which another generation owns", row.provider, job.job_id)
            self._fail(
                row, "The provider answered with a job that belongs to another variation; reply `again`."
            )
            return True
        if status == JobStatus.CANCELLED.value:  # cancelled while we were submitting it
            self._cancel_at_provider(provider, job.job_id)
        self.posting.deliver(row.round_id)
        return False

    def _refused(self, row: Generation, err: ProviderError | UserError) -> bool:
        assert row.id is not None
        if (
            isinstance(err, ProviderError)
            and err.retryable
            and row.attempts < self.settings.max_submit_attempts
        ):
            delay = err.retry_after or poll_policy.backoff(
                row.attempts, low=self.settings.poll_min_seconds, high=self.settings.poll_max_seconds
            )
            with self.store.transaction() as repo:
                repo.generations.requeue(row.id, due=self.clock.now() + timedelta(seconds=delay))
                self.posting.variation_changed(repo, row.round_id, row.id)
            self.posting.deliver(row.round_id)
            return False
        # Refused (a bad request, a moderation block, a key it will not take): nothing was made or billed.
        self._fail(row, str(err), refund=True)
        return True

    def _settle(self, rows: list[Generation]) -> int:
        """Unanswered creates of one prompt at one provider: adopt the jobs they made, resend the ones that
        never arrived, cancel listed jobs nobody owns. Returns how many failed."""
        provider = self.providers.get(rows[0].provider)
        ids = [r.id for r in rows if r.id is not None]
        with self.store.transaction() as repo:
            repo.generations.note_unanswered(ids)
        if not isinstance(provider, JobFinder):
            for row in rows:
                self._fail(row, UNCERTAIN_SUBMIT)
            return len(rows)
        with self.store.read() as repo:
            unsettled = repo.generations.unsettled_submits(provider.name, rows[0].prompt, except_ids=ids)
        if unsettled:  # a sibling's create is still out there: its job would look like ours
            for row in rows:
                assert row.id is not None
                self._unanswered(row.id)
            return 0
        since = min((r.submitted_at or r.created_at) for r in rows).timestamp()
        try:
            listed = self._listed(provider, rows, since=since)
        except ProviderError as err:
            log.warning("could not list jobs at %s to settle unanswered creates: %s", provider.name, err)
            for row in rows:
                assert row.id is not None
                self._unanswered(row.id)
            return 0
        with self.store.read() as repo:
            owned = repo.generations.owned_job_ids(provider.name, [j.job_id for j in listed])
        free = [j for j in listed if j.job_id not in owned]
        failed = 0
        for row in sorted(rows, key=lambda r: r.id or 0):
            key = _key(row)
            match = next((j for j in free if j.reference == key), None)
            if match is None:
                match = next((j for j in free if j.reference is None), None)
            if match is None:
                log.info("generation %s: its create never reached %s; sending it now", row.id, provider.name)
                failed += self._submit(row)
                continue
            free.remove(match)
            log.info("generation %s: adopted job %s that an unanswered create made", row.id, match.job_id)
            failed += self._started(row, match, provider)
        for orphan in free:
            if orphan.reference is not None and orphan.reference not in {_key(r) for r in rows}:
                continue  # another generation's, by its own reference: it will settle it
            log.warning(
                "job %s at %s belongs to no generation; cancelling it there", orphan.job_id, provider.name
            )
            self._cancel_at_provider(provider, orphan.job_id)
        return failed

    def _listed(self, provider: JobFinder, rows: list[Generation], *, since: float) -> list[ProviderJob]:
        """The jobs the group's creates may have made. A provider that keeps our reference lists by it (one
        look per row); one that does not lists by prompt, so one look covers the whole group."""
        listed = provider.submitted_jobs(self._request(rows[0]), since=since)
        if len(rows) > 1 and (not listed or any(j.reference is not None for j in listed)):
            seen = {j.job_id for j in listed}
            for row in rows[1:]:
                for job in provider.submitted_jobs(self._request(row), since=since):
                    if job.job_id not in seen:
                        seen.add(job.job_id)
                        listed.append(job)
        return listed

    def audit_orphans(self, *, window: timedelta, landing: timedelta = timedelta(minutes=10)) -> int:
        """Cancel jobs at a provider that no generation owns, made by creates that went unanswered in the last
        `window`.

        Settling catches the jobs an unanswered create made by the time it looks; a create that a dead process
        had in flight can still land later and bill silently. This looks again, once no create for that prompt
        is unsettled, at jobs created up to `landing` after the unanswered create — not wider, so another
        deployment's jobs with the same prompt on a shared account are left alone. Returns how many it
        cancelled."""
        now = self.clock.now()
        cancelled = 0
        for name in sorted(self.providers.available):
            provider = self.providers.available[name]
            if not isinstance(provider, JobFinder):
                continue
            with self.store.read() as repo:
                samples = repo.generations.recent_unanswered(name, since=now - window)
            for sample in samples:
                with self.store.read() as repo:
                    if repo.generations.unsettled_submits(name, sample.prompt, except_ids=[]):
                        continue
                assert sample.submitted_at is not None
                sent = sample.submitted_at.timestamp()
                try:
                    listed = provider.submitted_jobs(self._request(sample), since=sent)
                except ProviderError as err:
                    log.warning("could not list jobs at %s to look for orphans: %s", name, err)
                    break
                with self.store.read() as repo:
                    owned = repo.generations.owned_job_ids(name, [j.job_id for j in listed])
                for job in listed:
                    if job.job_id in owned or job.reference is not None:
                        continue  # ours, or kept under a generation's own reference (found by that one)
                    if (
                        job.created_at is None
                        or not sent - 60 <= job.created_at <= sent + landing.total_seconds()
                    ):
                        continue  # not one our unanswered creates can have made
                    log.warning(
                        "job %s at %s belongs to no generation; cancelling it there", job.job_id, name
                    )
                    self._cancel_at_provider(provider, job.job_id)
                    cancelled += 1
        return cancelled

    def _request(self, row: Generation) -> GenerationRequest:
        kind = GenerationKind(row.kind)
        edited = kind in EDIT_KINDS  # made from finished clips, not by a model
        return GenerationRequest(
            prompt=row.prompt,
            spec=PromptSpec.from_dict(row.spec),
            seconds=row.seconds,
            aspect=Aspect(row.aspect),
            variation=row.number,
            idempotency_key=_key(row),
            model=row.model,
            seed=row.seed,
            reference_image=self._local(row.reference_path) if row.reference_path else None,
            sources=tuple(self._local(p) for p in row.source_paths) if edited else (),
            edit=Edit(kind=kind, start=row.edit_start, end=row.edit_end) if edited else None,
        )

    def _local(self, key: str) -> Path:
        """A local copy of an asset a request needs. A provider is never asked without it: a missing file fails
        the generation (nothing was made), a store that cannot answer now is retried like a busy provider."""
        try:
            return self.assets.fetch(key)
        except AssetMissing:
            raise ProviderError(
                "A file this variation starts from (a reference image or a source clip) is no longer in the "
                "asset store; reply `again` to try without it."
            ) from None
        except AssetError as err:
            raise ProviderUnavailable(f"The asset store cannot be read just now ({err}).") from None

    # --- poll ---------------------------------------------------------------------------------

    def poll_due(self, report: JobReport) -> None:
        with self.store.transaction() as repo:
            claimed = repo.generations.claim_due(
                statuses=[JobStatus.IN_PROGRESS.value],
                now=self.clock.now(),
                owner=self.worker_id,
                lease=self._lease,
                limit=self.settings.claim_batch,
            )
        outcomes = list(self._pool.map(self._poll, claimed))
        report.polled += len(claimed)
        report.completed += outcomes.count(JobStatus.COMPLETED)
        report.failed += outcomes.count(JobStatus.FAILED)
        report.more = report.more or len(claimed) >= self.settings.claim_batch

    def job_event(self, *, provider: str, job_id: str) -> bool:
        """A provider says a job changed (a webhook): poll it now instead of at its next turn."""
        with self.store.transaction() as repo:
            row = repo.generations.by_job(provider, job_id)
            if row is None or row.id is None or not repo.generations.make_due(row.id, now=self.clock.now()):
                return False
            generation_id = row.id  # if the fast path below fails, the sweep takes it next
        self._callbacks.submit(self._poll_now, generation_id)
        return True

    def _poll_now(self, generation_id: int) -> None:
        try:
            with self.store.transaction() as repo:
                row = repo.generations.claim_running(
                    generation_id, now=self.clock.now(), owner=self.worker_id, lease=self._lease
                )
            if row is not None:
                self._poll(row)
        except Exception:  # a background task: log it; the sweep will poll the job anyway
            log.exception("polling generation %s after a callback failed", generation_id)

    def _poll(self, row: Generation) -> JobStatus:
        """Look at one running job; the moment its clip is ours, ask the outbox to post it."""
        assert row.id is not None and row.provider_job_id is not None
        provider = self.providers.get(row.provider)
        job: ProviderJob | None = None
        download: Path | None = None
        asset: str | None = None
        length: float | None = None
        retry_after: float | None = None
        try:
            job = provider.fetch(row.provider_job_id)
            if job.status == JobStatus.COMPLETED:
                download = provider.download(
                    row.provider_job_id, self.assets.scratch(f"generation-{row.id}.mp4")
                )
                # Whatever the provider, its download is a clip only once it plays at a sane length and size.
                length = verify_clip(
                    download,
                    asked_seconds=max(row.seconds, job.seconds or 0),
                    max_bytes=self.settings.max_clip_mb << 20,
                ).duration
                if row.kind == GenerationKind.EXTEND.value:
                    # The continuation was made from the source's last frame: join the two into one clip.
                    continuation = download
                    download = media.concat(
                        [self.assets.fetch(row.source_paths[0]), continuation],
                        self.assets.scratch(f"generation-{row.id}-extended.mp4"),
                    )
                    discard(continuation)
                    length = media.probe(download).duration  # the label says the joined length
                # Stored whole before the row names it: no replica ever reads half a clip.
                asset = clip_key(row.round_id, row.number)
                self.assets.put(asset, download)
        except ProviderError as err:
            discard(download)
            if not err.retryable:  # an expired clip, a revoked key, not a clip: waiting will not help
                self._fail(row, str(err))
                return JobStatus.FAILED
            job, retry_after = None, err.retry_after
            log.warning("poll of generation %s failed, will retry: %s", row.id, err)
        except media.MediaError as err:
            discard(download)
            self._fail(row, str(err))
            return JobStatus.FAILED
        except AssetMissing as err:  # the clip an extension continues is gone: it cannot be joined on
            discard(download)
            self._fail(row, f"The clip this extends is no longer in the asset store ({err}).")
            return JobStatus.FAILED
        except OSError as err:  # a full disk, an unreachable bucket: the provider keeps the clip a while
            discard(download)
            job, asset = None, None
            log.warning("poll of generation %s failed, will retry: %s", row.id, err)
        return self._record_poll(row, provider, job, asset, retry_after, length=length)

    def _record_poll(
        self,
        row: Generation,
        provider: VideoProvider,
        job: ProviderJob | None,
        asset: str | None,
        retry_after: float | None,
        *,
        length: float | None = None,
    ) -> JobStatus:
        assert row.id is not None
        now = self.clock.now()
        running_for = (now - (row.submitted_at or now)).total_seconds()
        outcome = JobStatus.IN_PROGRESS
        with self.store.transaction() as repo:
            if job is not None and job.status == JobStatus.COMPLETED and asset is not None:
                cost = (job.seconds or row.seconds) * provider.cost_per_second(row.model)
                if repo.generations.mark_completed(
                    row.id, asset_path=asset, cost=cost, now=now, clip_seconds=length
                ):
                    self.run_times.learn(row.provider, running_for)
                    self.posting.clip_ready(repo, row.round_id, row.id)
                    outcome = JobStatus.COMPLETED
            elif job is not None and job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
                # The provider's own words: it may quote our key back.
                reason = redact(job.error or "The provider gave no reason.")
                if repo.generations.mark_provider_ended(row.id, status=job.status.value, error=reason):
                    outcome = JobStatus.FAILED
                    self._refund(repo, row)  # it ended without a clip
            elif running_for > self.settings.job_timeout_minutes * 60:
                message = (
                    f"The provider did not finish within {self.settings.job_timeout_minutes:g} minutes; "
                    "reply `again` to try once more."
                )
                if repo.generations.mark_failed(row.id, error=message):
                    outcome = JobStatus.FAILED
            else:
                hint = (job.poll_after if job is not None else retry_after) or 0.0
                progress = job.progress if job is not None else None
                delay = poll_policy.next_poll_delay(
                    polls=row.attempts + 1,
                    hint=hint,
                    progress=progress or 0,
                    running_for=running_for,
                    low=self.settings.poll_min_seconds,
                    high=self.settings.poll_max_seconds,
                )
                repo.generations.reschedule(
                    row.id, next_poll_at=now + timedelta(seconds=delay), progress=progress
                )
                if progress is None or progress == row.progress:
                    return outcome  # nothing a person would see has changed
            self.posting.variation_changed(repo, row.round_id, row.id)
        self.posting.deliver(row.round_id)
        return outcome

    def _fail(self, row: Generation, error: str, *, refund: bool = False) -> None:
        """Fail the generation; `refund` when the provider made nothing, so its charge goes back."""
        assert row.id is not None
        with self.store.transaction() as repo:
            if repo.generations.mark_failed(row.id, error=redact(error)) and refund:
                self._refund(repo, row)
            self.posting.variation_changed(repo, row.round_id, row.id)
        self.posting.deliver(row.round_id)

    def _refund(self, repo: Repo, row: Generation) -> None:
        if channels.refund(repo, row, now=self.clock.now()):
            self.posting.round_changed(repo, row.round_id)

    # --- cancel -------------------------------------------------------------------------------

    def cancel_generation(self, generation_id: int, *, actor: str) -> Outcome:
        """Stop a queued or running job; only the person who asked for it may."""
        with self.store.transaction() as repo:
            row = repo.generations.get(generation_id)
            if row is None:
                raise NotFound("That variation no longer exists.")
            if row.requested_by != actor:
                raise NotAllowed(f"Only the person who asked for #{row.number} can cancel it.")
            if not repo.generations.cancel(generation_id):
                return Outcome(False, f"#{row.number} has already {row.status.replace('_', ' ')}.")
            self._refund(repo, row)  # stopped before it finished: its charge goes back to the budget
            self.posting.variation_changed(repo, row.round_id, generation_id)
        if row.provider_job_id:
            self._cancel_at_provider(self.providers.get(row.provider), row.provider_job_id)
        self.posting.deliver_soon(row.round_id)
        return Outcome(True)

    def cancel_by_reaction(self, *, channel_id: str, message_ts: str, user_id: str) -> Outcome:
        with self.store.read() as repo:
            row = repo.generations.by_message(channel_id, message_ts)
        if row is None or row.id is None:
            return Outcome(False)
        return self.cancel_generation(row.id, actor=user_id)

    def _cancel_at_provider(self, provider: VideoProvider, job_id: str) -> None:
        try:
            provider.cancel(job_id)
        except (ProviderError, UserError) as err:  # ours is cancelled either way; the provider may bill
            log.warning("provider %s could not cancel %s: %s", provider.name, job_id, err)


def _key(row: Generation) -> str:
    """Our idempotency key for a generation: stable across retries, unique across generations."""
    return f"generation-{row.id}"
