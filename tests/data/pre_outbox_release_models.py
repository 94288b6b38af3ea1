"""The tables of the release before the Slack outbox (storage/models.py as it shipped; older than the baseline
migration), to build a database that release would have made, for tests/test_upgrade.py.

The classes are that file's text unchanged except for two things: they derive from `PreviousRelease`, whose own
SQLAlchemy registry gives them their own `MetaData` (so they never clash with today's tables in
`SQLModel.metadata`), and the search objects the previous release's `Store.create_schema` added after
`create_all` are copied at the end. Do not edit them to follow the current models: they are a record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class PreviousRelease(SQLModel, registry=registry()):
    """Base of the previous release's tables: `PreviousRelease.metadata` holds them and nothing else."""


class Draft(PreviousRelease, table=True):
    __tablename__ = "draft"

    id: int | None = Field(default=None, primary_key=True)
    team_id: str
    channel_id: str = Field(index=True)
    user_id: str
    idea: str = Field(sa_column=Column(Text, nullable=False))
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    filled: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    goal: str | None = None
    aspect: str
    seconds: int
    variations: int
    provider: str
    model: str | None = None
    status: str = "open"  # open → submitted | cancelled
    reference_path: str | None = None
    safety: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    notes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime


class Round(PreviousRelease, table=True):
    __tablename__ = "round"
    __table_args__ = (Index("ix_round_channel_parent", "channel_id", "parent_ts"),)

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id")
    team_id: str
    channel_id: str
    owner_id: str
    title: str = Field(sa_column=Column(Text, nullable=False))
    parent_ts: str | None = None
    status: str = "open"  # open → closed | cancelled
    blind: bool = False
    estimated_cost: float = 0.0
    closes_at: datetime
    closed_at: datetime | None = None
    closed_by: str | None = None
    winner_generation_id: int | None = None
    announced_ts: str | None = None
    sheet_file_id: str | None = None
    created_at: datetime


class Generation(PreviousRelease, table=True):
    __tablename__ = "generation"
    __table_args__ = (
        UniqueConstraint("round_id", "number", name="uq_generation_round_number"),
        Index("ix_generation_status_poll", "status", "next_poll_at"),
        Index("ix_generation_message", "message_ts"),
        Index("ix_generation_job", "provider", "provider_job_id"),
        Index("ix_generation_callback", "provider", "provider_callback_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="round.id")
    parent_id: int | None = Field(default=None, foreign_key="generation.id")
    number: int
    kind: str
    requested_by: str
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    change: str | None = Field(default=None, sa_column=Column(Text))
    seconds: int
    aspect: str
    provider: str
    model: str | None = None
    provider_job_id: str | None = None
    provider_callback_id: str | None = None
    reference_path: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = "queued"
    progress: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    cost: float = 0.0
    asset_path: str | None = None
    message_ts: str | None = None
    file_id: str | None = None
    posted_at: datetime | None = None
    attempts: int = 0
    next_poll_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    created_at: datetime
    submitted_at: datetime | None = None
    completed_at: datetime | None = None


class Vote(PreviousRelease, table=True):
    __tablename__ = "vote"
    __table_args__ = (
        UniqueConstraint("generation_id", "user_id", "emoji", name="uq_vote_generation_user_emoji"),
    )

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="round.id", index=True)
    generation_id: int = Field(foreign_key="generation.id")
    user_id: str
    emoji: str
    created_at: datetime


class Pattern(PreviousRelease, table=True):
    __tablename__ = "pattern"

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(index=True)
    channel_id: str
    round_id: int = Field(foreign_key="round.id", unique=True)
    generation_id: int = Field(foreign_key="generation.id")
    title: str = Field(sa_column=Column(Text, nullable=False))
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rhythm: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    outcome: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    lineage: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    tags: str = ""
    created_at: datetime


class ProcessedEvent(PreviousRelease, table=True):
    __tablename__ = "processed_event"

    event_id: str = Field(primary_key=True)
    received_at: datetime


class ChannelSettings(PreviousRelease, table=True):
    """A channel's defaults, set with `/sora settings`; unset fields fall back to the deployment's."""

    __tablename__ = "channel_settings"

    channel_id: str = Field(primary_key=True)
    team_id: str
    provider: str | None = None
    model: str | None = None
    goal: str | None = None
    vote_minutes: int | None = None
    blind: bool = False
    daily_budget: float | None = None
    updated_by: str
    updated_at: datetime


class Spend(PreviousRelease, table=True):
    """The cost ledger: one row per charge, estimated at submit."""

    __tablename__ = "spend"
    __table_args__ = (Index("ix_spend_channel_day", "channel_id", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str
    channel_id: str
    user_id: str
    day: str  # UTC date, YYYY-MM-DD: budgets are per channel per day
    round_id: int | None = Field(default=None, foreign_key="round.id")
    provider: str
    model: str | None = None
    seconds: int
    amount: float
    created_at: datetime


# What the previous release's Store.create_schema ran after create_all (its storage/store.py, copied).
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
_PG_DOCUMENT = (
    "to_tsvector('english', coalesce(title,'') || ' ' || coalesce(prompt,'') || ' ' || coalesce(tags,''))"
)
SEARCH_POSTGRESQL = [f"CREATE INDEX IF NOT EXISTS ix_pattern_search ON pattern USING gin (({_PG_DOCUMENT}))"]
