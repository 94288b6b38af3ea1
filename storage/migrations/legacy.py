"""How the baseline revision brings up a database made before migrations were versioned, keeping every row.

Those releases created tables with `create_all` on every start and patched existing ones in place; they left no
revision behind. The baseline (`versions/0001_baseline.py`) runs these steps with its own frozen tables, inside the
one migration transaction (PostgreSQL and SQLite both roll DDL back, so a failed upgrade leaves the database as it
was), then Alembic stamps it:

1. `create_all` for the tables that are missing.
2. `add_missing_columns`: columns the tables define and the database lacks, with the default as the SQL DEFAULT
   so existing rows get the value new rows would get.
3. `upgrade_previous_release`: the release before the Slack outbox kept things in columns the baseline retired;
   their content is moved to where the baseline keeps it, then the columns are dropped.
4. `add_missing_constraints`: named unique constraints and indexes the tables define and the database lacks.
5. `store_times_as_utc`: on PostgreSQL, the release before the outbox made its datetime columns `timestamptz`;
   the baseline's are `timestamp` holding UTC, so they are converted, each value kept as the same instant.

Every step looks at the database before it acts, so a database already at the baseline passes through unchanged.
Frozen with the baseline: later schema changes are revisions, never edits here.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    MetaData,
    Table,
    UniqueConstraint,
    column,
    func,
    inspect,
    literal,
    select,
    table,
    update,
)
from sqlalchemy.schema import AddConstraint, CreateIndex
from sqlalchemy.types import TypeDecorator

from storage.models import UtcDateTime

log = logging.getLogger(__name__)


def bring_up_unversioned(conn: Connection, metadata: MetaData) -> None:
    """Steps 1–4 above: an unversioned database of any earlier release ends with exactly `metadata`'s tables."""
    metadata.create_all(conn)
    add_missing_columns(conn, metadata)
    # Before anything is dropped: it reads the retired columns into the new ones.
    upgrade_previous_release(conn, metadata)
    add_missing_constraints(conn, metadata)
    store_times_as_utc(conn, metadata)


def add_missing_columns(conn: Connection, metadata: MetaData) -> None:
    """ALTER TABLE … ADD COLUMN for every model column an existing table lacks.

    Existing rows take the column's SQL DEFAULT, so it is the model's own scalar default where there is one
    (`vote.active` must come in true: the votes already cast count). A NOT NULL column without one gets a
    neutral value ('[]' for JSON, 0 for numbers and booleans, '' for text) because ADD COLUMN needs some.
    """
    inspector = inspect(conn)
    existing = set(inspector.get_table_names())
    for model_table in metadata.sorted_tables:
        if model_table.name not in existing:
            continue
        present = {c["name"] for c in inspector.get_columns(model_table.name)}
        for model_column in model_table.columns:
            if model_column.name in present:
                continue
            kind = model_column.type.compile(dialect=conn.dialect)
            default = _default_sql(conn, model_column, kind)
            log.info("adding column %s.%s", model_table.name, model_column.name)
            clause = ""
            if default is not None:
                # The DEFAULT fills the rows already there, so the column can be NOT NULL as in a fresh table.
                clause = f" DEFAULT {default}" + ("" if model_column.nullable else " NOT NULL")
            conn.exec_driver_sql(
                f'ALTER TABLE "{model_table.name}" ADD COLUMN "{model_column.name}" {kind}{clause}'
            )


def _default_sql(conn: Connection, model_column: Column[Any], kind: str) -> str | None:
    scalar = model_column.default
    if scalar is not None and scalar.is_scalar:
        value = scalar.arg  # type: ignore[attr-defined]
        if value is not None:
            return _literal(conn, value, model_column)
    if isinstance(model_column.type, JSON):
        return "'[]'"
    if model_column.nullable:
        return None
    if kind.upper() in ("INTEGER", "BIGINT", "SMALLINT", "FLOAT", "REAL", "DOUBLE PRECISION", "NUMERIC"):
        return "0"
    if kind.upper() == "BOOLEAN":
        return _literal(conn, False, model_column)
    return "''"


