"""Stores as earlier fleetpipes left them, and one row in every table written as the store's
tables are at the moment (reflected, so it works at any revision), then read back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from alembic import command
from sqlalchemy import JSON, MetaData, Table, insert, select, text
from sqlalchemy.engine import Engine

from store.migrations import FIRST_REVISION
from store.migrations.revisions import alembic_config
from store.migrations.scope import TARGET_METADATA

WHEN = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC)


def migrate_to(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def store_made_before_migrations(engine: Engine) -> None:
    """A store as fleetpipe made it with `create_all` before migrations: the first revision's
    tables (that revision is exactly what `create_all` made then) and no alembic_version."""
    migrate_to(engine, FIRST_REVISION)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))


def reflect(engine: Engine) -> list[Table]:
    """Our tables as the database has them, parents before children."""
    metadata = MetaData()
    metadata.reflect(engine, only=lambda name, _meta: name in TARGET_METADATA.tables)
    return metadata.sorted_tables


def write_one_row_each(engine: Engine) -> dict[str, dict[str, Any]]:
    """A row per table, every column filled (foreign keys pointing at the parent's row);
    returns what was written, by table."""
    written: dict[str, dict[str, Any]] = {}
    with engine.begin() as connection:
        for table in reflect(engine):
            row = {column.name: _value(column, written) for column in table.columns}
            connection.execute(insert(table).values(row))
            written[table.name] = row
    return written


def read_back(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with engine.connect() as connection:
        return {
            table.name: [dict(row._mapping) for row in connection.execute(select(table))]
            for table in reflect(engine)
        }


def assert_kept(written: dict[str, dict[str, Any]], engine: Engine) -> None:
    """Every row written is still there, alone in its table, with the values written."""
    after = read_back(engine)
    for table, row in written.items():
        assert len(after[table]) == 1, table
        kept = comparable(after[table][0])
        assert {name: kept[name] for name in row} == comparable(row), table


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    """Values as both databases hand them back: uuids as hex, timestamps as naive UTC."""
    def plain(value: Any) -> Any:
        if isinstance(value, uuid.UUID):
            return value.hex
        if isinstance(value, datetime):
            return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        return value
    return {name: plain(value) for name, value in row.items()}


def _value(column: Any, written: dict[str, dict[str, Any]]) -> Any:
    for foreign_key in column.foreign_keys:
        parent = foreign_key.column
        return written[parent.table.name][parent.name]
    if isinstance(column.type, JSON):
        return {"kept": ["as", "written"], "n": 3}
    python_type = column.type.python_type
    if python_type is uuid.UUID:
        return uuid.uuid4()
    if python_type is str:
        # Uuid columns are CHAR(32) on SQLite: a hex uuid fits any string column.
        return uuid.uuid4().hex
    if python_type is bool:
        return True
    if python_type is int:
        return 7
    if python_type is float:
        return 1.5
    if python_type is datetime:
        return WHEN
    raise AssertionError(f"no test value for {column.table.name}.{column.name} ({column.type})")
