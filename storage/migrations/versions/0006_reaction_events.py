"""Reactions kept until applied, and a vote row per message that holds the reaction.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

- `reaction_event`: every reaction Slack delivers, written by the listener (its unique event id skips Slack's
  retries) and applied to the votes in batches. A row not applied when its process died is applied by the next
  one to look. New and empty.
- `vote.source`: which message holds the reaction, the variation's own ("message") or its clip's ("clip").
  Every existing row is "message": rows were per variation before, and a reaction on a clip was recorded as one
  on the variation. The unique constraint moves to (generation, person, emoji, source).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.models import UtcDateTime

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "reaction_event" not in inspector.get_table_names():
        op.create_table(
            "reaction_event",
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("event_id", sa.String(), nullable=False),
            sa.Column("channel_id", sa.String(), nullable=False),
            sa.Column("message_ts", sa.String(), nullable=False),
            sa.Column("user_id", sa.String(), nullable=False),
            sa.Column("emoji", sa.String(), nullable=False),
            sa.Column("active", sa.Boolean(), nullable=False),
            sa.Column("event_ts", sa.String(), nullable=False),
            sa.Column("on_bot_message", sa.Boolean(), nullable=False),
            sa.Column("received_at", UtcDateTime(), nullable=False),
            sa.Column("applied_at", UtcDateTime(), nullable=True),
            sa.UniqueConstraint("event_id", name="uq_reaction_event_event_id"),
        )
        op.create_index("ix_reaction_event_pending", "reaction_event", ["applied_at", "id"])
    if "source" not in {c["name"] for c in inspector.get_columns("vote")}:
        # SQLite: the table is copied with the new column and constraint (batch mode); rows keep their ids.
        with op.batch_alter_table("vote") as batch:
            batch.add_column(sa.Column("source", sa.String(), nullable=False, server_default="message"))
            batch.drop_constraint("uq_vote_generation_user_emoji", type_="unique")
            batch.create_unique_constraint(
                "uq_vote_generation_user_emoji_source", ["generation_id", "user_id", "emoji", "source"]
            )


def downgrade() -> None:
    raise NotImplementedError(
        "migrations go forward only; restore the backup taken before `sora-bot migrate`"
    )
