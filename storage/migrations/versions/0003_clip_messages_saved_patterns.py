"""A clip's own message, its real length, and patterns saved with *Save* beside a round's winner.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

- `generation.clip_file_id`, `generation.clip_ts` (+ `ix_generation_clip`): Slack shares an uploaded clip as a
  message of its own; its ts maps a reaction on the video to its variation. Unknown for clips posted before:
  NULL, and a reaction on such a message is looked up once (`files.info`) when it arrives.
- `generation.clip_seconds`: a finished clip's probed length, for its label. NULL before: labels fall back to
  the asked length.
- `pattern.saved_by`: who saved a variation with *Save*; NULL for a round's winner (every existing row).
- `pattern.round_id` is no longer unique (a round keeps its winner and the variations people saved); it keeps an
  index (`ix_pattern_round_id`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

# The baseline's search triggers (0001), made again after SQLite's copy of the table.
_SQLITE_TRIGGERS = [
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
# The baseline declared `round_id` unique without a name; batch mode names it by this convention to drop it.
_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    conn = op.get_bind()
    inspector = sa.inspect(conn)
    generation = {c["name"] for c in inspector.get_columns("generation")}
    with op.batch_alter_table("generation") as batch:
        for name, kind in (
            ("clip_file_id", sa.String()),
            ("clip_ts", sa.String()),
            ("clip_seconds", sa.Float()),
        ):
            if name not in generation:
                batch.add_column(sa.Column(name, kind, nullable=True))
    if "ix_generation_clip" not in {i["name"] for i in inspector.get_indexes("generation")}:
        op.create_index("ix_generation_clip", "generation", ["clip_ts"])

    unique = [
        str(u["name"] or "")
        for u in inspector.get_unique_constraints("pattern")
        if u["column_names"] == ["round_id"]
    ]
    if conn.dialect.name == "sqlite":
        # SQLite cannot drop a constraint: batch mode copies the table without it. The copy drops the search
        # triggers with the old table, so they are made again on the new one (the FTS rows keep their ids).
        with op.batch_alter_table("pattern", recreate="always", naming_convention=_NAMES) as batch:
            if "saved_by" not in {c["name"] for c in inspector.get_columns("pattern")}:
                batch.add_column(sa.Column("saved_by", sa.String(), nullable=True))
            if unique:
                batch.drop_constraint("uq_pattern_round_id", type_="unique")
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)
    else:
        with op.batch_alter_table("pattern") as batch:
            if "saved_by" not in {c["name"] for c in inspector.get_columns("pattern")}:
                batch.add_column(sa.Column("saved_by", sa.String(), nullable=True))
            for name in unique:  # PostgreSQL named it (pattern_round_id_key)
                batch.drop_constraint(name, type_="unique")
    if "ix_pattern_round_id" not in {i["name"] for i in sa.inspect(conn).get_indexes("pattern")}:
        op.create_index("ix_pattern_round_id", "pattern", ["round_id"])


def downgrade() -> None:
    raise NotImplementedError(
        "migrations go forward only; restore the backup taken before `sora-bot migrate`"
    )
