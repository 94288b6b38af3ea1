"""Use cases: one method and one transaction each. Calls ports (providers, publisher), never Slack."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from bot import media, prompts, replies, votes
from bot.domain import (
    Aspect,
    Finding,
    GenerationKind,
    GenerationRequest,
    JobStatus,
    PromptSpec,
    RoundStatus,
    RoundView,
    Severity,
    ThreadRef,
    VariationView,
)
from bot.errors import InvalidInput, NotAllowed, NotFound, ProviderError, PublishError, UserError
from bot.ports import AssetStore, Clock, Publisher
from bot.providers.registry import Providers
from storage.models import Draft, Generation, Pattern, Round
from storage.store import Repo, Store

log = logging.getLogger(__name__)

MAX_VARIATIONS = 4
MIN_VARIATIONS = 2
DEADLINE_ACTOR = "deadline"


@dataclass(frozen=True)
class WorkflowSettings:
    vote_minutes: int = 60
    lease_seconds: float = 120.0
    poll_min_seconds: float = 2.0
    poll_max_seconds: float = 30.0
    max_submit_attempts: int = 5
    job_timeout_minutes: float = 30.0
    vote_emoji: frozenset[str] = votes.VOTE_EMOJI


@dataclass(frozen=True)
class DraftCard:
    draft_id: int
    idea: str
    spec: PromptSpec
    findings: tuple[Finding, ...]
    score: int
    goal: prompts.Goal | None
    aspect: Aspect
    seconds: int
    variations: int
    provider: str
    estimated_cost: float
    filled: tuple[str, ...]
    prompt: str


@dataclass(frozen=True)
class RoundStarted:
    round_id: int
    thread: ThreadRef | None
    card: DraftCard


@dataclass(frozen=True)
class Outcome:
    """What happened to a user's action; `message` (if any) is told to that user only."""

    done: bool
    message: str | None = None


@dataclass(frozen=True)
class PatternCard:
    pattern_id: int
    title: str
    prompt: str
    spec: PromptSpec
    winner_number: int
    votes: int
    voters: int
    rounds_closed_at: str
    settings: dict[str, object]
    rhythm: tuple[dict[str, object], ...]


@dataclass(frozen=True)
class StatusReport:
    providers: tuple[str, ...]
    default_provider: str
    queued: int
    running: int
    mine: int
    open_rounds: int


@dataclass
class SweepReport:
    submitted: int = 0
    polled: int = 0
    completed: int = 0
    failed: int = 0
    uploaded: int = 0
    sheets: int = 0
    closed: int = 0
    announced: int = 0
    repaired: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return any((self.submitted, self.polled, self.uploaded, self.sheets, self.closed, self.repaired))


