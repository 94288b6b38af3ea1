"""Voting rules per channel, copied into each round; how a round ended and why it was picked.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

- `round.rules` (JSON): the channel's voting rules when the round started. NULL for rounds from before: they keep
  the rules they ran under (one vote per variation, the owner included).
- `round.close_reason` (deadline, quorum, owner, pick, tie_pick, tie_rule) and `round.pick_reason` (the `pick #N
  <reason>` as typed): NULL for rounds closed before.
- `channel_settings.vote_emoji`, `multi_vote`, `owner_votes`, `quorum`, `tie_minutes`: the channel's rules; NULL
  means the deployment's default, which is what every existing channel had.
- `ix_vote_round_user`: counting a vote under the rules reads that person's votes in the round, not all of them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS: dict[str, list[sa.Column[Any]]] = {
    "round": [
        sa.Column("rules", sa.JSON(), nullable=True),
        sa.Column("close_reason", sa.String(), nullable=True),
        sa.Column("pick_reason", sa.Text(), nullable=True),
    ],
    "channel_settings": [
        sa.Column("vote_emoji", sa.JSON(), nullable=True),
        sa.Column("multi_vote", sa.Boolean(), nullable=True),
        sa.Column("owner_votes", sa.Boolean(), nullable=True),
        sa.Column("quorum", sa.Integer(), nullable=True),
        sa.Column("tie_minutes", sa.Integer(), nullable=True),
    ],
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, columns in _COLUMNS.items():
        present = {c["name"] for c in inspector.get_columns(table)}
        missing = [c for c in columns if c.name not in present]
        if missing:
            # Nullable columns without a default: SQLite adds them in place, no copy of the table.
            with op.batch_alter_table(table) as batch:
                for column in missing:
                    batch.add_column(column)
    if "ix_vote_round_user" not in {i["name"] for i in inspector.get_indexes("vote")}:
        op.create_index("ix_vote_round_user", "vote", ["round_id", "user_id"])


def downgrade() -> None:
    raise NotImplementedError(
        "migrations go forward only; restore the backup taken before `sora-bot migrate`"
    )
