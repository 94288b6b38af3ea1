"""Alembic's entry point: runs the revisions on the connection `storage.schema.upgrade` hands it (inside its
transaction and lock), or, for someone writing a revision with the `alembic` command, on `-x url=…`."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, create_engine
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from storage import models  # noqa: F401  (registers every table with SQLModel.metadata)
from storage.models import UtcDateTime
from storage.schema import include_object

config = context.config


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """`--autogenerate` drafts in the revisions' own words: sa.String for SQLModel's str, our UtcDateTime."""
    if type_ == "type" and isinstance(obj, AutoString):
        return "sa.String()"
    if type_ == "type" and isinstance(obj, UtcDateTime):
        autogen_context.imports.add("from storage.models import UtcDateTime")
        return "UtcDateTime()"
    return False


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        # SQLite alters little in place: batch mode copies the table with the change.
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object,
        render_item=render_item,
        compare_type=True,
        # Both databases roll DDL back (the store runs SQLite without the driver's implicit commits).
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("sora-bot's revisions inspect the database as they go; run them online (no --sql)")
given = config.attributes.get("connection")
if given is not None:
    run(given)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("say which database: alembic -x url=sqlite:///scratch.db <command>")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            run(connection)
    finally:
        engine.dispose()