class Workflow:
    """The core's use cases. Slow calls (providers, Slack, ffmpeg) always run outside a transaction."""

    def __init__(
        self,
        *,
        store: Store,
        providers: Providers,
        publisher: Publisher,
        assets: AssetStore,
        clock: Clock,
        settings: WorkflowSettings | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.publisher = publisher
        self.assets = assets
        self.clock = clock
        self.settings = settings or WorkflowSettings()
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:8]}"
        self.wake: Callable[[], None] = lambda: None

    # --- events --------------------------------------------------------------------------------

    def mark_event_processed(self, event_id: str) -> bool:
        """True the first time; False for a retry of an event already handled."""
        with self.store.transaction() as repo:
            return repo.mark_event_processed(event_id, now=self.clock.now())

    # --- draft ---------------------------------------------------------------------------------

    def create_draft(
        self, *, team_id: str, channel_id: str, user_id: str, idea: str, goal: prompts.Goal | None = None
    ) -> DraftCard:
        idea = idea.strip()
        if not idea:
            raise InvalidInput(
                "A draft needs an idea.", hint="Try `/sora draft a robot rolls through a neon alley`."
            )
        drafted = prompts.draft_with_notes(idea, goal=goal)
        preset = prompts.PRESETS[goal] if goal else None
        aspect = preset.aspect if preset else Aspect.LANDSCAPE
        seconds = preset.seconds if preset else 4
        variations = preset.variations if preset else 3
        findings = prompts.lint(drafted.spec, filled=drafted.filled)
        provider = self.providers.get()
        with self.store.transaction() as repo:
            row = repo.add(
                Draft(
                    team_id=team_id,
                    channel_id=channel_id,
                    user_id=user_id,
                    idea=idea,
                    spec=drafted.spec.as_dict(),
                    filled=list(drafted.filled),
                    findings=[_finding_dict(f) for f in findings],
                    goal=goal.value if goal else None,
                    aspect=aspect.value,
                    seconds=seconds,
                    variations=variations,
                    provider=provider.name,
                    created_at=self.clock.now(),
                )
            )
            assert row.id is not None
            return self._draft_card(row)

    def _draft_card(self, row: Draft) -> DraftCard:
        assert row.id is not None
        spec = PromptSpec.from_dict(row.spec)
        findings = tuple(_finding_from(f) for f in row.findings)
        provider = self.providers.get(row.provider)
        return DraftCard(
            draft_id=row.id,
            idea=row.idea,
            spec=spec,
            findings=findings,
            score=prompts.score(findings),
            goal=prompts.Goal(row.goal) if row.goal else None,
            aspect=Aspect(row.aspect),
            seconds=row.seconds,
            variations=row.variations,
            provider=provider.name,
            estimated_cost=row.seconds * row.variations * provider.cost_per_second(row.model),
            filled=tuple(row.filled),
            prompt=prompts.render(spec, seconds=row.seconds),
        )

    def cancel_draft(self, draft_id: int, *, actor: str) -> Outcome:
        with self.store.transaction() as repo:
            draft = self._draft_owned_by(repo, draft_id, actor)
            if not repo.cancel_draft(draft_id):
                return Outcome(False, "This draft was already generated or cancelled.")
            log.info("draft %s cancelled by %s", draft.id, actor)
        return Outcome(True)

    def _draft_owned_by(self, repo: Repo, draft_id: int, actor: str) -> Draft:
        draft = repo.get(Draft, draft_id)
        if draft is None:
            raise NotFound("That draft no longer exists.", hint="Start a new one with `/sora draft <idea>`.")
        if draft.user_id != actor:
            raise NotAllowed("Only the person who drafted this can use its buttons.")
        return draft

    # --- generate ------------------------------------------------------------------------------

    def start_round(self, draft_id: int, *, actor: str) -> RoundStarted:
        """Turn an open draft into a round: one parent message and one message per variation."""
        now = self.clock.now()
        with self.store.transaction() as repo:
            draft = self._draft_owned_by(repo, draft_id, actor)
            if not repo.submit_draft(draft_id):
                raise InvalidInput("This draft was already generated or cancelled.")
            spec = PromptSpec.from_dict(draft.spec)
            count = max(MIN_VARIATIONS, min(MAX_VARIATIONS, draft.variations))
            provider = self.providers.get(draft.provider)
            round_row = repo.add(
                Round(
                    draft_id=draft_id,
                    team_id=draft.team_id,
                    channel_id=draft.channel_id,
                    owner_id=actor,
                    title=spec.subject or draft.idea[:80],
                    closes_at=now + timedelta(minutes=self.settings.vote_minutes),
                    estimated_cost=draft.seconds * count * provider.cost_per_second(draft.model),
                    created_at=now,
                )
            )
            assert round_row.id is not None
            for number in range(1, count + 1):
                repo.add(
                    Generation(
                        round_id=round_row.id,
                        number=number,
                        kind=GenerationKind.CREATE.value,
                        requested_by=actor,
                        spec=draft.spec,
                        prompt=prompts.render(spec, seconds=draft.seconds),
                        seconds=draft.seconds,
                        aspect=draft.aspect,
                        provider=draft.provider,
                        model=draft.model,
                        created_at=now,
                    )
                )
            round_id = round_row.id
            card = self._draft_card(draft)
        thread = self._post_round(round_id)
        self.wake()
        return RoundStarted(round_id=round_id, thread=thread, card=card)

    def _post_round(self, round_id: int) -> ThreadRef | None:
        """Post the parent and the variation messages that are missing; safe to repeat."""
        with self.store.read() as repo:
            round_row = repo.get(Round, round_id)
            assert round_row is not None
            view = self._round_view(repo, round_row)
            parent_ts = round_row.parent_ts
        if parent_ts is None:
            try:
                parent_ts = self.publisher.post_round(view)
            except PublishError as err:
                log.warning("could not post round %s yet: %s", round_id, err)
                return None
            self._save(Round, round_id, parent_ts=parent_ts)
        thread = ThreadRef(channel_id=view.channel_id, thread_ts=parent_ts)
        for variation in view.variations:
            self._post_variation_message(thread, variation)
        return thread

    def _post_variation_message(self, thread: ThreadRef, view: VariationView) -> None:
        with self.store.read() as repo:
            row = repo.get(Generation, view.generation_id)
            if row is None or row.message_ts is not None:
                return
        try:
            ts = self.publisher.post_variation(thread, view)
        except PublishError as err:
            log.warning("could not post variation %s yet: %s", view.generation_id, err)
            return
        self._save(Generation, view.generation_id, message_ts=ts)

    # --- votes ---------------------------------------------------------------------------------

    def record_vote(self, *, channel_id: str, message_ts: str, user_id: str, emoji: str) -> Outcome:
        """A reaction on a variation message. Non-vote emoji and other messages are ignored on purpose."""
        name = votes.normalise_emoji(emoji)
        if not votes.is_vote(name, allowed=self.settings.vote_emoji):
            return Outcome(False)
        with self.store.transaction() as repo:
            generation = repo.generation_by_message(channel_id, message_ts)
            if generation is None or generation.id is None:
                return Outcome(False)
            round_row = repo.get(Round, generation.round_id)
            assert round_row is not None and round_row.id is not None
            if round_row.status != RoundStatus.OPEN.value:
                winner = self._winner_number(repo, round_row)
                said = f" #{winner} won." if winner else ""
                return Outcome(False, f"Voting on this round has closed; your vote was not counted.{said}")
            repo.add_vote(
                round_id=round_row.id,
                generation_id=generation.id,
                user_id=user_id,
                emoji=name,
                now=self.clock.now(),
            )
            round_id = round_row.id
        self.refresh_round(round_id)
        return Outcome(True)

    def remove_vote(self, *, channel_id: str, message_ts: str, user_id: str, emoji: str) -> Outcome:
        name = votes.normalise_emoji(emoji)
        with self.store.transaction() as repo:
            generation = repo.generation_by_message(channel_id, message_ts)
            if generation is None or generation.id is None:
                return Outcome(False)
            round_row = repo.get(Round, generation.round_id)
            assert round_row is not None and round_row.id is not None
            if round_row.status != RoundStatus.OPEN.value:
                return Outcome(False)
            removed = repo.remove_vote(generation_id=generation.id, user_id=user_id, emoji=name)
            round_id = round_row.id
        if removed:
            self.refresh_round(round_id)
        return Outcome(removed)

    def _winner_number(self, repo: Repo, round_row: Round) -> int | None:
        if round_row.winner_generation_id is None:
            return None
        winner = repo.get(Generation, round_row.winner_generation_id)
        return winner.number if winner else None

    # --- close ---------------------------------------------------------------------------------

    def close_round(self, round_id: int, *, actor: str, pick: int | None = None) -> Outcome:
        """Count votes, pick the winner, save it as a pattern, announce it. Closes once, whoever asks twice."""
        now = self.clock.now()
        with self.store.transaction() as repo:
            round_row = repo.get(Round, round_id)
            if round_row is None or round_row.id is None:
                raise NotFound("That round no longer exists.")
            if actor != DEADLINE_ACTOR and actor != round_row.owner_id:
                raise NotAllowed("Only the person who started this round can close it.")
            generations = repo.generations_in_round(round_id)
            tally = self._tally(repo, round_row, generations)
            winner_id = tally.winner.generation_id if tally.winner else None
            if pick is not None:
                picked = next((g for g in generations if g.number == pick), None)
                if picked is None:
                    raise NotFound(
                        f"There is no variation #{pick} in this round.", hint=_numbers_hint(generations)
                    )
                winner_id = picked.id
            if not repo.close_round(round_id, now=now, actor=actor):
                return Outcome(False, "This round is already closed.")
            round_row.status = RoundStatus.CLOSED.value
            round_row.winner_generation_id = winner_id
            round_row.announced_ts = None
            repo.add(round_row)
            if winner_id is not None:
                self._save_pattern(repo, round_row, winner_id, generations, tally)
        self._announce(round_id)
        self.refresh_round(round_id)
        return Outcome(True)

    def _tally(self, repo: Repo, round_row: Round, generations: Sequence[Generation]) -> votes.RoundTally:
        assert round_row.id is not None
        numbers = {g.id: g.number for g in generations if g.id is not None}
        records = [
            votes.VoteRecord(generation_id=v.generation_id, user_id=v.user_id, emoji=v.emoji)
            for v in repo.votes_in_round(round_row.id)
        ]
        return votes.tally(records, numbers=numbers)

    def _save_pattern(
        self,
        repo: Repo,
        round_row: Round,
        winner_id: int,
        generations: Sequence[Generation],
        tally: votes.RoundTally,
    ) -> None:
        assert round_row.id is not None
        winner = next(g for g in generations if g.id == winner_id)
        spec = PromptSpec.from_dict(winner.spec)
        winner_tally = next((t for t in tally.tallies if t.generation_id == winner_id), None)
        lineage = []
        by_id = {g.id: g for g in generations}
        cursor: Generation | None = winner
        while cursor is not None:
            lineage.append(cursor.number)
            cursor = by_id.get(cursor.parent_id) if cursor.parent_id else None
        pattern = repo.pattern_for_round(round_row.id) or Pattern(
            team_id=round_row.team_id,
            channel_id=round_row.channel_id,
            round_id=round_row.id,
            generation_id=winner_id,
            title=round_row.title,
            prompt=winner.prompt,
            created_at=self.clock.now(),
        )
        pattern.generation_id = winner_id
        pattern.prompt = winner.prompt
        pattern.spec = winner.spec
        pattern.rhythm = [{"text": b.text, "start": b.start} for b in spec.beats]
        pattern.settings = {
            "seconds": winner.seconds,
            "aspect": winner.aspect,
            "provider": winner.provider,
            "model": winner.model,
            "kind": winner.kind,
        }
        pattern.outcome = {
            "winner_number": winner.number,
            "votes": winner_tally.votes if winner_tally else 0,
            "voters": tally.voters,
            "variations": len(generations),
            "tie": tally.tie,
            "closed_by": round_row.closed_by,
        }
        pattern.lineage = lineage
        pattern.tags = " ".join(filter(None, [winner.kind, winner.aspect.replace(":", "x"), spec.camera]))
        repo.add(pattern)

    def _announce(self, round_id: int) -> None:
        with self.store.read() as repo:
            round_row = repo.get(Round, round_id)
            if round_row is None or round_row.parent_ts is None or round_row.announced_ts is not None:
                return
            view = self._round_view(repo, round_row)
            thread = ThreadRef(round_row.channel_id, round_row.parent_ts)
        try:
            ts = self.publisher.announce_winner(thread, view)
        except PublishError as err:
            log.warning("could not announce round %s yet: %s", round_id, err)
            return
        self._save(Round, round_id, announced_ts=ts)

    # --- thread replies ------------------------------------------------------------------------

    def handle_reply(self, *, channel_id: str, thread_ts: str, user_id: str, text: str) -> Outcome:
        """A reply in a round's thread. Ordinary conversation is left alone; commands act or explain."""
        parsed = replies.parse_reply(text)
        if parsed is None:
            return Outcome(False)
        with self.store.read() as repo:
            round_row = repo.round_by_thread(channel_id, thread_ts)
            if round_row is None or round_row.id is None:
                return Outcome(False)
            round_id = round_row.id
        if isinstance(parsed, replies.ReplyError):
            return Outcome(False, f"{parsed.message} {parsed.hint}".strip())
        verb = parsed.verb
        if verb == replies.Verb.HELP:
            return Outcome(True, replies.HELP_TEXT)
        if verb == replies.Verb.PICK:
            return self.close_round(round_id, actor=user_id, pick=parsed.numbers[0])
        if verb == replies.Verb.REMIX:
            assert parsed.change is not None
            return self._add_variation(
                round_id,
                actor=user_id,
                kind=GenerationKind.REMIX,
                source=parsed.numbers[0],
                change=parsed.change,
            )
        if verb == replies.Verb.AGAIN:
            source = parsed.numbers[0] if parsed.numbers else None
            return self._add_variation(round_id, actor=user_id, kind=GenerationKind.AGAIN, source=source)
        return Outcome(
            False,
            f"`{verb.value}` is not available yet; `remix #N <change>`, `again` and `pick #N` work today.",
        )

    def _add_variation(
        self,
        round_id: int,
        *,
        actor: str,
        kind: GenerationKind,
        source: int | None,
        change: str | None = None,
    ) -> Outcome:
        now = self.clock.now()
        with self.store.transaction() as repo:
            round_row = repo.get(Round, round_id)
            assert round_row is not None
            generations = repo.generations_in_round(round_id)
            if source is None:
                parent = generations[0] if generations else None
            else:
                parent = next((g for g in generations if g.number == source), None)
            if parent is None or parent.id is None:
                raise NotFound(
                    f"There is no variation #{source} in this round.", hint=_numbers_hint(generations)
                )
            spec = PromptSpec.from_dict(parent.spec)
            if change is not None:
                spec = prompts.apply_change(spec, change)
            if round_row.status == RoundStatus.CLOSED.value:
                # A new variation is votable: the thread's round reopens for a fresh vote window.
                round_row.status = RoundStatus.OPEN.value
                round_row.closes_at = now + timedelta(minutes=self.settings.vote_minutes)
                round_row.closed_at = None
                repo.add(round_row)
            repo.add(
                Generation(
                    round_id=round_id,
                    parent_id=parent.id if source is not None else None,
                    number=repo.next_number(round_id),
                    kind=kind.value,
                    requested_by=actor,
                    spec=spec.as_dict(),
                    prompt=prompts.render(spec, seconds=parent.seconds),
                    change=change,
                    seconds=parent.seconds,
                    aspect=parent.aspect,
                    provider=parent.provider,
                    model=parent.model,
                    created_at=now,
                )
            )
        self._post_round(round_id)
        self.refresh_round(round_id)
        self.wake()
        return Outcome(True)

    # --- recall --------------------------------------------------------------------------------

    def recall(self, *, team_id: str, query: str, limit: int = 3) -> list[PatternCard]:
        if not query.strip():
            raise InvalidInput("Recall needs something to look for.", hint="Try `/sora recall neon robot`.")
        with self.store.read() as repo:
            hits = repo.search_patterns(team_id, query, limit=limit)
            return [_pattern_card(hit.pattern) for hit in hits]

    def health(self) -> dict[str, object]:
        """For `GET /healthz`: can we reach the database?"""
        try:
            with self.store.read() as repo:
                repo.ping()
        except Exception as err:  # report, never raise: a health check must answer
            return {"ok": False, "database": f"unreachable: {type(err).__name__}"}
        return {"ok": True, "database": "ok", "providers": list(self.providers.names())}

    # --- status -------------------------------------------------------------------------------

    def status(self, *, channel_id: str, user_id: str) -> StatusReport:
        with self.store.read() as repo:
            counts = repo.count_active_generations(channel_id=channel_id, user_id=user_id)
            open_rounds = repo.count_open_rounds(channel_id)
        running = [JobStatus.SUBMITTING.value, JobStatus.IN_PROGRESS.value]
        return StatusReport(
            providers=self.providers.names(),
            default_provider=self.providers.default,
            queued=counts.get(JobStatus.QUEUED.value, (0, 0))[0],
            running=sum(counts.get(s, (0, 0))[0] for s in running),
            mine=sum(mine for _, mine in counts.values()),
            open_rounds=open_rounds,
        )

    # --- the sweep -----------------------------------------------------------------------------

    def sweep(self) -> SweepReport:
        """One pass over everything due: repair posts, submit, poll, upload, sheets, deadlines, announcements.

        Every step works from rows alone, so a restart (or a second replica) resumes exactly here.
        """
        report = SweepReport()
        for step in (
            self._repair_posts,
            self._submit_queued,
            self._poll_running,
            self._upload_finished,
            self._post_sheets,
            self._close_due_rounds,
            self._announce_closed,
        ):
            try:
                step(report)
            except Exception as err:  # one broken step must not stop the others
                log.exception("sweep step %s failed", step.__name__)
                report.errors.append(f"{step.__name__}: {err}")
        return report

    def _repair_posts(self, report: SweepReport) -> None:
        with self.store.read() as repo:
            round_ids = [r.id for r in repo.rounds_missing_parent()]
            round_ids += [g.round_id for g in repo.generations_missing_message()]
        for round_id in dict.fromkeys(round_ids):
            if round_id is not None:
                self._post_round(round_id)
                report.repaired += 1

    def _submit_queued(self, report: SweepReport) -> None:
        now = self.clock.now()
        with self.store.transaction() as repo:
            claimed = repo.claim_generations(
                statuses=[JobStatus.QUEUED.value, JobStatus.SUBMITTING.value],
                now=now,
                owner=self.worker_id,
                lease=timedelta(seconds=self.settings.lease_seconds),
                limit=8,
            )
            for row in claimed:
                # Written before the provider call, so a crash leaves a row that says "maybe submitted".
                row.status = JobStatus.SUBMITTING.value
                row.attempts += 1
                repo.add(row)
        for row in claimed:
            assert row.id is not None
            self._submit_one(row)
            report.submitted += 1
            self._refresh_variation(row.id)

    def _submit_one(self, row: Generation) -> None:
        assert row.id is not None
        request = GenerationRequest(
            prompt=row.prompt,
            spec=PromptSpec.from_dict(row.spec),
            seconds=row.seconds,
            aspect=Aspect(row.aspect),
            variation=row.number,
            idempotency_key=f"generation-{row.id}",
            model=row.model,
        )
        now = self.clock.now()
        try:
            job = self.providers.get(row.provider).submit(request)
        except (ProviderError, UserError) as err:
            retryable = isinstance(err, ProviderError) and err.retryable
            with self.store.transaction() as repo:
                fresh = repo.get(Generation, row.id)
                assert fresh is not None
                if retryable and fresh.attempts < self.settings.max_submit_attempts:
                    fresh.status = JobStatus.QUEUED.value
                    delay = getattr(err, "retry_after", None) or self._backoff(fresh.attempts)
                    fresh.next_poll_at = now + timedelta(seconds=delay)
                else:
                    fresh.status = JobStatus.FAILED.value
                    fresh.error = str(err)
                repo.release(fresh)
            return
        with self.store.transaction() as repo:
            fresh = repo.get(Generation, row.id)
            assert fresh is not None
            fresh.provider_job_id = job.job_id
            fresh.submitted_at = now
            fresh.status = JobStatus.IN_PROGRESS.value
            fresh.progress = job.progress
            fresh.next_poll_at = now + timedelta(seconds=job.poll_after or 0.0)
            repo.release(fresh)

    def _poll_running(self, report: SweepReport) -> None:
        now = self.clock.now()
        with self.store.transaction() as repo:
            claimed = repo.claim_generations(
                statuses=[JobStatus.IN_PROGRESS.value],
                now=now,
                owner=self.worker_id,
                lease=timedelta(seconds=self.settings.lease_seconds),
                limit=8,
            )
        for row in claimed:
            assert row.id is not None
            self._poll_one(row, report)
            report.polled += 1
            self._refresh_variation(row.id)

    def _poll_one(self, row: Generation, report: SweepReport) -> None:
        assert row.id is not None and row.provider_job_id is not None
        provider = self.providers.get(row.provider)
        now = self.clock.now()
        asset: Path | None = None
        error: str | None = None
        try:
            job = provider.fetch(row.provider_job_id)
            if job.status == JobStatus.COMPLETED:
                asset = provider.download(
                    row.provider_job_id, self.assets.path_for(f"generation-{row.id}.mp4")
                )
        except (ProviderError, OSError) as err:
            job = None
            error = str(err)
        with self.store.transaction() as repo:
            fresh = repo.get(Generation, row.id)
            assert fresh is not None
            polls = fresh.attempts = fresh.attempts + 1
            timed_out = fresh.submitted_at is not None and now - fresh.submitted_at > timedelta(
                minutes=self.settings.job_timeout_minutes
            )
            if job is not None and job.status == JobStatus.COMPLETED and asset is not None:
                fresh.status = JobStatus.COMPLETED.value
                fresh.progress = 100
                fresh.asset_path = str(asset)
                fresh.completed_at = now
                fresh.cost = (job.seconds or fresh.seconds) * provider.cost_per_second(fresh.model)
                report.completed += 1
            elif job is not None and job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
                fresh.status = job.status.value
                fresh.error = job.error or "The provider gave no reason."
                report.failed += 1
            elif timed_out:
                fresh.status = JobStatus.FAILED.value
                fresh.error = (
                    f"The provider did not finish within {self.settings.job_timeout_minutes:g} minutes; "
                    "reply `again` to try once more."
                )
                report.failed += 1
            else:
                if job is not None:
                    fresh.progress = job.progress
                hint = job.poll_after if job is not None else None
                fresh.next_poll_at = now + timedelta(seconds=hint or self._backoff(polls))
                if error:
                    log.warning("poll of generation %s failed, will retry: %s", row.id, error)
            repo.release(fresh)

    def _backoff(self, attempts: int) -> float:
        return float(
            min(self.settings.poll_max_seconds, self.settings.poll_min_seconds * 2 ** max(0, attempts - 1))
        )

    def _upload_finished(self, report: SweepReport) -> None:
        with self.store.read() as repo:
            pending = [
                (g.id, g.number, g.asset_path, repo.get(Round, g.round_id))
                for g in repo.generations_missing_upload()
            ]
        for generation_id, number, asset_path, round_row in pending:
            assert generation_id is not None and round_row is not None and round_row.parent_ts is not None
            if asset_path is None or not Path(asset_path).exists():
                message = "The finished clip went missing before it could be posted; reply `again` to retry."
                self._save(Generation, generation_id, status=JobStatus.FAILED.value, error=message)
                continue
            thread = ThreadRef(round_row.channel_id, round_row.parent_ts)
            try:
                file_id = self.publisher.upload_file(
                    thread, Path(asset_path), title=f"Variation #{number}", comment=f"#{number} is ready"
                )
            except PublishError as err:
                log.warning("upload of generation %s failed, will retry: %s", generation_id, err)
                continue
            self._save(Generation, generation_id, file_id=file_id, posted_at=self.clock.now())
            report.uploaded += 1
            self._refresh_variation(generation_id)
            self.refresh_round(round_row.id or 0)

    def _save(self, model: type[Round] | type[Generation], row_id: int, **values: object) -> None:
        """Record what a slow call outside the transaction produced (a message ts, a file id…)."""
        with self.store.transaction() as repo:
            row = repo.get(model, row_id)
            assert row is not None, f"{model.__name__} {row_id} vanished"
            for name, value in values.items():
                setattr(row, name, value)
            repo.add(row)

    def _post_sheets(self, report: SweepReport) -> None:
        with self.store.read() as repo:
            todo = [(r, repo.generations_in_round(r.id or 0)) for r in repo.rounds_missing_sheet()]
        for round_row, generations in todo:
            assert round_row.id is not None and round_row.parent_ts is not None
            ready = [
                g for g in generations if g.status == JobStatus.COMPLETED.value and _asset(g) is not None
            ]
            file_id = "none"  # nothing to show (every variation failed): never try again
            if ready:
                sheet = self.assets.path_for(f"round-{round_row.id}-sheet.png")
                try:
                    media.contact_sheet(
                        [p for g in ready if (p := _asset(g))], sheet, labels=[f"#{g.number}" for g in ready]
                    )
                    file_id = self.publisher.upload_file(
                        ThreadRef(round_row.channel_id, round_row.parent_ts),
                        sheet,
                        title="Contact sheet",
                        comment="All variations side by side. React on a variation's message to vote.",
                    )
                except media.MediaError as err:
                    log.error("contact sheet for round %s cannot be made: %s", round_row.id, err)
                except PublishError as err:
                    log.warning("contact sheet for round %s failed, will retry: %s", round_row.id, err)
                    continue
            self._save(Round, round_row.id, sheet_file_id=file_id)
            report.sheets += 1

    def _close_due_rounds(self, report: SweepReport) -> None:
        with self.store.read() as repo:
            due = [r.id for r in repo.due_rounds(self.clock.now())]
        for round_id in due:
            assert round_id is not None
            if self.close_round(round_id, actor=DEADLINE_ACTOR).done:
                report.closed += 1

    def _announce_closed(self, report: SweepReport) -> None:
        with self.store.read() as repo:
            pending = [r.id for r in repo.rounds_missing_announcement()]
        for round_id in pending:
            assert round_id is not None
            self._announce(round_id)
            report.announced += 1

    # --- views ---------------------------------------------------------------------------------

    def refresh_round(self, round_id: int) -> None:
        """Bring the parent message and every variation message up to date with the rows."""
        with self.store.read() as repo:
            round_row = repo.get(Round, round_id)
            if round_row is None or round_row.parent_ts is None:
                return
            view = self._round_view(repo, round_row)
            messages = {g.id: g.message_ts for g in repo.generations_in_round(round_id)}
        thread = ThreadRef(round_row.channel_id, round_row.parent_ts)
        try:
            self.publisher.update_round(thread, view)
            for variation in view.variations:
                ts = messages.get(variation.generation_id)
                if ts is not None:
                    self.publisher.update_variation(thread, ts, variation)
        except PublishError as err:
            log.warning("could not refresh round %s: %s", round_id, err)

    def _refresh_variation(self, generation_id: int) -> None:
        with self.store.read() as repo:
            row = repo.get(Generation, generation_id)
            if row is None or row.message_ts is None:
                return
            round_row = repo.get(Round, row.round_id)
            assert round_row is not None and round_row.parent_ts is not None
            view = next(
                v for v in self._round_view(repo, round_row).variations if v.generation_id == generation_id
            )
            thread = ThreadRef(round_row.channel_id, round_row.parent_ts)
            message_ts = row.message_ts
        try:
            self.publisher.update_variation(thread, message_ts, view)
        except PublishError as err:
            log.warning("could not update variation %s: %s", generation_id, err)

    def round_view(self, round_id: int) -> RoundView:
        with self.store.read() as repo:
            round_row = repo.get(Round, round_id)
            if round_row is None:
                raise NotFound("That round no longer exists.")
            return self._round_view(repo, round_row)

    def _round_view(self, repo: Repo, round_row: Round) -> RoundView:
        assert round_row.id is not None
        generations = repo.generations_in_round(round_row.id)
        tally = self._tally(repo, round_row, generations)
        counts = {t.generation_id: t.votes for t in tally.tallies}
        is_open = round_row.status == RoundStatus.OPEN.value
        hide = round_row.blind and is_open
        numbers = {g.id: g.number for g in generations}
        queued = [g.id for g in generations if g.status == JobStatus.QUEUED.value]
        variations = tuple(
            VariationView(
                round_id=round_row.id,
                generation_id=g.id or 0,
                number=g.number,
                kind=GenerationKind(g.kind),
                prompt=g.prompt,
                status=JobStatus(g.status),
                progress=g.progress,
                seconds=g.seconds,
                aspect=Aspect(g.aspect),
                provider=g.provider,
                round_open=is_open,
                parent_number=numbers.get(g.parent_id) if g.parent_id else None,
                change=g.change,
                error=g.error,
                votes=None if hide else counts.get(g.id or 0, 0),
                is_winner=not is_open and g.id == round_row.winner_generation_id,
                queue_position=queued.index(g.id) + 1 if g.id in queued else None,
            )
            for g in generations
        )
        winner_number = (
            numbers.get(round_row.winner_generation_id) if round_row.winner_generation_id else None
        )
        return RoundView(
            round_id=round_row.id,
            channel_id=round_row.channel_id,
            owner_id=round_row.owner_id,
            title=round_row.title,
            status=RoundStatus(round_row.status),
            closes_at_epoch=int(round_row.closes_at.timestamp()),
            blind=round_row.blind,
            estimated_cost=round_row.estimated_cost,
            variations=variations,
            winner_number=None if is_open else winner_number,
            voters=tally.voters,
        )


