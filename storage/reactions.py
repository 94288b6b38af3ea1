"""Reaction events between Slack and the votes: written once by the listener, applied in batches, pruned later.

On PostgreSQL a batch is taken with SKIP LOCKED, so replicas applying at once take different rows; applying one
twice would change nothing anyway (a vote row keeps the newest event's state, whatever the order).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, delete, func, select, update

from storage.models import ReactionEvent
from storage.sql import Queries


class ReactionEvents(Queries):
    def add_many(self, rows: Sequence[dict[str, object]], *, now: datetime) -> int:
        """Keep delivered reactions in one statement; an event id known already (Slack delivering an event again)
        is skipped. Returns how many were new."""
        if not rows:
            return 0
        table = ReactionEvent.__table__  # type: ignore[attr-defined]
        insert = postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)
        statement = (
            insert.values([{**row, "received_at": now} for row in rows])
            .on_conflict_do_nothing()
            .returning(table.c.id)
        )
        return len(self.session.execute(statement).all())

    def pending(self, *, limit: int) -> Sequence[ReactionEvent]:
        """The oldest reactions not applied yet, locked for this transaction (others skip them)."""
        statement = (
            select(ReactionEvent)
            .where(col(ReactionEvent.applied_at).is_(None))
            .order_by(col(ReactionEvent.id))
            .limit(limit)
        )
        if self.dialect == "postgresql":
            statement = statement.with_for_update(skip_locked=True)
        return self.session.exec(statement).all()

    def mark_applied(self, ids: Sequence[int], *, now: datetime) -> None:
        if ids:
            self.session.execute(
                update(ReactionEvent).where(col(ReactionEvent.id).in_(ids)).values(applied_at=now)
            )

    def waiting(self) -> int:
        statement = (
            select(func.count()).select_from(ReactionEvent).where(col(ReactionEvent.applied_at).is_(None))
        )
        return int(self.session.exec(statement).one())

    def forget_applied_before(self, cutoff: datetime) -> int:
        """Applied reactions older than `cutoff` (Slack stops retrying within minutes) can go."""
        result = self.session.execute(
            delete(ReactionEvent).where(
                col(ReactionEvent.applied_at).is_not(None), col(ReactionEvent.received_at) < cutoff
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