def _literal(conn: Connection, value: object, model_column: Column[Any]) -> str:
    """`value` as this dialect spells a constant of the column's type: TRUE on PostgreSQL, 1 on SQLite…"""
    rendered = literal(value, model_column.type).compile(
        dialect=conn.dialect, compile_kwargs={"literal_binds": True}
    )
    return str(rendered)


# The release before the outbox kept these; `upgrade_previous_release` moves what they hold, then drops them.
RETIRED_COLUMNS = {
    "round": ("announced_ts", "sheet_file_id"),
    "generation": ("params", "file_id", "posted_at"),
}
# Retired index → (its table, what replaces it). It found a generation by its provider job; the unique
# constraint does that now. It stays while the constraint could not be added (see `add_missing_constraints`).
RETIRED_INDEXES = {"ix_generation_job": ("generation", "uq_generation_provider_job")}


def upgrade_previous_release(conn: Connection, metadata: MetaData, *, now: datetime | None = None) -> None:
    """Move what the previous release kept in columns this release retired, then drop those columns.

    - `round.sheet_file_id` → a sent `upload_sheet` outbox row: a round whose sheet was posted (or given up
      on: "none") must not get a second one.
    - `round.status` closed → `round.closes = 1`: it was closed (and announced) once already.
    - `generation.params` {"sources", "start", "end"} → `generation.source_paths`, `edit_start`, `edit_end`:
      edits it queued keep the clips they cut from.
    - Posts it still owed (`round.announced_ts`, `generation.posted_at` and the message ts columns unset) →
      outbox rows, which is how this release remembers what it has to post.
    - Then `round.announced_ts`, `round.sheet_file_id`, `generation.params`, `generation.file_id` and
      `generation.posted_at` are dropped. (The index `ix_generation_job` goes in `add_missing_constraints`, once
      the unique constraint that replaces it is there.)

    Each table is done only while it still has its retired columns, so a second run changes nothing.
    """
    now = now or datetime.now(UTC)
    inspector = inspect(conn)
    tables = set(inspector.get_table_names())
    columns = {
        name: {c["name"] for c in inspector.get_columns(name)} for name in RETIRED_COLUMNS if name in tables
    }
    rounds_old = set(RETIRED_COLUMNS["round"]) <= columns.get("round", set())
    generations_old = set(RETIRED_COLUMNS["generation"]) <= columns.get("generation", set())
    if not rounds_old and not generations_old:
        return
    log.info("upgrading tables of the previous release: round %s, generation %s", rounds_old, generations_old)
    outbox = metadata.tables["outbox"]
    if rounds_old:
        _move_round_columns(conn, outbox, now)
    if generations_old:
        _move_generation_params(conn)
    if rounds_old and generations_old:
        _queue_owed_posts(conn, outbox, now)
    for name, retired in RETIRED_COLUMNS.items():
        for retired_column in retired:
            if retired_column in columns.get(name, set()):
                log.info("dropping retired column %s.%s", name, retired_column)
                conn.exec_driver_sql(f'ALTER TABLE "{name}" DROP COLUMN "{retired_column}"')


_round = table(
    "round",
    column("id"),
    column("status"),
    column("parent_ts"),
    column("closes"),
    column("announced_ts"),
    column("sheet_file_id"),
    column("created_at", UtcDateTime),
)
_generation = table(
    "generation",
    column("id"),
    column("round_id"),
    column("status"),
    column("message_ts"),
    column("posted_at"),
    column("params", JSON),
    column("source_paths", JSON),
    column("edit_start"),
    column("edit_end"),
)


def _move_round_columns(conn: Connection, outbox: Table, now: datetime) -> None:
    present = {row[0] for row in conn.execute(select(outbox.c.key))}
    posted = conn.execute(
        select(_round.c.id, _round.c.sheet_file_id).where(_round.c.sheet_file_id.is_not(None))
    )
    for round_id, file_id in posted:
        key = _SHEET[1].format(round_id=round_id)
        if key not in present:  # recorded as sent: the sweep asks for a round's sheet once, by this key
            conn.execute(
                outbox.insert().values(
                    key=key,
                    kind=_SHEET[0],
                    round_id=round_id,
                    state="sent",
                    file_id=None if file_id == "none" else file_id,
                    due_at=now,
                    created_at=now,
                    sent_at=now,
                )
            )
    conn.execute(update(_round).where(_round.c.status == "closed", _round.c.closes == 0).values(closes=1))


