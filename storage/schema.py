"""The schema's version: where a database stands against this release's revisions, and bringing it to head.

Every schema change is an Alembic revision in `storage/migrations/versions/`, found there whether sora-bot runs
from a checkout or was installed with pip (no alembic.ini: the configuration is built here). `upgrade` runs the
missing revisions in one transaction: PostgreSQL and SQLite both roll DDL back, so a failed migration leaves the
database as it was. Replicas migrating together take turns (a PostgreSQL advisory lock; on SQLite the write lock
the store's BEGIN IMMEDIATE takes up front), and whoever goes second finds nothing left to do.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA_LOCK = 0x50_52_41_42  # the PostgreSQL advisory lock key `upgrade` holds while it runs
VERSION_TABLE = "alembic_version"
MIGRATION_WAIT_MS = 600_000  # SQLite: how long a migrator waits for another to finish
# Made by the baseline as raw SQL, outside the models: the FTS5 table (and its shadow tables), the GIN index.
SEARCH_OBJECTS = ("pattern_fts", "ix_pattern_search")


class UnknownRevision(Exception):
    """The database is at a revision this release does not have: a newer release migrated it."""

    def __init__(self, revision: str, head: str) -> None:
        self.revision = revision
        super().__init__(
            f"the database schema is at revision {revision}, which this release does not know (its newest is "
            f"{head}): a newer sora-bot migrated it; run that release, or restore the backup taken before"
        )


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # the database's revision; None when it has none (empty, or made before migrations)
    head: str  # this release's newest revision
    has_tables: bool  # any table besides Alembic's own
    known: bool = True  # `current` is one of this release's revisions

    @property
    def empty(self) -> bool:
        """Nothing here yet: creating the schema is no upgrade, so `serve` may do it unasked."""
        return self.current is None and not self.has_tables

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        if self.up_to_date:
            return f"{self.head} (head)"
        if not self.known:
            return f"{self.current}, unknown to this release (head {self.head})"
        if self.empty:
            return f"empty (head {self.head})"
        where = self.current or "unversioned (made before versioned migrations)"
        return f"{where}, head {self.head}"


@dataclass(frozen=True)
class Migration:
    """What `upgrade` did: from `before` (None: empty or unversioned) to `after`."""

    before: str | None
    after: str | None

    @property
    def ran(self) -> bool:
        return self.before != self.after


def alembic_config(connection: Connection | None = None) -> Config:
    """The scripts in this package; env.py runs them on `connection` when one is given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    found = _scripts().get_current_head()
    assert found is not None, "storage/migrations/versions has no revisions"
    return found


def revisions() -> list[str]:
    """This release's revisions, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


def state(engine: Engine) -> SchemaState:
    """Where the database stands; reads only (on SQLite pass the store's reader, which takes no write lock)."""
    with engine.connect() as conn:
        return _state(conn)


def _state(conn: Connection) -> SchemaState:
    names = set(inspect(conn).get_table_names())
    current = None
    if VERSION_TABLE in names:  # read directly: Alembic's MigrationContext logs at INFO on every look
        current = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    tables = names - {VERSION_TABLE}
    return SchemaState(
        current=current,
        head=head(),
        has_tables=bool(tables),
        known=current is None or current in revisions(),
    )


def upgrade(engine: Engine) -> Migration:
    """Run every revision the database lacks, in one transaction, one migrator at a time.

    Raises UnknownRevision when a newer release has migrated the database."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Batch mode changes a table by copying it; with foreign keys enforced, dropping the original fails
            # while rows elsewhere point at it. They can only be switched off outside a transaction, so off
            # now, and every reference is checked before the commit instead. A replica waits for another's
            # migration (the write lock) as long as it takes, not the store's usual five seconds.
            _pragma(conn, "foreign_keys=OFF")
            _pragma(conn, f"busy_timeout={MIGRATION_WAIT_MS}")
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
                # Read under the lock: a replica that waited finds the revision the first one left.
                before = _state(conn)
                if not before.known:
                    raise UnknownRevision(str(before.current), before.head)
                if not before.up_to_date:
                    command.upgrade(alembic_config(conn), "head")
                if sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").all()):
                    raise RuntimeError(
                        f"a migration left rows pointing at nothing: {broken[:5]}; rolled back"
                    )
                return Migration(before=before.current, after=_state(conn).current)
        finally:
            if sqlite:
                _pragma(conn, "foreign_keys=ON")
                _pragma(conn, "busy_timeout=5000")


def _pragma(conn: Connection, setting: str) -> None:
    # On the driver's connection: through SQLAlchemy the statement would first begin a transaction.
    conn.connection.driver_connection.execute(f"PRAGMA {setting}")  # type: ignore[union-attr]


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """What Alembic compares with the models: everything but the search objects the baseline made in SQL."""
    return not (name or "").startswith(SEARCH_OBJECTS)
