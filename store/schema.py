"""Creating the production tables, and refusing a database made by an older fleetpipe."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

# Every module that declares production tables, so that they are all registered.
import store.definitions.devices  # noqa: F401
import store.definitions.operation_lists  # noqa: F401
import store.definitions.pipelines  # noqa: F401
import store.definitions.target_lists  # noqa: F401
import store.definitions.tenants  # noqa: F401
import store.runs.commands  # noqa: F401
import store.runs.events  # noqa: F401
import store.runs.tables  # noqa: F401


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
