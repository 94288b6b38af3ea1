"""The engine, the schema and the transaction; `Repo` hands the use case one query module per aggregate.

`Store.create_schema` creates what is missing and upgrades a database an earlier release made (see
`storage.upgrade`); it runs on every start and from `sora-bot migrate`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
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
from storage.upgrade import add_missing_columns, add_missing_constraints, upgrade_previous_release
from storage.votes import Votes

log = logging.getLogger(__name__)

SCHEMA_LOCK = 0x50_52_41_42  # the PostgreSQL advisory lock key `create_schema` holds while it runs


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
        """Create every table (and the search index) that does not exist yet, and bring existing tables up to
        the models: missing columns, the previous release's retired columns, missing constraints. Keeps every
        row; safe to run on every start."""
        # One transaction: both databases roll DDL back, so a failed upgrade leaves the database as it was.
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                # Replicas starting together take turns; the next one finds the work done. (SQLite's
                # BEGIN IMMEDIATE already makes them wait.)
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
            SQLModel.metadata.create_all(conn)
            add_missing_columns(conn, SQLModel.metadata)
            # Before anything is dropped: it reads the retired columns into the new ones.
            upgrade_previous_release(conn)
            add_missing_constraints(conn, SQLModel.metadata)
            statements = SQLITE_FTS if self.dialect == "sqlite" else [PG_SEARCH_INDEX]
            for statement in statements:
                conn.exec_driver_sql(statement)

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
