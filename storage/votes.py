"""Vote queries: one row per (variation, person, emoji, message holding it), active or removed, ordered by Slack's
event ts.

A blind round's button votes are rows too (under a name no emoji has); reconciling with Slack's reactions
never touches them.

Slack may deliver a `reaction_removed` before its `reaction_added`; keeping the removal (inactive, with its
event ts) means the late add is recognised as older and does not revive a vote nobody holds.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlmodel import col, select

from storage.models import Vote
from storage.sql import Queries

MESSAGE, CLIP = "message", "clip"  # which message holds a reaction: the variation's own, or its clip's


class Votes(Queries):
    def record(
        self,
        *,
        round_id: int,
        generation_id: int,
        user_id: str,
        emoji: str,
        active: bool,
        event_ts: str,
        now: datetime,
        source: str = MESSAGE,
    ) -> bool:
        """Apply one event; True when the vote changed. An event older than the row's is ignored."""
        row = self._row(generation_id, user_id, emoji, source)
        if row is None:
            inserted = self._insert_ignoring_duplicates(
                Vote,
                {
                    "round_id": round_id,
                    "generation_id": generation_id,
                    "user_id": user_id,
                    "emoji": emoji,
                    "source": source,
                    "active": active,
                    "event_ts": event_ts,
                    "created_at": now,
                },
            )
            if inserted:
                return active
            row = self._row(generation_id, user_id, emoji, source)  # a concurrent event inserted it first
            assert row is not None
        changed = apply_event(row, active=active, event_ts=event_ts)
        self.session.add(row)
        return changed

    def of_users(self, round_id: int, user_ids: Collection[str]) -> list[Vote]:
        """Every row (held or removed) of these people in a round, fresh from the database (`ix_vote_round_user`):
        a batch of reactions reads its voters' rows once, whatever the round holds besides."""
        statement = select(Vote).where(Vote.round_id == round_id, col(Vote.user_id).in_(list(user_ids)))
        return list(self.session.exec(statement.execution_options(populate_existing=True)).all())

    def add(self, row: Vote) -> None:
        """A new row, written with the transaction (the caller holds the round's lock: nobody else writes it)."""
        self.session.add(row)

    def active_in_round(
        self, round_id: int, *, user_id: str | None = None
    ) -> list[tuple[int, str, str, str]]:
        """(generation, user, emoji, event ts) of every held vote in a round, or one person's
        (`ix_vote_round_user`), as plain rows: a tally reads them often and needs no ORM objects."""
        statement = select(Vote.generation_id, Vote.user_id, Vote.emoji, Vote.event_ts).where(
            Vote.round_id == round_id, col(Vote.active).is_(True)
        )
        if user_id is not None:
            statement = statement.where(Vote.user_id == user_id)
        return [tuple(row) for row in self.session.execute(statement.order_by(col(Vote.id))).all()]

    def of_user(self, round_id: int, user_id: str, emoji: str) -> Sequence[Vote]:
        """A person's rows under one name in a round (a blind round's buttons), fresh from the database."""
        statement = select(Vote).where(
            Vote.round_id == round_id, Vote.user_id == user_id, Vote.emoji == emoji
        )
        return self.session.exec(statement.execution_options(populate_existing=True)).all()

    def reconcile(
        self,
        *,
        round_id: int,
        generation_id: int,
        held: Collection[tuple[str, str, str]],
        now: datetime,
        skip_emoji: Collection[str] = (),
    ) -> int:
        """Make the variation's votes exactly `held` ((user, emoji, source) Slack reports); returns the changes.

        Slack's reactions are the record: an acknowledged vote lost in a crash, an event never delivered and a
        removal that came before its add all end as Slack shows them.
        """
        rows = self.session.exec(select(Vote).where(Vote.generation_id == generation_id)).all()
        existing = {(r.user_id, r.emoji, r.source): r for r in rows if r.emoji not in skip_emoji}
        changes = 0
        for key, row in existing.items():
            should = key in held
            if row.active != should:
                row.active = should
                self.session.add(row)
                changes += 1
        for user_id, emoji, source in set(held) - set(existing):
            self._insert_ignoring_duplicates(
                Vote,
                {
                    "round_id": round_id,
                    "generation_id": generation_id,
                    "user_id": user_id,
                    "emoji": emoji,
                    "source": source,
                    "active": True,
                    "event_ts": "",
                    "created_at": now,
                },
            )
            changes += 1
        return changes

    def _row(self, generation_id: int, user_id: str, emoji: str, source: str) -> Vote | None:
        statement = select(Vote).where(
            Vote.generation_id == generation_id,
            Vote.user_id == user_id,
            Vote.emoji == emoji,
            Vote.source == source,
        )
        return self.session.exec(statement.execution_options(populate_existing=True)).first()


def apply_event(row: Vote, *, active: bool, event_ts: str) -> bool:
    """One event on a row: True when it changed whether the vote is held. An event older than the row's last
    one is ignored, so events applied in any order (Slack's, or two replicas') end with the newest one's state."""
    if ts_order(event_ts) < ts_order(row.event_ts):
        return False
    changed = row.active != active
    row.active, row.event_ts = active, event_ts
    return changed


def ts_order(ts: str) -> tuple[int, int]:
    """Slack ts strings ("1700000000.000100") compared as numbers; an empty ts (reconciled) is oldest."""
    seconds, _, fraction = ts.partition(".")
    try:
        return int(seconds or 0), int(fraction.ljust(6, "0")[:6] or 0)
    except ValueError:
        return 0, 0
