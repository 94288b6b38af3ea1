"""The engine and the transaction; `Repo` hands the use case one query module per aggregate."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, SQLModel

from storage import models  # noqa: F401  (registers every table with SQLModel.metadata)
from storage.drafts import Drafts
from storage.events import Events
from storage.generations import Generations
from storage.outbox import OutboxQueries
from storage.patterns import PG_SEARCH_INDEX, SQLITE_FTS, Patterns
from storage.rounds import Rounds
from storage.spend import Channels, Ledger
from storage.votes import Votes

log = logging.getLogger(__name__)


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
            statements = SQLITE_FTS if self.dialect == "sqlite" else [PG_SEARCH_INDEX]
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
    """One unit of work's view of the database: a query module per aggregate, all on one session.

    Nothing here commits; the use case that opened the transaction decides where it ends.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.drafts = Drafts(session)
        self.rounds = Rounds(session)
        self.generations = Generations(session)
        self.votes = Votes(session)
        self.channels = Channels(session)
        self.ledger = Ledger(session)
        self.patterns = Patterns(session)
        self.events = Events(session)
        self.outbox = OutboxQueries(session)

    def ping(self) -> None:
        self.session.execute(text("SELECT 1"))
