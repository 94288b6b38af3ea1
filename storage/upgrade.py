"""Bringing a database an earlier release made up to the current models, in place, keeping every row.

`create_all` creates the tables that are missing but never changes one that exists. What it leaves out is done
here, inside the one transaction `Store.create_schema` opens (PostgreSQL and SQLite both roll DDL back, so a
failed upgrade leaves the database as it was):

1. `add_missing_columns`: columns the models define and the table lacks, with the model's default as the SQL
   DEFAULT so existing rows get the value new rows would get.

Every step looks at the database before it acts, so running all of them on every start is safe.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import JSON, Column, Connection, MetaData, inspect, literal

log = logging.getLogger(__name__)


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
