"""The database engine: SQLite (WAL, busy timeout) by default, PostgreSQL in production."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

import store.commands  # noqa: F401
import store.definitions  # noqa: F401  (registers the tables)
import store.runs  # noqa: F401


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while the worker writes; NORMAL sync is safe under WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class SchemaOutOfDate(RuntimeError):
    """The database has our tables in an older shape (there are no migrations yet)."""


def create_schema(engine: Engine) -> None:
    """Create missing tables, then refuse a database whose tables lack columns: `create_all`
    never alters a table, and a worker on an old table fails later, deep in a run."""
    SQLModel.metadata.create_all(engine)
    inspector = inspect(engine)
    missing = {
        table.name: sorted(set(table.columns.keys())
                           - {column["name"] for column in inspector.get_columns(table.name)})
        for table in SQLModel.metadata.sorted_tables
    }
    missing = {name: columns for name, columns in missing.items() if columns}
    if missing:
        listed = "; ".join(f"{name} lacks {', '.join(cols)}" for name, cols in missing.items())
        raise SchemaOutOfDate(
            f"the database at {engine.url.render_as_string(hide_password=True)} was made by an "
            f"older fleetpipe ({listed}). There are no migrations yet: move that database "
            "away (for `fleetpipe dev`, the .fleetpipe/ directory) and start again.")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