def _move_generation_params(conn: Connection) -> None:
    rows = conn.execute(select(_generation.c.id, _generation.c.params)).all()
    for row_id, params in rows:
        if not isinstance(params, dict):
            continue
        sources = params.get("sources")
        values: dict[str, Any] = {}
        if isinstance(sources, list) and sources:
            values["source_paths"] = [str(p) for p in sources]
        for key, target in (("start", "edit_start"), ("end", "edit_end")):
            number = _number(params.get(key))
            if number is not None:
                values[target] = number
        if values:
            conn.execute(update(_generation).where(_generation.c.id == row_id).values(**values))


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


# Outbox keys and kinds as bot/posting.py names them (`_key`, `PostKind`, `round_closed`): a row inserted
# here is the very row the new code would have asked for, so asking again later is a no-op.
_PARENT = ("post_parent", "round-{round_id}/post_parent")
_VARIATION = ("post_variation", "generation-{generation_id}/post_variation")
_CLIP = ("upload_clip", "generation-{generation_id}/upload_clip")
_ANNOUNCE = ("announce", "round-{round_id}/close-1/announce")
_SHEET = ("upload_sheet", "round-{round_id}/upload_sheet")


def _queue_owed_posts(conn: Connection, outbox: Table, now: datetime) -> None:
    """What the previous release's sweep still had to post, found the way it found it, as outbox rows.

    Its sweep looked for unset columns (no parent ts, no message ts, no `announced_ts`, no `posted_at`);
    this release's sweep only sends outbox rows, so without this those posts would never be made.
    (Unposted contact sheets need nothing: such a round has no sheet row, and the sweep queues one.)
    """
    r, g = _round, _generation
    # (round, phase, generation, round's start): one round's rows go out in id order, the parent first.
    owed: list[tuple[int, int, int, datetime, tuple[str, str]]] = []
    started = r.c.created_at
    for round_id, since in conn.execute(
        select(r.c.id, started).where(r.c.parent_ts.is_(None), r.c.status == "open")
    ):
        owed.append((round_id, 0, 0, since, _PARENT))
    round_gets_a_thread = (r.c.parent_ts.is_not(None)) | (r.c.status == "open")
    for generation_id, round_id, since in conn.execute(
        select(g.c.id, g.c.round_id, started)
        .join(r, r.c.id == g.c.round_id)
        .where(g.c.message_ts.is_(None), round_gets_a_thread)
    ):
        owed.append((round_id, 1, generation_id, since, _VARIATION))
    for generation_id, round_id, since in conn.execute(
        select(g.c.id, g.c.round_id, started)
        .join(r, r.c.id == g.c.round_id)
        .where(g.c.status == "completed", g.c.posted_at.is_(None), g.c.message_ts.is_not(None))
    ):
        owed.append((round_id, 2, generation_id, since, _CLIP))
    for round_id, since in conn.execute(
        select(r.c.id, started).where(
            r.c.status == "closed", r.c.announced_ts.is_(None), r.c.parent_ts.is_not(None)
        )
    ):
        owed.append((round_id, 3, 0, since, _ANNOUNCE))
    present = {row[0] for row in conn.execute(select(outbox.c.key))}
    for round_id, _phase, number, since, (kind, key_format) in sorted(owed):
        generation_id = number or None
        key = key_format.format(round_id=round_id, generation_id=generation_id)
        if key in present:
            continue
        log.info("queueing %s, which the previous release had not posted yet", key)
        # Due since the round began: it was owed then, and it is a time whatever clock the sweep reads is past.
        conn.execute(
            outbox.insert().values(  # the model's defaults fill the rest (pending, version 1…)
                key=key,
                kind=kind,
                round_id=round_id,
                generation_id=generation_id,
                due_at=since or now,
                created_at=now,
            )
        )


