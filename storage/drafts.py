"""Draft queries: a draft is written once, edited while open, and submitted or cancelled exactly once."""

from __future__ import annotations

from sqlalchemy import and_
from sqlmodel import col

from storage.models import Draft
from storage.sql import Queries

OPEN = "open"


class Drafts(Queries):
    def get(self, draft_id: int) -> Draft | None:
        return self.session.get(Draft, draft_id)

    def save(self, draft: Draft) -> Draft:
        """Insert a new draft or write an open one's edits."""
        return self._insert(draft)  # type: ignore[no-any-return]

    def submit(self, draft_id: int) -> bool:
        """Move a draft from open to submitted exactly once (double clicks, two replicas)."""
        return self._conditional_update(
            Draft, and_(col(Draft.id) == draft_id, col(Draft.status) == OPEN), {"status": "submitted"}
        )

    def cancel(self, draft_id: int) -> bool:
        return self._conditional_update(
            Draft, and_(col(Draft.id) == draft_id, col(Draft.status) == OPEN), {"status": "cancelled"}
        )
