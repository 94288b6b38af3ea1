"""Round queries: a Generate opens a thread's first round, and work after a close opens the next one in the same
thread (`previous_id`, `thread_ts`); each round is closed exactly once, whoever asks twice.

`open → closed`, or `open → tied → closed` when the vote ends level and the owner has time to pick: each move
is a conditional update on the status it starts from, so two clicks or two replicas make it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_
from sqlmodel import col, func, select

from storage.generations import TERMINAL
from storage.models import Generation, Outbox, Round
from storage.sql import Queries

OPEN = "open"
SHEET = "upload_sheet"  # the outbox kind of a round's contact sheet
CLOSED = "closed"
TIED = "tied"


class Rounds(Queries):
    def get(self, round_id: int) -> Round | None:
        return self.session.get(Round, round_id)

    def get_for_update(self, round_id: int) -> Round | None:
        """The round, locked until the transaction ends (PostgreSQL; SQLite's write lock already serialises)."""
        statement = select(Round).where(Round.id == round_id)
        if self.dialect == "postgresql":
            statement = statement.with_for_update()
        return self.session.exec(statement.execution_options(populate_existing=True)).first()

    def insert(self, round_row: Round) -> Round:
        return self._insert(round_row)  # type: ignore[no-any-return]

    def in_thread(self, channel_id: str, thread_ts: str) -> Sequence[Round]:
        """The thread's rounds, first to latest: the one that started it (its message is the thread's parent)
        and those that followed it there."""
        statement = (
            select(Round)
            .where(
                Round.channel_id == channel_id,
                or_(
                    col(Round.thread_ts) == thread_ts,
                    and_(col(Round.thread_ts).is_(None), col(Round.parent_ts) == thread_ts),
                ),
            )
            .order_by(col(Round.id))
        )
        return self.session.exec(statement.execution_options(populate_existing=True)).all()

    def by_message(self, channel_id: str, parent_ts: str) -> Round | None:
        """The round whose own message is `parent_ts`."""
        statement = select(Round).where(Round.channel_id == channel_id, Round.parent_ts == parent_ts)
        return self.session.exec(statement).first()

    def following(self, round_id: int) -> Round | None:
        """The round that follows this one in its thread, if one has opened."""
        return self.session.exec(select(Round).where(Round.previous_id == round_id)).first()

    def latest_in_channel(self, channel_id: str) -> Round | None:
        statement = (
            select(Round).where(Round.channel_id == channel_id).order_by(col(Round.id).desc()).limit(1)
        )
        return self.session.exec(statement).first()

    def set_parent(self, round_id: int, parent_ts: str) -> None:
        self._conditional_update(Round, col(Round.id) == round_id, {"parent_ts": parent_ts})

    def close(
        self,
        round_id: int,
        *,
        now: datetime,
        actor: str | None,
        winner_generation_id: int | None,
        reason: str | None = None,
        pick_reason: str | None = None,
        tied: bool = False,
    ) -> bool:
        """Close an open round (`tied`: a tied one); `actor` None is the deadline, the quorum or the tie rule.
        False when it was not in that state any more (already closed by a click or a replica)."""
        return self._conditional_update(
            Round,
            and_(col(Round.id) == round_id, col(Round.status) == (TIED if tied else OPEN)),
            {
                "status": CLOSED,
                "closed_at": now,
                "closed_by": actor,
                "winner_generation_id": winner_generation_id,
                "close_reason": reason,
                "pick_reason": pick_reason,
                "closes": Round.closes + 1,
            },
        )

    def tie(self, round_id: int, *, now: datetime, until: datetime, actor: str | None, reason: str) -> bool:
        """An open round whose vote ended level: voting stops and the owner may pick until `until`."""
        return self._conditional_update(
            Round,
            and_(col(Round.id) == round_id, col(Round.status) == OPEN),
            {
                "status": TIED,
                "closes_at": until,
                "closed_at": now,
                "closed_by": actor,
                "close_reason": reason,
            },
        )

    def add_cost(self, round_id: int, amount: float) -> None:
        """The round's cost so far moves by `amount`: a variation charged (positive) or refunded (negative)."""
        self._conditional_update(
            Round, col(Round.id) == round_id, {"estimated_cost": Round.estimated_cost + amount}
        )

    def due(self, now: datetime, *, limit: int = 20) -> Sequence[Round]:
        """Open rounds past their deadline, and tied rounds whose owner's time to pick is over."""
        statement = (
            select(Round)
            .where(
                col(Round.status).in_((OPEN, TIED)),
                col(Round.closes_at) <= now,
                col(Round.parent_ts).is_not(None),
            )
            .order_by(col(Round.closes_at))
            .limit(limit)
        )
        return self.session.exec(statement).all()

    def open_rounds(self, *, limit: int = 200) -> Sequence[Round]:
        statement = (
            select(Round)
            .where(Round.status == OPEN, col(Round.parent_ts).is_not(None))
            .order_by(col(Round.id))
            .limit(limit)
        )
        return self.session.exec(statement).all()

    def next_deadline(self) -> datetime | None:
        statement = select(func.min(Round.closes_at)).where(col(Round.status).in_((OPEN, TIED)))
        return self.session.exec(statement).one()

    def count_open(self, channel_id: str) -> int:
        statement = (
            select(func.count())
            .select_from(Round)
            .where(Round.channel_id == channel_id, Round.status == OPEN)
        )
        return int(self.session.exec(statement).one())

    def needing_sheet(self, *, limit: int = 20) -> Sequence[Round]:
        """Rounds whose variations have all finished and that have no contact sheet in the outbox yet."""
        unfinished = (
            select(Generation.id)
            .where(Generation.round_id == Round.id, col(Generation.status).not_in(TERMINAL))
            .exists()
        )
        queued = select(Outbox.id).where(Outbox.round_id == Round.id, Outbox.kind == SHEET).exists()
        statement = select(Round).where(Round.status != "cancelled", ~unfinished, ~queued).limit(limit)
        return self.session.exec(statement).all()
