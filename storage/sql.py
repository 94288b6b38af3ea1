"""What every query module shares: insert-or-ignore and the conditional update, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel


class Queries:
    """Base of the per-aggregate query modules: they share the one session of the use case's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def _insert(self, row: Any) -> Any:
        self.session.add(row)
        self.session.flush()
        return row

    def _insert_ignoring_duplicates(self, model: type[SQLModel], values: dict[str, Any]) -> bool:
        table = model.__table__  # type: ignore[attr-defined]
        insert = postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)
        # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
        key = next(iter(table.primary_key.columns))
        statement = insert.values(**values).on_conflict_do_nothing().returning(key)
        return self.session.execute(statement).first() is not None

    def _conditional_update(self, model: type[SQLModel], where: Any, values: dict[str, Any]) -> bool:
        """True when exactly the one row matched `where` (the state it was expected to be in) and changed."""
        result = self.session.execute(update(model).where(where).values(**values))
        return int(result.rowcount) == 1  # type: ignore[attr-defined]
