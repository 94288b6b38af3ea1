"""Privacy of rounds and patterns, each variation's charge, one refund per variation.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

- `round.private`, `pattern.private`: whether Slack said the conversation was private. Rows from before could
  have been anywhere, so they come in private (true): recalled only in the conversation they were saved in.
- `generation.charged`: a variation's share of what its channel was charged at submit, given back if it never
  renders. What earlier variations were charged was never recorded per variation, so they come in at 0: one that
  fails after the upgrade gives nothing back rather than a guessed amount.
- `spend.refund_of` (→ generation) with `uq_spend_refund_of`: a refund names its variation, and there is one at
  most. Existing rows are charges, so it is NULL for all of them.

A database a development build made between the releases (before migrations were versioned) may have some of
these already; what is there is left as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())

    def lacks(table: str, column: str) -> bool:
        return column not in {c["name"] for c in inspector.get_columns(table)}

    # Constant defaults written as text: SQLite then adds the column in place instead of copying the table.
    for table in ("round", "pattern"):
        if lacks(table, "private"):
            with op.batch_alter_table(table) as batch:
                # '1' is true to both databases.
                batch.add_column(sa.Column("private", sa.Boolean(), nullable=False, server_default="1"))
    if lacks("generation", "charged"):
        with op.batch_alter_table("generation") as batch:
            batch.add_column(sa.Column("charged", sa.Float(), nullable=False, server_default="0"))
    names = {u["name"] for u in inspector.get_unique_constraints("spend")}
    names |= {i["name"] for i in inspector.get_indexes("spend")}
    adds_column, adds_unique = lacks("spend", "refund_of"), "uq_spend_refund_of" not in names
    if adds_column or adds_unique:
        # SQLite: the table is copied with the new column, foreign key and constraint (batch mode).
        with op.batch_alter_table("spend") as batch:
            if adds_column:
                batch.add_column(sa.Column("refund_of", sa.Integer(), nullable=True))
                batch.create_foreign_key("spend_refund_of_fkey", "generation", ["refund_of"], ["id"])
            if adds_unique:
                batch.create_unique_constraint("uq_spend_refund_of", ["refund_of"])


def downgrade() -> None:
    raise NotImplementedError(
        "migrations go forward only; restore the backup taken before `sora-bot migrate`"
    )
