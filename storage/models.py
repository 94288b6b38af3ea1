"""SQLModel tables: drafts, rounds, generations, votes, patterns, processed events, spend, the Slack outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Dialect, Index, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC on every database, read back as aware UTC, so Python arithmetic never mixes the two."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


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
    explore: str | None = None  # the layer its round varies (prompts.Explore); None: re-rolls of one prompt
    provider: str
    model: str | None = None
    status: str = "open"  # open → submitted | cancelled
    reference_path: str | None = None
    safety: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    notes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_type=UtcDateTime)


class Round(SQLModel, table=True):
    __tablename__ = "round"
    __table_args__ = (
        Index("ix_round_channel_parent", "channel_id", "parent_ts"),
        Index("ix_round_channel_thread", "channel_id", "thread_ts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="draft.id")
    team_id: str
    channel_id: str
    owner_id: str
    title: str = Field(sa_column=Column(Text, nullable=False))
    parent_ts: str | None = None  # the round's own message, once the outbox has posted it
    # The thread the round lives in, when it follows another round there (its message is a reply in that
    # thread). None: the round started the thread, and its own message (`parent_ts`) is the thread's parent.
    thread_ts: str | None = None
    previous_id: int | None = Field(default=None, foreign_key="round.id")  # the round this one follows
    status: str = "open"  # open → (tied →) closed | cancelled
    blind: bool = False
    # The channel's voting rules when the round started (bot.votes.VoteRules); None for rounds from before them.
    rules: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Slack's word when the round started: a private channel, DM or group DM. Unknown counts as private.
    private: bool = True
    estimated_cost: float = 0.0
    # Open: the vote's deadline. Tied: the end of the owner's time to pick, when the tie rule decides.
    closes_at: datetime = Field(sa_type=UtcDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    closed_by: str | None = None
    # deadline | quorum | owner | pick | tie_pick | tie_rule: how the vote ended (the announcement says so).
    close_reason: str | None = None
    pick_reason: str | None = Field(default=None, sa_column=Column(Text))  # `pick #N <reason>`, as typed
    winner_generation_id: int | None = None
    closes: int = 0  # how many times it has closed: each close is announced once
    created_at: datetime = Field(sa_type=UtcDateTime)

    @property
    def thread(self) -> str | None:
        """The thread to post into and to find the round by: the one it follows in, else its own message's."""
        return self.thread_ts or self.parent_ts


class Generation(SQLModel, table=True):
    __tablename__ = "generation"
    __table_args__ = (
        UniqueConstraint("round_id", "number", name="uq_generation_round_number"),
        # A provider job belongs to one generation: the database refuses a second owner.
        UniqueConstraint("provider", "provider_job_id", name="uq_generation_provider_job"),
        Index("ix_generation_status_poll", "status", "next_poll_at"),
        Index("ix_generation_message", "message_ts"),
        Index("ix_generation_clip", "clip_ts"),
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
    seed: int | None = None
    # Edits of finished clips (recut, loop, blend, extend): the clips they start from and the cut.
    source_paths: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    edit_start: float | None = None
    edit_end: float | None = None
    status: str = "queued"
    progress: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    cost: float = 0.0
    # This variation's share of what the channel was charged at submit; given back if it never renders.
    charged: float = 0.0
    asset_path: str | None = None
    message_ts: str | None = None  # the variation's message, once the outbox has posted it
    # The clip's own message in the thread (Slack shares an upload as a message of its own): a reaction on the
    # video is a vote for this variation. The ts is learnt after the upload (`files.info`), so it may lag.
    clip_file_id: str | None = None
    clip_ts: str | None = None
    clip_seconds: float | None = None  # the finished clip's real length (probed), for its label
    create_unanswered: bool = False  # a create's answer was lost once: a late job may land at the provider
    attempts: int = 0
    next_poll_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    lease_owner: str | None = None
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(sa_type=UtcDateTime)
    submitted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Vote(SQLModel, table=True):
    __tablename__ = "vote"
    __table_args__ = (
        # One row per reaction a person holds: the same emoji on a variation's message and on its clip's message
        # are two rows (a removal from one leaves the other held), counted as one vote.
        UniqueConstraint(
            "generation_id", "user_id", "emoji", "source", name="uq_vote_generation_user_emoji_source"
        ),
        Index("ix_vote_round_user", "round_id", "user_id"),  # one person's votes in a round, for each vote
    )

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="round.id", index=True)
    generation_id: int = Field(foreign_key="generation.id")
    user_id: str
    emoji: str
    # Which message holds the reaction: "message" (the variation's own; a blind round's button too) or "clip".
    source: str = "message"
    # A removal is kept (active false) with the event's ts, so an add Slack delivers after it is not revived.
    active: bool = True
    event_ts: str = ""
    created_at: datetime = Field(sa_type=UtcDateTime)


