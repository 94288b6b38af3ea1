"""Channel settings and the cost ledger: defaults per channel, and the daily budget charged atomically."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, func, select

from storage.models import ChannelSettings, Spend
from storage.sql import Queries


class Channels(Queries):
    def settings(self, channel_id: str) -> ChannelSettings | None:
        return self.session.get(ChannelSettings, channel_id)

    def save_settings(self, row: ChannelSettings) -> ChannelSettings:
        return self._insert(row)  # type: ignore[no-any-return]


class Ledger(Queries):
    """The cost ledger. The budget rule itself lives in the core (`bot.channels`); this serialises it."""

    def lock_channel(self, *, channel_id: str, team_id: str, user_id: str, now: datetime) -> None:
        """Hold the channel's settings row until the transaction ends (PostgreSQL; SQLite's write lock already
        serialises writers), so two charges in one channel are decided one after the other."""
        self._insert_ignoring_duplicates(
            ChannelSettings,
            {"channel_id": channel_id, "team_id": team_id, "updated_by": user_id, "updated_at": now},
        )
        lock = select(ChannelSettings.channel_id).where(ChannelSettings.channel_id == channel_id)
        if self.dialect == "postgresql":
            lock = lock.with_for_update()
        self.session.exec(lock).first()

    def record(self, spend: Spend) -> None:
        self._insert(spend)

    def refund(self, spend: Spend) -> bool:
        """Record a refund (`spend.refund_of` set, a negative amount) unless that generation has one already: a
        cancel or failure seen twice, or by two workers, gives the money back once. True when this one counted."""
        assert spend.refund_of is not None and spend.amount <= 0
        return self._insert_ignoring_duplicates(Spend, spend.model_dump(exclude={"id"}))

    def refunded(self, generation_id: int) -> float:
        """What was given back for this generation (0 when nothing was)."""
        statement = select(func.coalesce(func.sum(Spend.amount), 0.0)).where(Spend.refund_of == generation_id)
        return -float(self.session.exec(statement).one())

    def spent_today(self, channel_id: str, *, day: str) -> float:
        statement = select(func.coalesce(func.sum(Spend.amount), 0.0)).where(
            Spend.channel_id == channel_id, Spend.day == day
        )
        return float(self.session.exec(statement).one())

    def round_costs(self, round_id: int) -> tuple[float, float]:
        """What a round was charged and what was given back of it (refunds are negative rows)."""
        charged = select(func.coalesce(func.sum(Spend.amount), 0.0)).where(
            Spend.round_id == round_id, col(Spend.refund_of).is_(None)
        )
        refunded = select(func.coalesce(func.sum(Spend.amount), 0.0)).where(
            Spend.round_id == round_id, col(Spend.refund_of).is_not(None)
        )
        return float(self.session.exec(charged).one()), -float(self.session.exec(refunded).one())
