"""Generation queries and the job lifecycle as named transitions.

queued → submitting → in_progress → completed | failed | cancelled. Every move is one method here: claim (a
lease, so replicas never work one job twice), mark submitting (written before the provider is called), started
(the provider's job id, stored the moment it is known; the database refuses a second owner), completed, failed,
requeued, rescheduled, cancelled, released. Nothing else writes a generation's status.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select

from storage.models import Generation, Round
from storage.sql import Queries

QUEUED = "queued"
SUBMITTING = "submitting"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
TERMINAL = (COMPLETED, FAILED, CANCELLED)
ACTIVE = (QUEUED, SUBMITTING, IN_PROGRESS)


class Generations(Queries):
    # --- reads ------------------------------------------------------------------------------

    def get(self, generation_id: int) -> Generation | None:
        statement = select(Generation).where(Generation.id == generation_id)
        return self.session.exec(statement.execution_options(populate_existing=True)).first()

    def in_round(self, round_id: int) -> Sequence[Generation]:
        statement = select(Generation).where(Generation.round_id == round_id).order_by(col(Generation.number))
        return self.session.exec(statement).all()

    def by_message(self, channel_id: str, message_ts: str) -> Generation | None:
        statement = (
            select(Generation)
            .join(Round, col(Round.id) == col(Generation.round_id))
            .where(
                Round.channel_id == channel_id,
                or_(col(Generation.message_ts) == message_ts, col(Generation.clip_ts) == message_ts),
            )
        )
        return self.session.exec(statement).first()

    def by_messages(self, channel_id: str, message_ts: Collection[str]) -> list[Generation]:
        """The variations whose own message or clip's message is one of `message_ts` in `channel_id`."""
        if not message_ts:
            return []
        statement = (
            select(Generation)
            .join(Round, col(Round.id) == col(Generation.round_id))
            .where(
                Round.channel_id == channel_id,
                or_(col(Generation.message_ts).in_(message_ts), col(Generation.clip_ts).in_(message_ts)),
            )
        )
        return list(self.session.exec(statement).all())

    def clips_without_message(self, channel_id: str, *, limit: int = 8) -> list[Generation]:
        """Clips uploaded into `channel_id` whose own message's ts is not known yet, newest first."""
        statement = (
            select(Generation)
            .join(Round, col(Round.id) == col(Generation.round_id))
            .where(
                Round.channel_id == channel_id,
                col(Generation.clip_file_id).is_not(None),
                col(Generation.clip_ts).is_(None),
            )
            .order_by(col(Generation.id).desc())
            .limit(limit)
        )
        return list(self.session.exec(statement).all())

    def by_job(self, provider: str, job_id: str) -> Generation | None:
        """By the id a provider's callback names the job by: its callback id, else its job id."""
        named = or_(col(Generation.provider_callback_id) == job_id, col(Generation.provider_job_id) == job_id)
        statement = select(Generation).where(Generation.provider == provider, named)
        return self.session.exec(statement).first()

    def owned_job_ids(self, provider: str, job_ids: Sequence[str]) -> set[str]:
        """Which of these provider job ids a generation already owns."""
        if not job_ids:
            return set()
        statement = select(Generation.provider_job_id).where(
            Generation.provider == provider, col(Generation.provider_job_id).in_(list(job_ids))
        )
        return {job_id for job_id in self.session.exec(statement).all() if job_id}

    def unsettled_submits(self, provider: str, prompt: str, *, except_ids: Sequence[int]) -> int:
        """Creates at `provider` for this prompt whose job id is not known yet, other than `except_ids`: being
        sent now, or unanswered and not yet looked up. While any remain, a job listed at the provider with this
        prompt may be theirs."""
        statement = (
            select(func.count())
            .select_from(Generation)
            .where(
                Generation.provider == provider,
                Generation.prompt == prompt,
                Generation.status == SUBMITTING,
                col(Generation.provider_job_id).is_(None),
                col(Generation.id).not_in(list(except_ids)),
            )
        )
        return int(self.session.exec(statement).one())

    def recent_unanswered(self, provider: str, *, since: datetime) -> list[Generation]:
        """One generation per distinct (prompt, aspect, model) whose create at `provider` went unanswered since
        `since`, the earliest: what a look for jobs a late create left behind lists by."""
        statement = (
            select(Generation)
            .where(
                Generation.provider == provider,
                col(Generation.create_unanswered).is_(True),
                col(Generation.submitted_at).is_not(None),
                col(Generation.submitted_at) >= since,
            )
            .order_by(col(Generation.submitted_at))
        )
        seen: dict[tuple[str, str, str | None], Generation] = {}
        for row in self.session.exec(statement).all():
            seen.setdefault((row.prompt, row.aspect, row.model), row)
        return list(seen.values())

    def count_active(self, *, channel_id: str, user_id: str) -> dict[str, tuple[int, int]]:
        """Per status, (all in this channel, this user's) for jobs not finished yet."""
        statement = (
            select(Generation.status, Generation.requested_by, func.count())
            .join(Round, col(Round.id) == col(Generation.round_id))
            .where(Round.channel_id == channel_id, col(Generation.status).not_in(TERMINAL))
            .group_by(col(Generation.status), col(Generation.requested_by))
        )
        counts: dict[str, tuple[int, int]] = {}
        for status, requested_by, count in self.session.exec(statement).all():
            everyone, mine = counts.get(status, (0, 0))
            counts[status] = (everyone + count, mine + (count if requested_by == user_id else 0))
        return counts

    def next_due(self) -> datetime | None:
        """When the next waiting job is due (queued, submitting or running), if any."""
        statement = select(func.min(Generation.next_poll_at)).where(col(Generation.status).in_(ACTIVE))
        return self.session.exec(statement).one()

    def count_by_status(self) -> dict[str, int]:
        """How many generations are in each status (the status index answers it)."""
        statement = select(Generation.status, func.count()).group_by(col(Generation.status))
        return {str(status): int(n) for status, n in self.session.exec(statement).all()}

    def count_waiting(self) -> int:
        """Jobs not finished yet, anywhere."""
        statement = select(func.count()).select_from(Generation).where(col(Generation.status).in_(ACTIVE))
        return int(self.session.exec(statement).one())

    def queued_ahead(self, provider: str, generation_id: int) -> int:
        """How many queued jobs for `provider` are ahead of this one (the line is first come, first served)."""
        statement = (
            select(func.count())
            .select_from(Generation)
            .where(
                Generation.provider == provider,
                Generation.status == QUEUED,
                col(Generation.id) < generation_id,
            )
        )
        return int(self.session.exec(statement).one())

    def count_inflight(self, provider: str) -> int:
        """Jobs a provider is working on for us now (its concurrency limit counts these)."""
        statement = (
            select(func.count())
            .select_from(Generation)
            .where(Generation.provider == provider, col(Generation.status).in_([SUBMITTING, IN_PROGRESS]))
        )
        return int(self.session.exec(statement).one())

    # --- creation ---------------------------------------------------------------------------

    def add_to_round(self, row: Generation, *, after: Sequence[int] = ()) -> Generation:
        """Insert `row` as the round's next #N, numbered after the rounds `after` too (the earlier rounds of its
        thread: one number names one variation in a thread). The caller holds the round's lock."""
        rounds = [row.round_id, *after]
        statement = select(func.max(Generation.number)).where(col(Generation.round_id).in_(rounds))
        row.number = int(self.session.exec(statement).one() or 0) + 1
        return self._insert(row)  # type: ignore[no-any-return]

    # --- claims -----------------------------------------------------------------------------

    def claim_due(
        self, *, statuses: Sequence[str], now: datetime, owner: str, lease: timedelta, limit: int
    ) -> list[Generation]:
        """Lease due generations in `statuses` to `owner`, so replicas never work one job twice.

        A row is due when its next poll time has come and nobody else holds a live lease on it.
        """
        due = and_(
            col(Generation.status).in_(statuses),
            or_(col(Generation.next_poll_at).is_(None), col(Generation.next_poll_at) <= now),
            or_(col(Generation.lease_until).is_(None), col(Generation.lease_until) < now),
        )
        candidates = select(Generation.id).where(due).order_by(col(Generation.id)).limit(limit)
        if self.dialect == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        ids = [row for row in self.session.exec(candidates).all() if row is not None]
        if not ids:
            return []
        self.session.execute(
            update(Generation)
            .where(col(Generation.id).in_(ids), due)
            .values(lease_owner=owner, lease_until=now + lease)
        )
        statement = select(Generation).where(col(Generation.id).in_(ids), Generation.lease_owner == owner)
        return list(self.session.exec(statement.execution_options(populate_existing=True)).all())

    def claim_running(
        self, generation_id: int, *, now: datetime, owner: str, lease: timedelta
    ) -> Generation | None:
        """Lease one in-progress generation now (a provider called back), unless someone holds it."""
        free = or_(col(Generation.lease_until).is_(None), col(Generation.lease_until) < now)
        claimed = self._conditional_update(
            Generation,
            and_(col(Generation.id) == generation_id, col(Generation.status) == IN_PROGRESS, free),
            {"lease_owner": owner, "lease_until": now + lease},
        )
        return self.get(generation_id) if claimed else None

    # --- transitions ------------------------------------------------------------------------

    def mark_submitting(self, row: Generation, *, now: datetime) -> None:
        """Written and committed before the provider is called: a crash leaves "maybe submitted"."""
        row.status = SUBMITTING
        row.submitted_at = now
        row.attempts += 1
        self.session.add(row)

    def mark_started(
        self,
        generation_id: int,
        *,
        job_id: str,
        callback_id: str | None,
        seconds: int | None,
        progress: int,
        next_poll_at: datetime,
    ) -> str:
        """Store the provider's job id the moment it is known. Returns the row's status afterwards:
        `in_progress`, or `cancelled` when someone cancelled it while it was being submitted (the caller
        cancels the job at the provider). Raises `JobTaken` when another generation owns that job id."""
        row = self.get(generation_id)
        assert row is not None, f"generation {generation_id} vanished"
        row.provider_job_id = job_id
        row.provider_callback_id = callback_id
        row.seconds = seconds or row.seconds  # what the provider will really make (and bill)
        if row.status != CANCELLED:
            row.status, row.progress, row.error, row.next_poll_at = IN_PROGRESS, progress, None, next_poll_at
        row.lease_owner = row.lease_until = None
        self.session.add(row)
        try:
            with self.session.begin_nested():  # the unique (provider, job id) constraint has the last word
                self.session.flush()
        except IntegrityError as err:  # another replica stored the same job id first
            raise JobTaken(job_id) from err
        return row.status

    def mark_uncertain(self, generation_id: int, *, error: str, look_at: datetime) -> None:
        """A create whose answer was lost: stay `submitting` and look the job up at `look_at`."""
        self._set(
            generation_id,
            error=error,
            next_poll_at=look_at,
            create_unanswered=True,
            lease_owner=None,
            lease_until=None,
        )

    def note_unanswered(self, generation_ids: Sequence[int]) -> None:
        """These creates went unanswered (a crash): remembered, so a job that lands late is looked for."""
        if generation_ids:
            self.session.execute(
                update(Generation)
                .where(col(Generation.id).in_(list(generation_ids)))
                .values(create_unanswered=True)
            )

    def mark_completed(
        self,
        generation_id: int,
        *,
        asset_path: str,
        cost: float,
        now: datetime,
        clip_seconds: float | None = None,
    ) -> bool:
        """False when the row is no longer running (cancelled meanwhile: the row's word stands)."""
        return self._move(
            generation_id,
            IN_PROGRESS,
            status=COMPLETED,
            progress=100,
            asset_path=asset_path,
            clip_seconds=clip_seconds,
            completed_at=now,
            cost=cost,
            lease_owner=None,
            lease_until=None,
        )

    def mark_failed(self, generation_id: int, *, error: str) -> bool:
        """Fail a job that is not finished yet; False when it already was (or was cancelled)."""
        return self._conditional_update(
            Generation,
            and_(col(Generation.id) == generation_id, col(Generation.status).in_(ACTIVE)),
            {"status": FAILED, "error": error, "lease_owner": None, "lease_until": None},
        )

    def mark_provider_ended(self, generation_id: int, *, status: str, error: str) -> bool:
        """The provider reports the job failed or was cancelled on its side."""
        return self._move(
            generation_id, IN_PROGRESS, status=status, error=error, lease_owner=None, lease_until=None
        )

    def requeue(self, generation_id: int, *, due: datetime) -> None:
        """A refusal worth retrying (429, 5xx): back in the line, not before `due`."""
        self._move(
            generation_id,
            SUBMITTING,
            status=QUEUED,
            next_poll_at=due,
            lease_owner=None,
            lease_until=None,
        )

    def reschedule(self, generation_id: int, *, next_poll_at: datetime, progress: int | None) -> None:
        """Still running: look again at `next_poll_at`."""
        row = self.get(generation_id)
        if row is None or row.status != IN_PROGRESS:
            return
        row.attempts += 1
        row.next_poll_at = next_poll_at
        if progress is not None:
            row.progress = progress
        row.lease_owner = row.lease_until = None
        self.session.add(row)

    def cancel(self, generation_id: int) -> bool:
        """Cancel a job not finished yet; a poll or submit in flight will not overwrite it."""
        return self._conditional_update(
            Generation,
            and_(col(Generation.id) == generation_id, col(Generation.status).in_(ACTIVE)),
            {"status": CANCELLED, "error": None, "lease_owner": None, "lease_until": None},
        )

    def make_due(self, generation_id: int, *, now: datetime) -> bool:
        """A provider called back: look at this running job now rather than at its turn."""
        return self._move(generation_id, IN_PROGRESS, next_poll_at=now)

    def release(self, generation_id: int) -> None:
        self._set(generation_id, lease_owner=None, lease_until=None)

    def set_message(self, generation_id: int, message_ts: str) -> None:
        self._set(generation_id, message_ts=message_ts)

    def set_clip(self, generation_id: int, *, file_id: str | None, ts: str | None) -> None:
        """The uploaded clip's file id and, once known, its own message's ts (never unset again)."""
        values: dict[str, object] = {}
        if file_id:
            values["clip_file_id"] = file_id
        if ts:
            values["clip_ts"] = ts
        if values:
            self._set(generation_id, **values)

    def _move(self, generation_id: int, expected: str, **values: object) -> bool:
        return self._conditional_update(
            Generation, and_(col(Generation.id) == generation_id, col(Generation.status) == expected), values
        )

    def _set(self, generation_id: int, **values: object) -> None:
        self._conditional_update(Generation, col(Generation.id) == generation_id, values)


class JobTaken(Exception):
    """Another generation already owns this provider job id."""
