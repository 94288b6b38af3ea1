"""Baseline: the schema of the last release before versioned migrations (the first with the Slack outbox).

Revision ID: 0001
Revises:
Create Date: 2026-11-24

An empty database gets these tables and the pattern search objects. A database an earlier release made has no
revision: `legacy.bring_up_unversioned` brings it to these tables in place, keeping every row (the release before
the outbox's retired columns move into the outbox), and one already at them passes through unchanged. Either way
Alembic then stamps it 0001.

The tables are written out here, not read from `storage.models`: the models move on, the baseline does not.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from storage.migrations import legacy
from storage.models import UtcDateTime

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

BASELINE = sa.MetaData()


# Defaults are the models' own: `legacy.add_missing_columns` fills existing rows of a column it adds with them.


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _text(name: str, *, default: str | None = None, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.String(), nullable=nullable, default=default)


def _json(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.JSON(), nullable=False)


def _when(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, UtcDateTime(), nullable=nullable)


sa.Table(
    "draft",
    BASELINE,
    _id(),
    _text("team_id"),
    sa.Column("channel_id", sa.String(), nullable=False, index=True),
    _text("user_id"),
    sa.Column("idea", sa.Text(), nullable=False),
    _json("spec"),
    _json("filled"),
    _json("findings"),
    _text("goal", nullable=True),
    _text("aspect"),
    sa.Column("seconds", sa.Integer(), nullable=False),
    sa.Column("variations", sa.Integer(), nullable=False),
    _text("provider"),
    _text("model", nullable=True),
    _text("status", default="open"),
    _text("reference_path", nullable=True),
    _json("safety"),
    _json("notes"),
    _when("created_at"),
)
sa.Table(
    "round",
    BASELINE,
    _id(),
    sa.Column("draft_id", sa.Integer(), sa.ForeignKey("draft.id"), nullable=False),
    _text("team_id"),
    _text("channel_id"),
    _text("owner_id"),
    sa.Column("title", sa.Text(), nullable=False),
    _text("parent_ts", nullable=True),
    _text("status", default="open"),
    sa.Column("blind", sa.Boolean(), nullable=False, default=False),
    sa.Column("estimated_cost", sa.Float(), nullable=False, default=0.0),
    _when("closes_at"),
    _when("closed_at", nullable=True),
    _text("closed_by", nullable=True),
    sa.Column("winner_generation_id", sa.Integer(), nullable=True),
    sa.Column("closes", sa.Integer(), nullable=False, default=0),
    _when("created_at"),
    sa.Index("ix_round_channel_parent", "channel_id", "parent_ts"),
)
sa.Table(
    "generation",
    BASELINE,
    _id(),
    sa.Column("round_id", sa.Integer(), sa.ForeignKey("round.id"), nullable=False),
    sa.Column("parent_id", sa.Integer(), sa.ForeignKey("generation.id"), nullable=True),
    sa.Column("number", sa.Integer(), nullable=False),
    _text("kind"),
    _text("requested_by"),
    _json("spec"),
    sa.Column("prompt", sa.Text(), nullable=False),
    sa.Column("change", sa.Text(), nullable=True),
    sa.Column("seconds", sa.Integer(), nullable=False),
    _text("aspect"),
    _text("provider"),
    _text("model", nullable=True),
    _text("provider_job_id", nullable=True),
    _text("provider_callback_id", nullable=True),
    _text("reference_path", nullable=True),
    sa.Column("seed", sa.Integer(), nullable=True),
    _json("source_paths"),
    sa.Column("edit_start", sa.Float(), nullable=True),
    sa.Column("edit_end", sa.Float(), nullable=True),
    _text("status", default="queued"),
    sa.Column("progress", sa.Integer(), nullable=False, default=0),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("cost", sa.Float(), nullable=False, default=0.0),
    _text("asset_path", nullable=True),
    _text("message_ts", nullable=True),
    sa.Column("create_unanswered", sa.Boolean(), nullable=False, default=False),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0),
    _when("next_poll_at", nullable=True),
    _text("lease_owner", nullable=True),
    _when("lease_until", nullable=True),
    _when("created_at"),
    _when("submitted_at", nullable=True),
    _when("completed_at", nullable=True),
    sa.UniqueConstraint("round_id", "number", name="uq_generation_round_number"),
    sa.UniqueConstraint("provider", "provider_job_id", name="uq_generation_provider_job"),
    sa.Index("ix_generation_status_poll", "status", "next_poll_at"),
    sa.Index("ix_generation_message", "message_ts"),
    sa.Index("ix_generation_callback", "provider", "provider_callback_id"),
)
sa.Table(
    "vote",
    BASELINE,
    _id(),
    sa.Column("round_id", sa.Integer(), sa.ForeignKey("round.id"), nullable=False, index=True),
    sa.Column("generation_id", sa.Integer(), sa.ForeignKey("generation.id"), nullable=False),
    _text("user_id"),
    _text("emoji"),
    # Votes cast before the column existed count: they come in active.
    sa.Column("active", sa.Boolean(), nullable=False, default=True),
    _text("event_ts", default=""),
    _when("created_at"),
    sa.UniqueConstraint("generation_id", "user_id", "emoji", name="uq_vote_generation_user_emoji"),
)
sa.Table(
    "pattern",
    BASELINE,
    _id(),
    sa.Column("team_id", sa.String(), nullable=False, index=True),
    _text("channel_id"),
    sa.Column("round_id", sa.Integer(), sa.ForeignKey("round.id"), nullable=False, unique=True),
    sa.Column("generation_id", sa.Integer(), sa.ForeignKey("generation.id"), nullable=False),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("prompt", sa.Text(), nullable=False),
    _json("spec"),
    _json("rhythm"),
    _json("settings"),
    _json("outcome"),
    _json("lineage"),
    _text("tags", default=""),
    _when("created_at"),
)
sa.Table(
    "processed_event",
    BASELINE,
    sa.Column("event_id", sa.String(), primary_key=True),
    _when("received_at"),
)
sa.Table(
    "channel_settings",
    BASELINE,
    sa.Column("channel_id", sa.String(), primary_key=True),
    _text("team_id"),
    _text("provider", nullable=True),
    _text("model", nullable=True),
    _text("goal", nullable=True),
    sa.Column("vote_minutes", sa.Integer(), nullable=True),
    sa.Column("blind", sa.Boolean(), nullable=False, default=False),
    sa.Column("daily_budget", sa.Float(), nullable=True),
    _text("updated_by"),
    _when("updated_at"),
)
sa.Table(
    "spend",
    BASELINE,
    _id(),
    _text("team_id"),
    _text("channel_id"),
    _text("user_id"),
    _text("day"),
    sa.Column("round_id", sa.Integer(), sa.ForeignKey("round.id"), nullable=True),
    _text("provider"),
    _text("model", nullable=True),
    sa.Column("seconds", sa.Integer(), nullable=False),
    sa.Column("amount", sa.Float(), nullable=False),
    _when("created_at"),
    sa.Index("ix_spend_channel_day", "channel_id", "day"),
)
sa.Table(
    "outbox",
    BASELINE,
    _id(),
    _text("key"),
    _text("kind"),
    sa.Column("round_id", sa.Integer(), sa.ForeignKey("round.id"), nullable=False),
    sa.Column("generation_id", sa.Integer(), sa.ForeignKey("generation.id"), nullable=True),
    _text("state", default="pending"),
    sa.Column("version", sa.Integer(), nullable=False, default=1),
    sa.Column("claimed_version", sa.Integer(), nullable=False, default=0),
    sa.Column("uncertain", sa.Boolean(), nullable=False, default=False),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0),
    _when("due_at"),
    _text("lease_owner", nullable=True),
    _when("lease_until", nullable=True),
    _text("ts", nullable=True),
    _text("file_id", nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    _when("created_at"),
    _when("sent_at", nullable=True),
    sa.UniqueConstraint("key", name="uq_outbox_key"),
    sa.Index("ix_outbox_state_due", "state", "due_at"),
    sa.Index("ix_outbox_round", "round_id"),
)

# Pattern search: an FTS5 table kept in step with `pattern` by triggers on SQLite, an expression GIN index on
# PostgreSQL. `storage/patterns.py` queries them; its `_PG_DOCUMENT` is this index's expression.
SEARCH_SQLITE = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS pattern_fts USING fts5("
    "title, prompt, tags, content='pattern', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS pattern_fts_ai AFTER INSERT ON pattern BEGIN "
    "INSERT INTO pattern_fts(rowid, title, prompt, tags) VALUES (new.id, new.title, new.prompt, new.tags); END",
    "CREATE TRIGGER IF NOT EXISTS pattern_fts_ad AFTER DELETE ON pattern BEGIN "
    "INSERT INTO pattern_fts(pattern_fts, rowid, title, prompt, tags) "
    "VALUES ('delete', old.id, old.title, old.prompt, old.tags); END",
    "CREATE TRIGGER IF NOT EXISTS pattern_fts_au AFTER UPDATE ON pattern BEGIN "
    "INSERT INTO pattern_fts(pattern_fts, rowid, title, prompt, tags) "
    "VALUES ('delete', old.id, old.title, old.prompt, old.tags); "
    "INSERT INTO pattern_fts(rowid, title, prompt, tags) VALUES (new.id, new.title, new.prompt, new.tags); END",
]
SEARCH_POSTGRESQL = [
    "CREATE INDEX IF NOT EXISTS ix_pattern_search ON pattern USING gin ((to_tsvector('english', "
    "coalesce(title,'') || ' ' || coalesce(prompt,'') || ' ' || coalesce(tags,''))))"
]


def upgrade() -> None:
    conn = op.get_bind()
    if set(sa.inspect(conn).get_table_names()) & set(BASELINE.tables):
        legacy.bring_up_unversioned(conn, BASELINE)
    else:
        BASELINE.create_all(conn)
    # IF NOT EXISTS: a database an earlier release made has them already (and its FTS index is kept).
    for statement in SEARCH_SQLITE if conn.dialect.name == "sqlite" else SEARCH_POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError(
        "migrations go forward only; restore the backup taken before `sora-bot migrate`"
    )
