"""Channel settings and the cost ledger: defaults per channel, and the daily budget charged atomically."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import func, select

from storage.models import ChannelSettings, Spend
from storage.sql import Queries


class Channels(Queries):
    def settings(self, channel_id: str) -> ChannelSettings | None:
        return self.session.get(ChannelSettings, channel_id)

    def save_settings(self, row: ChannelSettings) -> ChannelSettings:
        return self._insert(row)  # type: ignore[no-any-return]


class Ledger(Queries):
    def charge(
        self,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        amount: float,
        budget: float | None,
        day: str,
        now: datetime,
        provider: str,
        model: str | None,
        seconds: int,
        round_id: int | None = None,
    ) -> float | None:
        """Record a charge unless it would take the channel past `budget` today.

        Returns None when charged, else what is already spent today. Atomic: the channel's settings row
        is locked first (PostgreSQL) or the write lock is held (SQLite), so two clicks cannot both pass.
        """
        if budget is not None:
            self._insert_ignoring_duplicates(
                ChannelSettings,
                {"channel_id": channel_id, "team_id": team_id, "updated_by": user_id, "updated_at": now},
            )
            lock = select(ChannelSettings.channel_id).where(ChannelSettings.channel_id == channel_id)
            if self.dialect == "postgresql":
                lock = lock.with_for_update()
            self.session.exec(lock).first()
            spent = self.spent_today(channel_id, day=day)
            if spent + amount > budget + 1e-9:
                return spent
        self._insert(
            Spend(
                team_id=team_id,
                channel_id=channel_id,
                user_id=user_id,
                day=day,
                round_id=round_id,
                provider=provider,
                model=model,
                seconds=seconds,
                amount=amount,
                created_at=now,
            )
        )
        return None

    def spent_today(self, channel_id: str, *, day: str) -> float:
        statement = select(func.coalesce(func.sum(Spend.amount), 0.0)).where(
            Spend.channel_id == channel_id, Spend.day == day
        )
        return float(self.session.exec(statement).one())
