"""Rounds follow each other in one thread.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

Work after a close (a remix, a recut, `again`…) opens the next round in the same thread instead of reopening
the closed one, so an announced winner is never taken back.

- `round.thread_ts`: the thread a following round lives in (its own message is a reply there). NULL means the
  round started its thread, its own message (`parent_ts`) being the thread's parent; every existing round reads
  so, which is what it was.
- `round.previous_id`: the round this one follows in its thread. NULL on every existing round: none followed
  another (a round that a later remix reopened stays one round).
- `ix_round_channel_thread`: a thread's rounds are looked up by (channel, thread).

SQLite copies the round table to add the foreign key (batch mode; rows keep their ids); PostgreSQL adds both
columns in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = {c["name"] for c in inspector.get_columns("round")}
    indexes = {i["name"] for i in inspector.get_indexes("round")}
    with op.batch_alter_table("round") as batch:  # nullable, no default: existing rows read NULL
        if "thread_ts" not in present:
            batch.add_column(sa.Column("thread_ts", sa.String(), nullable=True))
        if "previous_id" not in present:
            batch.add_column(
                sa.Column(
                    "previous_id",
                    sa.Integer(),
                    sa.ForeignKey("round.id", name="fk_round_previous_id_round"),
                    nullable=True,
                )
            )
        if "ix_round_channel_thread" not in indexes:
            batch.create_index("ix_round_channel_thread", ["channel_id", "thread_ts"])


def downgrade() -> None:
    raise NotImplementedError(
        "migrations go forward only; restore the backup taken before `sora-bot migrate`"
    )
