"""The engine, the transaction, and every query the core needs, named for its intent."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import JSON, Engine, and_, create_engine, event, func, inspect, or_, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, SQLModel, col, delete, select

from storage.models import ChannelSettings, Draft, Generation, Pattern, ProcessedEvent, Round, Spend, Vote

log = logging.getLogger(__name__)

T = TypeVar("T", bound=SQLModel)

OPEN = "open"
CLOSED = "closed"
QUEUED = "queued"
SUBMITTING = "submitting"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
TERMINAL = ("completed", "failed", "cancelled")

_SQLITE_FTS = [
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
_PG_SEARCH_INDEX = f"CREATE INDEX IF NOT EXISTS ix_pattern_search ON pattern USING gin (({_PG_DOCUMENT}))"

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class PatternHit:
    pattern: Pattern
    rank: float


class Store:
    """Owns the engine. `transaction()` hands out a `Repo`; the use case decides where a transaction ends."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        # SQLite: readers must not queue for the write lock (BEGIN IMMEDIATE), or a busy poller starves writers.
        self._read_engine = _make_engine(url, writer=False) if self.dialect == "sqlite" else self.engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        """Create every table (and the search index) that does not exist yet; safe to run on every start.

        Columns added to an existing table since it was created are added too (nullable or defaulted
        ones only), so an older database keeps working until real migrations arrive.
        """
        SQLModel.metadata.create_all(self.engine)
        self._add_missing_columns()
        with self.engine.begin() as conn:
            statements = _SQLITE_FTS if self.dialect == "sqlite" else [_PG_SEARCH_INDEX]
            for statement in statements:
                conn.exec_driver_sql(statement)

    def _add_missing_columns(self) -> None:
        with self.engine.begin() as conn:
            inspector = inspect(conn)
            for table in SQLModel.metadata.sorted_tables:
                present = {c["name"] for c in inspector.get_columns(table.name)}
                for column in table.columns:
                    if column.name in present:
                        continue
                    kind = column.type.compile(dialect=self.engine.dialect)
                    default = " DEFAULT '[]'" if isinstance(column.type, JSON) else ""
                    if not default and not column.nullable:
                        default = (
                            " DEFAULT 0" if kind.upper() in ("INTEGER", "FLOAT", "BOOLEAN") else " DEFAULT ''"
                        )
                    log.info("adding column %s.%s", table.name, column.name)
                    conn.exec_driver_sql(
                        f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}{default}'
                    )

    @contextmanager
    def transaction(self) -> Iterator[Repo]:
        """One unit of work: commits on success, rolls back on any exception."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield Repo(session)
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Repo]:
        """A read-only unit of work: sees a consistent snapshot, never takes the write lock, never commits."""
        # Closing (not rolling back) ends the transaction and leaves loaded rows usable, just detached.
        with Session(self._read_engine, expire_on_commit=False) as session:
            yield Repo(session)

    def dispose(self) -> None:
        self.engine.dispose()
        self._read_engine.dispose()


def _make_engine(url: str, *, writer: bool = True) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # One connection per checkout: several threads (listeners, the sweep) share the file through WAL.
    engine = create_engine(url, poolclass=NullPool, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below control transactions
        cursor = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "busy_timeout=5000", "synchronous=NORMAL", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Any) -> None:
        # Writers take the write lock up front: a deferred transaction that later writes can fail with
        # "database is locked" instead of waiting its turn.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


class Repo:
    """Queries inside one transaction. Nothing here commits."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    # --- generic ----------------------------------------------------------------------------

    def add(self, row: T) -> T:
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, model: type[T], row_id: int) -> T | None:
        return self.session.get(model, row_id)

    def _insert_ignoring_duplicates(self, model: type[SQLModel], values: dict[str, Any]) -> bool:
        table = model.__table__  # type: ignore[attr-defined]
        insert = postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)
        # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
        key = next(iter(table.primary_key.columns))
        statement = insert.values(**values).on_conflict_do_nothing().returning(key)
        return self.session.execute(statement).first() is not None

    def _conditional_update(self, model: type[SQLModel], where: Any, values: dict[str, Any]) -> bool:
        result = self.session.execute(update(model).where(where).values(**values))
        return int(result.rowcount) == 1  # type: ignore[attr-defined]

    def ping(self) -> None:
        self.session.execute(text("SELECT 1"))

    # --- events -----------------------------------------------------------------------------

    def mark_event_processed(self, event_id: str, *, now: datetime) -> bool:
        """True the first time an event id is seen; False for Slack's retries of it."""
        return self._insert_ignoring_duplicates(ProcessedEvent, {"event_id": event_id, "received_at": now})

    def forget_events_before(self, cutoff: datetime) -> int:
        result = self.session.execute(delete(ProcessedEvent).where(col(ProcessedEvent.received_at) < cutoff))
        return int(result.rowcount)  # type: ignore[attr-defined]

    # --- drafts -----------------------------------------------------------------------------

    def submit_draft(self, draft_id: int) -> bool:
        """Move a draft from open to submitted exactly once (double clicks, two replicas)."""
        return self._conditional_update(
            Draft, and_(col(Draft.id) == draft_id, col(Draft.status) == OPEN), {"status": "submitted"}
        )

    def cancel_draft(self, draft_id: int) -> bool:
        return self._conditional_update(
            Draft, and_(col(Draft.id) == draft_id, col(Draft.status) == OPEN), {"status": "cancelled"}
        )

    # --- rounds -----------------------------------------------------------------------------

    def round_by_thread(self, channel_id: str, thread_ts: str) -> Round | None:
        statement = select(Round).where(Round.channel_id == channel_id, Round.parent_ts == thread_ts)
        return self.session.exec(statement).first()

    def close_round(self, round_id: int, *, now: datetime, actor: str) -> bool:
        """Close an open round; False when it was already closed (by a deadline, a click, a replica)."""
        return self._conditional_update(
            Round,
            and_(col(Round.id) == round_id, col(Round.status) == OPEN),
            {"status": CLOSED, "closed_at": now, "closed_by": actor},
        )

    def due_rounds(self, now: datetime, *, limit: int = 20) -> Sequence[Round]:
        statement = (
            select(Round)
            .where(Round.status == OPEN, col(Round.closes_at) <= now, col(Round.parent_ts).is_not(None))
            .order_by(col(Round.closes_at))
            .limit(limit)
        )
        return self.session.exec(statement).all()

    def rounds_missing_parent(self, *, limit: int = 20) -> Sequence[Round]:
        statement = select(Round).where(col(Round.parent_ts).is_(None), Round.status == OPEN).limit(limit)
        return self.session.exec(statement).all()

    def rounds_missing_announcement(self, *, limit: int = 20) -> Sequence[Round]:
        statement = (
            select(Round)
            .where(
                Round.status == CLOSED, col(Round.announced_ts).is_(None), col(Round.parent_ts).is_not(None)
            )
            .limit(limit)
        )
        return self.session.exec(statement).all()

    def rounds_missing_sheet(self, *, limit: int = 20) -> Sequence[Round]:
        """Rounds whose first variations are all finished but whose contact sheet is not posted yet."""
        unfinished = (
            select(Generation.id)
            .where(Generation.round_id == Round.id, col(Generation.status).not_in(TERMINAL))
            .exists()
        )
        unposted = (
            select(Generation.id)
            .where(
                Generation.round_id == Round.id,
                Generation.status == COMPLETED,
                col(Generation.posted_at).is_(None),
            )
            .exists()
        )
        statement = (
            select(Round)
            .where(
                col(Round.sheet_file_id).is_(None),
                col(Round.parent_ts).is_not(None),
                Round.status != "cancelled",
                ~unfinished,
                ~unposted,
            )
            .limit(limit)
        )
        return self.session.exec(statement).all()

    # --- generations ------------------------------------------------------------------------

    def generations_in_round(self, round_id: int) -> Sequence[Generation]:
        statement = select(Generation).where(Generation.round_id == round_id).order_by(col(Generation.number))
        return self.session.exec(statement).all()

    def generation_by_number(self, round_id: int, number: int) -> Generation | None:
        statement = select(Generation).where(Generation.round_id == round_id, Generation.number == number)
        return self.session.exec(statement).first()

    def generation_by_message(self, channel_id: str, message_ts: str) -> Generation | None:
        statement = (
            select(Generation)
            .join(Round, col(Round.id) == col(Generation.round_id))
            .where(Round.channel_id == channel_id, Generation.message_ts == message_ts)
        )
        return self.session.exec(statement).first()

    def generation_by_job(self, provider: str, job_id: str) -> Generation | None:
        """By the id a provider's callback names the job by: its callback id, else its job id."""
        named = or_(col(Generation.provider_callback_id) == job_id, col(Generation.provider_job_id) == job_id)
        statement = select(Generation).where(Generation.provider == provider, named)
        return self.session.exec(statement).first()

    def next_number(self, round_id: int) -> int:
        statement = select(func.max(Generation.number)).where(Generation.round_id == round_id)
        current = self.session.exec(statement).one()
        return int(current or 0) + 1

    def generations_missing_message(self, *, limit: int = 50) -> Sequence[Generation]:
        statement = (
            select(Generation)
            .join(Round, col(Round.id) == col(Generation.round_id))
            .where(col(Generation.message_ts).is_(None), col(Round.parent_ts).is_not(None))
            .order_by(col(Generation.id))
            .limit(limit)
        )
        return self.session.exec(statement).all()

    def generations_missing_upload(self, *, limit: int = 20) -> Sequence[Generation]:
        statement = (
            select(Generation)
            .where(
                Generation.status == COMPLETED,
                col(Generation.posted_at).is_(None),
                col(Generation.message_ts).is_not(None),
            )
            .order_by(col(Generation.id))
            .limit(limit)
        )
        return self.session.exec(statement).all()

    def claim_generations(
        self, *, statuses: Sequence[str], now: datetime, owner: str, lease: timedelta, limit: int
    ) -> list[Generation]:
        """Lease due generations in `statuses` to `owner`, so replicas never work one job twice.

        A row is due when its next poll time has come and nobody else holds a live lease on it.
        """
        due = and_(
            col(Generation.status).in_(statuses),
            or_(col(Generation.next_poll_at).is_(None), col(Generation.next_poll_at) <= now),
            or_(col(Generation.lease_until).is_(None), col(Generation.lease_until) < now),
        )
        candidates = select(Generation.id).where(due).order_by(col(Generation.id)).limit(limit)
        if self.dialect == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        ids = [row for row in self.session.exec(candidates).all() if row is not None]
        if not ids:
            return []
        self.session.execute(
            update(Generation)
            .where(col(Generation.id).in_(ids), due)
            .values(lease_owner=owner, lease_until=now + lease)
        )
        statement = select(Generation).where(col(Generation.id).in_(ids), Generation.lease_owner == owner)
        return list(self.session.exec(statement.execution_options(populate_existing=True)).all())

    def claim_generation(
        self, generation_id: int, *, now: datetime, owner: str, lease: timedelta
    ) -> Generation | None:
        """Lease one in-progress generation now (a provider called back), unless someone holds it."""
        free = or_(col(Generation.lease_until).is_(None), col(Generation.lease_until) < now)
        claimed = self._conditional_update(
            Generation,
            and_(col(Generation.id) == generation_id, col(Generation.status) == IN_PROGRESS, free),
            {"lease_owner": owner, "lease_until": now + lease},
        )
        if not claimed:
            return None
        statement = select(Generation).where(Generation.id == generation_id)
        return self.session.exec(statement.execution_options(populate_existing=True)).first()

    def release(self, generation: Generation) -> None:
        generation.lease_owner = None
        generation.lease_until = None
        self.session.add(generation)

    def count_active_generations(self, *, channel_id: str, user_id: str) -> dict[str, tuple[int, int]]:
        """Per status, (all in this channel, this user's) for jobs not finished yet."""
        statement = (
            select(Generation.status, Generation.requested_by, func.count())
            .join(Round, col(Round.id) == col(Generation.round_id))
            .where(Round.channel_id == channel_id, col(Generation.status).not_in(TERMINAL))
            .group_by(col(Generation.status), col(Generation.requested_by))
        )
        counts: dict[str, tuple[int, int]] = {}
        for status, requested_by, count in self.session.exec(statement).all():
            everyone, mine = counts.get(status, (0, 0))
            counts[status] = (everyone + count, mine + (count if requested_by == user_id else 0))
        return counts

    def count_open_rounds(self, channel_id: str) -> int:
        statement = (
            select(func.count())
            .select_from(Round)
            .where(Round.channel_id == channel_id, Round.status == OPEN)
        )
        return int(self.session.exec(statement).one())

    def next_due(self) -> datetime | None:
        """When the next waiting job is due (queued, submitting or running), if any."""
        statement = select(func.min(Generation.next_poll_at)).where(
            col(Generation.status).in_([QUEUED, SUBMITTING, IN_PROGRESS])
        )
        return self.session.exec(statement).one()

    def queued_ahead(self, provider: str, generation_id: int) -> int:
        """How many queued jobs for `provider` are ahead of this one (the line is first come, first served)."""
        statement = (
            select(func.count())
            .select_from(Generation)
            .where(
                Generation.provider == provider,
                Generation.status == QUEUED,
                col(Generation.id) < generation_id,
            )
        )
        return int(self.session.exec(statement).one())

    def count_inflight(self, provider: str) -> int:
        """Jobs a provider is working on for us now (its concurrency limit counts these)."""
        statement = (
            select(func.count())
            .select_from(Generation)
            .where(Generation.provider == provider, col(Generation.status).in_([SUBMITTING, IN_PROGRESS]))
        )
        return int(self.session.exec(statement).one())

    # --- channel settings and spend ------------------------------------------------------------

    def channel_settings(self, channel_id: str) -> ChannelSettings | None:
        return self.session.get(ChannelSettings, channel_id)

    def charge(
        self,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        amount: float,
        budget: float | None,
        day: str,
        now: datetime,
        provider: str,
        model: str | None,
        seconds: int,
        round_id: int | None = None,
    ) -> float | None:
        """Record a charge unless it would take the channel past `budget` today.

        Returns None when charged, else what is already spent today. Atomic: the channel's settings row
        is locked first (PostgreSQL) or the write lock is held (SQLite), so two clicks cannot both pass.
        """
        if budget is not None:
            self._insert_ignoring_duplicates(
                ChannelSettings,
                {"channel_id": channel_id, "team_id": team_id, "updated_by": user_id, "updated_at": now},
            )
            lock = select(ChannelSettings.channel_id).where(ChannelSettings.channel_id == channel_id)
            if self.dialect == "postgresql":
                lock = lock.with_for_update()
            self.session.exec(lock).first()
            spent = self.spent_today(channel_id, day=day)
            if spent + amount > budget + 1e-9:
                return spent
        self.add(
            Spend(
                team_id=team_id,
                channel_id=channel_id,
                user_id=user_id,
                day=day,
                round_id=round_id,
                provider=provider,
                model=model,
                seconds=seconds,
                amount=amount,
                created_at=now,
            )
        )
        return None

    def spent_today(self, channel_id: str, *, day: str) -> float:
        statement = select(func.coalesce(func.sum(Spend.amount), 0.0)).where(
            Spend.channel_id == channel_id, Spend.day == day
        )
        return float(self.session.exec(statement).one())

    # --- votes ------------------------------------------------------------------------------

    def add_vote(self, *, round_id: int, generation_id: int, user_id: str, emoji: str, now: datetime) -> bool:
        """True when this is a new vote; the same person, variation and emoji counts once."""
        values = {
            "round_id": round_id,
            "generation_id": generation_id,
            "user_id": user_id,
            "emoji": emoji,
            "created_at": now,
        }
        return self._insert_ignoring_duplicates(Vote, values)

    def remove_vote(self, *, generation_id: int, user_id: str, emoji: str) -> bool:
        statement = delete(Vote).where(
            col(Vote.generation_id) == generation_id, col(Vote.user_id) == user_id, col(Vote.emoji) == emoji
        )
        return bool(self.session.execute(statement).rowcount)  # type: ignore[attr-defined]

    def votes_in_round(self, round_id: int) -> Sequence[Vote]:
        return self.session.exec(select(Vote).where(Vote.round_id == round_id).order_by(col(Vote.id))).all()

    # --- patterns ---------------------------------------------------------------------------

    def search_patterns(self, team_id: str, query: str, *, limit: int = 5) -> list[PatternHit]:
        """Full-text search over saved winners. User text is never parsed as query syntax."""
        words = _WORD.findall(query.lower())[:20]
        if not words:
            return []
        for joiner in (" AND ", " OR "):  # every word first; any word when that finds nothing
            hits = self._search(team_id, words, joiner=joiner, limit=limit)
            if hits:
                return hits
        return []

    def _search(self, team_id: str, words: list[str], *, joiner: str, limit: int) -> list[PatternHit]:
        if self.dialect == "postgresql":
            # websearch_to_tsquery never raises on user syntax; quoting each word keeps operators out.
            query = (" or " if joiner == " OR " else " ").join(f'"{w}"' for w in words)
            sql = text(
                f"SELECT id, ts_rank_cd({_PG_DOCUMENT}, q) AS rank FROM pattern, "
                "websearch_to_tsquery('english', :q) AS q "
                f"WHERE team_id = :team AND {_PG_DOCUMENT} @@ q ORDER BY rank DESC, id DESC LIMIT :limit"
            )
            rows = self.session.execute(sql, {"q": query, "team": team_id, "limit": limit}).all()
            ranked = [(int(r[0]), float(r[1])) for r in rows]
        else:
            match = joiner.join('"' + w.replace('"', '""') + '"' for w in words)
            sql = text(
                "SELECT pattern.id, bm25(pattern_fts, 5.0, 1.0, 2.0) AS rank FROM pattern_fts "
                "JOIN pattern ON pattern.id = pattern_fts.rowid "
                "WHERE pattern_fts MATCH :match AND pattern.team_id = :team ORDER BY rank, pattern.id DESC "
                "LIMIT :limit"
            )
            rows = self.session.execute(sql, {"match": match, "team": team_id, "limit": limit}).all()
            ranked = [(int(r[0]), -float(r[1])) for r in rows]
        hits = []
        for pattern_id, rank in ranked:
            pattern = self.session.get(Pattern, pattern_id)
            if pattern is not None:
                hits.append(PatternHit(pattern=pattern, rank=rank))
        return hits

    def pattern_for_round(self, round_id: int) -> Pattern | None:
        return self.session.exec(select(Pattern).where(Pattern.round_id == round_id)).first()