def add_missing_constraints(conn: Connection, metadata: MetaData) -> None:
    """Named unique constraints and indexes of `metadata` that an existing table lacks.

    A unique constraint the rows already break is not added: that is logged as an error, with the statement to
    run once the duplicates are resolved, and the migration goes on (the code checks before it writes; the
    constraint only has the last word).
    """
    inspector = inspect(conn)
    existing_tables = set(inspector.get_table_names())
    for model_table in metadata.sorted_tables:
        if model_table.name not in existing_tables:
            continue
        names = {i["name"] for i in inspector.get_indexes(model_table.name)}
        names |= {u["name"] for u in inspector.get_unique_constraints(model_table.name)}
        uniques = [c for c in model_table.constraints if isinstance(c, UniqueConstraint)]
        for constraint in sorted(uniques, key=lambda c: str(c.name)):
            # Unnamed ones (a column's unique=True) came with the table; a name is how we tell it is there.
            if isinstance(constraint.name, str) and constraint.name not in names:
                _add_unique(conn, model_table, constraint, constraint.name)
        for index in sorted(model_table.indexes, key=lambda i: str(i.name)):
            if isinstance(index.name, str) and index.name not in names:
                log.info("creating index %s", index.name)
                conn.execute(CreateIndex(index))
    _drop_retired_indexes(conn)


def _add_unique(conn: Connection, model_table: Table, constraint: UniqueConstraint, name: str) -> None:
    cols = [model_table.c[c.name] for c in constraint.columns]
    duplicates = conn.execute(
        select(*cols, func.count())
        .select_from(model_table)
        .where(*(c.is_not(None) for c in cols))  # NULLs never clash
        .group_by(*cols)
        .having(func.count() > 1)
        .limit(5)
    ).all()
    quote = conn.dialect.identifier_preparer.quote
    # SQLite cannot add a constraint to a table; a unique index enforces the same thing.
    statement = (
        f"CREATE UNIQUE INDEX {quote(name)} ON {quote(model_table.name)} "
        f"({', '.join(quote(c.name) for c in cols)})"
        if conn.dialect.name == "sqlite"
        else str(AddConstraint(constraint).compile(dialect=conn.dialect))
    )
    if duplicates:
        log.error(
            "not adding unique constraint %s on %s(%s): rows already share values, e.g. %s; "
            "resolve the duplicates, then add it with: %s",
            name,
            model_table.name,
            ", ".join(c.name for c in cols),
            [tuple(row) for row in duplicates],
            statement,
        )
        return
    log.info("adding unique constraint %s", name)
    conn.exec_driver_sql(statement)


def store_times_as_utc(conn: Connection, metadata: MetaData) -> None:
    """`timestamptz` columns the tables define as plain `timestamp` become that, holding the same instants in
    UTC (the baseline binds naive UTC: in a `timestamptz` column the session's time zone would shift them)."""
    if conn.dialect.name != "postgresql":
        return
    inspector = inspect(conn)
    existing = set(inspector.get_table_names())
    for model_table in metadata.sorted_tables:
        if model_table.name not in existing:
            continue
        reflected = {c["name"]: c["type"] for c in inspector.get_columns(model_table.name)}
        for model_column in model_table.columns:
            wanted = model_column.type
            impl = wanted.impl_instance if isinstance(wanted, TypeDecorator) else wanted
            found = reflected.get(model_column.name)
            if not isinstance(impl, DateTime) or impl.timezone or not isinstance(found, DateTime):
                continue
            if found.timezone:
                log.info("storing %s.%s as UTC without a time zone", model_table.name, model_column.name)
                conn.exec_driver_sql(
                    f'ALTER TABLE "{model_table.name}" ALTER COLUMN "{model_column.name}" '
                    f"TYPE timestamp without time zone USING \"{model_column.name}\" AT TIME ZONE 'UTC'"
                )


def _drop_retired_indexes(conn: Connection) -> None:
    inspector = inspect(conn)
    tables = set(inspector.get_table_names())
    for index_name, (table_name, replacement) in RETIRED_INDEXES.items():
        if table_name not in tables:
            continue
        present = {i["name"] for i in inspector.get_indexes(table_name)}
        present |= {u["name"] for u in inspector.get_unique_constraints(table_name)}
        if index_name in present and replacement in present:
            log.info("dropping retired index %s", index_name)
            conn.exec_driver_sql(f'DROP INDEX "{index_name}"')
