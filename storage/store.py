"""The engine, the schema and the transaction; `Repo` hands the use case one query module per aggregate.

`Store.create_schema` brings the database to this release's newest migration (see `storage.schema`): it creates
an empty one, and upgrades one an earlier release made. `sora-bot migrate` runs it; `serve` runs it on an empty
database, and on an older one only when told to.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from storage import (
    models,  # noqa: F401  (registers every table with SQLModel.metadata)
    schema,
)
from storage.drafts import Drafts
from storage.events import Events
from storage.generations import Generations
from storage.outbox import OutboxQueries
from storage.patterns import Patterns
from storage.reactions import ReactionEvents
from storage.rounds import Rounds
from storage.spend import Channels, Ledger
from storage.votes import Votes

log = logging.getLogger(__name__)

# The database itself is the trouble: unreachable, locked past the wait, or a deadlock it broke. Worth trying the
# same work again later, unlike an error in what was asked of it.
DatabaseTrouble = OperationalError


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

    def create_schema(self) -> schema.Migration:
        """Run every migration the database lacks: all of them on an empty one; for one an earlier release
        made, the ones since (the baseline first brings one from before versioned migrations up in place). Keeps
        every row; one transaction; replicas take turns; at head it changes nothing.

        Raises schema.UnknownRevision when a newer release has migrated the database."""
        return schema.upgrade(self.engine)

    def schema_state(self) -> schema.SchemaState:
        """The database's revision against this release's newest, without changing anything."""
        return schema.state(self._read_engine)

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
        self.reactions = ReactionEvents(session)
        self.outbox = OutboxQueries(session)

    def ping(self) -> None:
        self.session.execute(text("SELECT 1"))
