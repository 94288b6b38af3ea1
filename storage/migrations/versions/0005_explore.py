"""Drafts that explore one layer across their round's variations.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10

- `draft.explore`: the layer the round varies on purpose (`camera`, `finish`). NULL means re-rolls of one prompt,
  which is what every existing draft was. What each variation varied needs no column: its spec says it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("draft")}
    if "explore" not in present:
        # A nullable column without a default: SQLite adds it in place, no copy of the table.
        with op.batch_alter_table("draft") as batch:
            batch.add_column(sa.Column("explore", sa.String(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError(
        "migrations go forward only; restore the backup taken before `sora-bot migrate`"
    )
