"""Outbox queries: every Slack post, upload and update as a row, claimed with a lease before it is sent.

A worker claims whole rounds (every due row of a round, in order), so one round's messages go out in order and
never from two places at once; on PostgreSQL the rounds are locked with SKIP LOCKED while they are claimed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import col, delete, func, select

from storage.models import Generation, Outbox, Round
from storage.sql import Queries

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"

# Kinds whose send needs the variation's own message (its ts) to exist first.
NEEDS_VARIATION_MESSAGE = ("update_variation", "upload_clip")
PARENT = "post_parent"


class UpdateRequest(NamedTuple):
    """A message to update: its outbox key and what to make the row of, if there is none yet."""

    key: str
    kind: str
    round_id: int
    generation_id: int | None


class OutboxQueries(Queries):
    def enqueue(
        self, *, key: str, kind: str, round_id: int, generation_id: int | None, now: datetime
    ) -> bool:
        """Ask for something to be posted once; asking again for the same key changes nothing."""
        return self._insert_ignoring_duplicates(
            Outbox,
            {
                "key": key,
                "kind": kind,
                "round_id": round_id,
                "generation_id": generation_id,
                "due_at": now,
                "created_at": now,
            },
        )

    def request_update(
        self,
        *,
        key: str,
        kind: str,
        round_id: int,
        generation_id: int | None,
        now: datetime,
        min_gap: timedelta,
    ) -> None:
        """Ask for a message to show the rows' current state (see `request_updates`)."""
        self.request_updates([UpdateRequest(key, kind, round_id, generation_id)], now=now, min_gap=min_gap)

    def request_updates(
        self, requests: Sequence[UpdateRequest], *, now: datetime, min_gap: timedelta
    ) -> None:
        """Ask for messages to show the rows' current state. Requests coalesce: one row per message, sent no
        sooner than `min_gap` after its last send; a request during a send makes it go once more (the version
        moves past the one claimed). One statement for every message already asked for, whatever its state."""
        if not requests:
            return
        keys = [r.key for r in requests]
        bumped = self.session.execute(
            update(Outbox)
            .where(col(Outbox.key).in_(keys))
            .values(version=Outbox.version + 1)
            .returning(col(Outbox.key), col(Outbox.state), col(Outbox.sent_at))
        ).all()
        settled = [(key, sent_at) for key, state, sent_at in bumped if state in (SENT, FAILED)]
        for key, sent_at in settled:  # sent (or given up on) before: pending again, after the gap
            due = max(now, sent_at + min_gap) if sent_at is not None else now
            self.session.execute(
                update(Outbox)
                .where(col(Outbox.key) == key, col(Outbox.state).in_((SENT, FAILED)))
                .values(state=PENDING, attempts=0, due_at=due)
            )
        known = {key for key, _, _ in bumped}
        for request in requests:
            if request.key in known:
                continue
            if not self.enqueue(
                key=request.key,
                kind=request.kind,
                round_id=request.round_id,
                generation_id=request.generation_id,
                now=now,
            ):  # asked for by another transaction meanwhile: this request counts as one more
                self.request_updates([request], now=now, min_gap=min_gap)
        for loaded in list(self.session.identity_map.values()):  # rows this transaction loaded before
            if isinstance(loaded, Outbox) and loaded.key in keys:
                self.session.refresh(loaded)

    def by_key(self, key: str) -> Outbox | None:
        statement = select(Outbox).where(Outbox.key == key)
        return self.session.exec(statement.execution_options(populate_existing=True)).first()

    def in_round(self, round_id: int) -> Sequence[Outbox]:
        return self.session.exec(
            select(Outbox).where(Outbox.round_id == round_id).order_by(col(Outbox.id))
        ).all()

    def claim(
        self, *, now: datetime, owner: str, lease: timedelta, rounds: int, round_id: int | None = None
    ) -> list[Outbox]:
        """Lease every due row of up to `rounds` rounds that nobody else is sending for.

        A row whose lease ran out while `sending` (its worker died mid-send) comes back marked uncertain:
        Slack may have it, so the sender looks before sending again.
        """
        ready = self._ready(now)
        busy_row = aliased(Outbox)
        busy = (
            select(busy_row.id)
            .where(
                busy_row.round_id == Outbox.round_id,
                busy_row.state == SENDING,
                col(busy_row.lease_until) >= now,
            )
            .exists()
        )
        candidates = (
            select(Outbox.round_id)
            .join(Round, col(Round.id) == col(Outbox.round_id))
            .outerjoin(Generation, col(Generation.id) == col(Outbox.generation_id))
            .where(ready, ~busy)
            .group_by(col(Outbox.round_id))
            .order_by(func.min(Outbox.id))
            .limit(rounds)
        )
        if round_id is not None:
            candidates = candidates.where(Outbox.round_id == round_id)
        round_ids = list(self.session.exec(candidates).all())
        if not round_ids:
            return []
        if self.dialect == "postgresql":
            # Another worker claiming the same round waits here, or skips it, and sees our leases afterwards.
            locked = select(Round.id).where(col(Round.id).in_(round_ids)).with_for_update(skip_locked=True)
            round_ids = [r for r in self.session.exec(locked).all() if r is not None]
            still_busy = select(Outbox.round_id).where(
                col(Outbox.round_id).in_(round_ids), Outbox.state == SENDING, col(Outbox.lease_until) >= now
            )
            taken = set(self.session.exec(still_busy).all())
            round_ids = [r for r in round_ids if r not in taken]
        if not round_ids:
            return []
        statement = (
            select(Outbox)
            .join(Round, col(Round.id) == col(Outbox.round_id))
            .outerjoin(Generation, col(Generation.id) == col(Outbox.generation_id))
            .where(col(Outbox.round_id).in_(round_ids), ready)
            .order_by(col(Outbox.id))
        )
        rows = list(self.session.exec(statement.execution_options(populate_existing=True)).all())
        for row in rows:
            if row.state == SENDING:  # its sender died mid-send
                row.uncertain = True
            row.state = SENDING
            row.lease_owner, row.lease_until = owner, now + lease
            row.attempts += 1
            row.claimed_version = row.version
            self.session.add(row)
        self.session.flush()
        return rows

    def _ready(self, now: datetime) -> ColumnElement[bool]:
        due = or_(
            and_(col(Outbox.state) == PENDING, col(Outbox.due_at) <= now),
            and_(col(Outbox.state) == SENDING, col(Outbox.lease_until) < now),
        )
        prerequisites = or_(
            col(Outbox.kind) == PARENT,
            and_(
                col(Round.parent_ts).is_not(None),
                or_(
                    col(Outbox.kind).not_in(NEEDS_VARIATION_MESSAGE),
                    col(Generation.message_ts).is_not(None),
                ),
            ),
        )
        return and_(due, prerequisites)

    def renew(self, row_id: int, *, owner: str, now: datetime, lease: timedelta) -> bool:
        """Extend `owner`'s lease on a row it is about to send; False when the lease was lost (it ran out and
        another worker took the row over), and then the row must not be sent from here."""
        return self._conditional_update(
            Outbox,
            and_(
                col(Outbox.id) == row_id,
                col(Outbox.lease_owner) == owner,
                col(Outbox.state) == SENDING,
                col(Outbox.lease_until) >= now,
            ),
            {"lease_until": now + lease},
        )

    def mark_sent(
        self,
        row_id: int,
        *,
        owner: str,
        now: datetime,
        ts: str | None,
        file_id: str | None,
        min_gap: timedelta,
    ) -> bool:
        """Record a send. An update asked for again while it was sending goes again after `min_gap`.
        False when the lease was lost meanwhile (another worker took the row over)."""
        row = self._held(row_id, owner)
        if row is None:
            return False
        row.ts = ts or row.ts
        row.file_id = file_id or row.file_id
        row.sent_at = now
        row.uncertain = False
        row.error = None
        row.lease_owner = row.lease_until = None
        if row.version > row.claimed_version:
            row.state, row.due_at, row.attempts = PENDING, now + min_gap, 0
        else:
            row.state = SENT
        self.session.add(row)
        return True

    def mark_retry(self, row_id: int, *, owner: str, due: datetime, error: str, uncertain: bool) -> None:
        row = self._held(row_id, owner)
        if row is None:
            return
        row.state, row.due_at, row.error = PENDING, due, error
        row.uncertain = row.uncertain or uncertain
        row.lease_owner = row.lease_until = None
        self.session.add(row)

    def mark_failed(self, row_id: int, *, owner: str, error: str) -> None:
        row = self._held(row_id, owner)
        if row is None:
            return
        row.state, row.error = FAILED, error
        row.lease_owner = row.lease_until = None
        self.session.add(row)

    def next_due(self) -> datetime | None:
        """When the next pending row is due, or a dead sender's lease runs out."""
        pending = select(func.min(Outbox.due_at)).where(Outbox.state == PENDING)
        leased = select(func.min(Outbox.lease_until)).where(Outbox.state == SENDING)
        times = [t for t in (self.session.exec(pending).one(), self.session.exec(leased).one()) if t]
        return min(times) if times else None

    def forget_finished_before(self, cutoff: datetime) -> int:
        """Sent and failed rows older than `cutoff` go: their rounds are long settled, and a message that
        needs showing again is asked for with a new row. Contact sheet rows stay: one per round, and their
        presence is what says the round has had its sheet."""
        statement = delete(Outbox).where(
            col(Outbox.state).in_([SENT, FAILED]),
            col(Outbox.created_at) < cutoff,
            col(Outbox.kind) != "upload_sheet",
        )
        return int(self.session.execute(statement).rowcount)  # type: ignore[attr-defined]

    def backlog(self) -> int:
        statement = select(func.count()).select_from(Outbox).where(col(Outbox.state).in_([PENDING, SENDING]))
        return int(self.session.exec(statement).one())

    def count_by_state(self) -> dict[str, int]:
        """How many rows are waiting or being sent, and how many failed for good, by state."""
        statement = (
            select(Outbox.state, func.count())
            .where(col(Outbox.state).in_([PENDING, SENDING, FAILED]))
            .group_by(col(Outbox.state))
        )
        return {str(state): int(n) for state, n in self.session.exec(statement).all()}

    def _held(self, row_id: int, owner: str) -> Outbox | None:
        statement = select(Outbox).where(Outbox.id == row_id, Outbox.lease_owner == owner)
        return self.session.exec(statement.execution_options(populate_existing=True)).first()