class Pattern(SQLModel, table=True):
    __tablename__ = "pattern"

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(index=True)
    channel_id: str
    # One winner row per round (saved_by None), and one row per variation someone saved with *Save*.
    round_id: int = Field(foreign_key="round.id", index=True)
    generation_id: int = Field(foreign_key="generation.id")
    title: str = Field(sa_column=Column(Text, nullable=False))
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rhythm: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    outcome: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    lineage: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    tags: str = ""
    # Saved in a private conversation: recalled only there. Rows from before this column count as private.
    private: bool = True
    saved_by: str | None = None  # who saved this variation with *Save*; None: the round's winner
    created_at: datetime = Field(sa_type=UtcDateTime)


class ReactionEvent(SQLModel, table=True):
    """A reaction Slack delivered, kept from the moment it is received until it is applied to the votes.

    The listener's one write: the unique event id skips Slack's retries, and a row not applied yet (the process
    died, another replica was mid-batch) is applied by whoever looks next. Applied rows are pruned after a day.
    """

    __tablename__ = "reaction_event"
    __table_args__ = (
        UniqueConstraint("event_id", name="uq_reaction_event_event_id"),
        Index("ix_reaction_event_pending", "applied_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str
    channel_id: str
    message_ts: str
    user_id: str
    emoji: str
    active: bool  # reaction_added, or reaction_removed
    event_ts: str = ""
    on_bot_message: bool = True  # the reacted message is the bot's (or Slack did not say): maybe a clip's
    received_at: datetime = Field(sa_type=UtcDateTime)
    applied_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class ProcessedEvent(SQLModel, table=True):
    __tablename__ = "processed_event"

    event_id: str = Field(primary_key=True)
    received_at: datetime = Field(sa_type=UtcDateTime)


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
    # Voting rules; None (or no emoji) means the deployment's default.
    vote_emoji: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    multi_vote: bool | None = None
    owner_votes: bool | None = None
    quorum: int | None = None
    tie_minutes: int | None = None
    daily_budget: float | None = None
    updated_by: str
    updated_at: datetime = Field(sa_type=UtcDateTime)


class Spend(SQLModel, table=True):
    """The cost ledger: one row per charge, estimated at submit, and one per refund (a negative amount) of a
    variation that never rendered. `refund_of` names that generation: the database takes one refund each."""

    __tablename__ = "spend"
    __table_args__ = (
        Index("ix_spend_channel_day", "channel_id", "day"),
        UniqueConstraint("refund_of", name="uq_spend_refund_of"),
    )

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
    refund_of: int | None = Field(default=None, foreign_key="generation.id")
    created_at: datetime = Field(sa_type=UtcDateTime)


class Outbox(SQLModel, table=True):
    """Everything the bot posts, uploads or updates in a channel: claimed, sent once, recorded.

    `key` names the thing (`round-12/parent`, `generation-34/clip`…): inserting it twice is a no-op, and after
    an uncertain send the bot looks for it in Slack (message metadata, file names) before sending again.
    An update row is re-armed by bumping `version`; what is sent is rendered from the rows at send time, so
    the last state always goes out and a burst of changes is one `chat.update`.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("key", name="uq_outbox_key"),
        Index("ix_outbox_state_due", "state", "due_at"),
        Index("ix_outbox_round", "round_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str
    kind: str
    round_id: int = Field(foreign_key="round.id")
    generation_id: int | None = Field(default=None, foreign_key="generation.id")
    state: str = "pending"  # pending → sending → sent | failed
    version: int = 1
    claimed_version: int = 0
    uncertain: bool = False  # the last attempt may have reached Slack: look before sending again
    attempts: int = 0
    due_at: datetime = Field(sa_type=UtcDateTime)
    lease_owner: str | None = None
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ts: str | None = None
    file_id: str | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
