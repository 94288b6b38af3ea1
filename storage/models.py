"""SQLModel tables: drafts, rounds, generations, votes, patterns, processed events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class Draft(SQLModel, table=True):
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


class Round(SQLModel, table=True):
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


class Generation(SQLModel, table=True):
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


class Vote(SQLModel, table=True):
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


class Pattern(SQLModel, table=True):
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


class ProcessedEvent(SQLModel, table=True):
    __tablename__ = "processed_event"

    event_id: str = Field(primary_key=True)
    received_at: datetime


class ChannelSettings(SQLModel, table=True):
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


class Spend(SQLModel, table=True):
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
