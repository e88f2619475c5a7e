"""Alembic's environment: run by `store.migrations` (never by the `alembic` command line),
always on a connection the caller opened, so the same code serves the CLI, the tests and the
models-versus-migrations check.

The migrations cover the production tables only: `SQLModel.metadata` as `store.schema` fills
it. The simulated fleet's table (`sim_delivery`, devices/sim_records.py) lives on its own
MetaData, is made by the fleet itself, and is left out here: alembic neither creates, alters
nor reports it.
"""

from __future__ import annotations

from alembic import context

from store.migrations.scope import TARGET_METADATA, include_name

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=TARGET_METADATA,
    include_name=include_name,
    # SQLite alters a table by copying it: batch mode does that for every ALTER.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