def _asset(generation: Generation) -> Path | None:
    path = Path(generation.asset_path) if generation.asset_path else None
    return path if path is not None and path.exists() else None


def _numbers_hint(generations: Sequence[Generation]) -> str:
    if not generations:
        return "This round has no variations yet."
    return "This round has " + ", ".join(f"#{g.number}" for g in generations) + "."


def _finding_dict(finding: Finding) -> dict[str, str]:
    return {
        "rule": finding.rule,
        "severity": finding.severity.value,
        "message": finding.message,
        "fix": finding.fix,
    }


def _finding_from(data: dict[str, object]) -> Finding:
    return Finding(
        rule=str(data["rule"]),
        severity=Severity(str(data["severity"])),
        message=str(data["message"]),
        fix=str(data["fix"]),
    )


def _pattern_card(pattern: Pattern) -> PatternCard:
    assert pattern.id is not None
    outcome = pattern.outcome
    return PatternCard(
        pattern_id=pattern.id,
        title=pattern.title,
        prompt=pattern.prompt,
        spec=PromptSpec.from_dict(pattern.spec),
        winner_number=int(outcome.get("winner_number", 0)),
        votes=int(outcome.get("votes", 0)),
        voters=int(outcome.get("voters", 0)),
        rounds_closed_at=pattern.created_at.strftime("%Y-%m-%d"),
        settings=dict(pattern.settings),
        rhythm=tuple(pattern.rhythm),
    )
