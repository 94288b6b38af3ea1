"""Processed Slack events: an event id is handled once; Slack's retries of it are skipped. Pruned after a day."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, delete

from storage.models import ProcessedEvent
from storage.sql import Queries


class Events(Queries):
    def mark_processed(self, event_id: str, *, now: datetime) -> bool:
        """True the first time an event id is seen; False for Slack's retries of it."""
        return self._insert_ignoring_duplicates(ProcessedEvent, {"event_id": event_id, "received_at": now})

    def forget_before(self, cutoff: datetime) -> int:
        """Slack retries for minutes, not days: ids older than `cutoff` can go."""
        result = self.session.execute(delete(ProcessedEvent).where(col(ProcessedEvent.received_at) < cutoff))
        return int(result.rowcount)  # type: ignore[attr-defined]
