"""Slack events already handled: Slack retries an event it thinks we missed, and the event id says so."""

from __future__ import annotations

from bot.ports import Clock
from storage.store import Store


class Inbox:
    def __init__(self, *, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def first_delivery(self, event_id: str) -> bool:
        """True the first time; False for a retry of an event already handled."""
        with self.store.transaction() as repo:
            return repo.events.mark_processed(event_id, now=self.clock.now())
