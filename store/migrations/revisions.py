"""Where a store stands among our revisions, and taking it to head."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

from store.migrations.scope import TARGET_METADATA

# The schema as `create_all` made it before migrations existed: the store such a database is
# stamped at when it is adopted.
FIRST_REVISION = "0001"
UPGRADE_COMMAND = "fleetpipe db upgrade"
_HERE = Path(__file__).resolve().parent


class StoreNotAtHead(RuntimeError):
    """The store's schema is not the one this fleetpipe runs on."""


class UnknownRevision(StoreNotAtHead):
    """The store is at a revision this fleetpipe does not have: made by a newer one."""


class EmptyStore(StoreNotAtHead):
    """The store has none of our tables yet: `fleetpipe db upgrade` makes them."""


class NotAdoptable(StoreNotAtHead):
    """A store without a revision whose tables are not the first revision's."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for our scripts, running on `connection` (env.py uses it)."""
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["connection"] = connection
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "store/migrations/versions has no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """The store's revision, or None when it has none (empty, or made by `create_all`)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def require_head(engine: Engine) -> None:
    """Refuse to run on a store that is not at head, saying what to do (start-up check)."""
    revision = current_revision(engine)
    if revision == head_revision():
        return
    where = _where(engine)
    if revision is not None:
        _known_or_refuse(engine, revision)
        raise StoreNotAtHead(
            f"the store at {where} is at revision {revision}; this fleetpipe needs "
            f"{head_revision()}. Run `{UPGRADE_COMMAND}` (after a backup), then start again.")
    if _our_tables(engine):
        raise StoreNotAtHead(
            f"the store at {where} was made before fleetpipe had migrations. Run "
            f"`{UPGRADE_COMMAND}`: it adopts the store as it is, keeping its data.")
    raise EmptyStore(f"the store at {where} has no tables yet. Run `{UPGRADE_COMMAND}`.")


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Take the store to head; returns (revision before, head). A store without a revision
    but with our tables (made by `create_all`) is first stamped at the first revision, if its
    tables are that revision's; a store at an unknown revision is refused untouched."""
    before = current_revision(engine)
    adopt = before is None and bool(_our_tables(engine))
    if before is not None:
        _known_or_refuse(engine, before)
    elif adopt:
        _refuse_unless_first_revision(engine)
    with _migrating(engine) as connection:
        config = alembic_config(connection)
        if adopt:
            command.stamp(config, FIRST_REVISION)
        command.upgrade(config, "head")
    return before, head_revision()


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """One connection for the whole upgrade, committed at the end. On SQLite, foreign keys
    are off meanwhile: batch mode rebuilds a table by copy-and-drop, and with them on,
    dropping a referenced table would delete or refuse its children. They are checked after."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                yield connection
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError("a migration left rows whose foreign keys point nowhere")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _known_or_refuse(engine: Engine, revision: str) -> None:
    if revision not in {script.revision for script in _scripts().walk_revisions()}:
        raise UnknownRevision(
            f"the store at {_where(engine)} is at revision {revision}, which this fleetpipe "
            f"does not know (its newest is {head_revision()}): it was made by a newer "
            "fleetpipe. Run that version, or restore a backup taken before it upgraded.")


def _our_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) & set(TARGET_METADATA.tables)


def _refuse_unless_first_revision(engine: Engine) -> None:
    """Stamping is a promise that the tables are the first revision's: check the tables and
    columns are all there (a store from before the first revision lacks some)."""
    expected = _first_revision_columns()
    inspector = inspect(engine)
    present = set(inspector.get_table_names())
    lacks = []
    for table, columns in sorted(expected.items()):
        if table not in present:
            lacks.append(f"no table {table}")
            continue
        missing = columns - {column["name"] for column in inspector.get_columns(table)}
        if missing:
            lacks.append(f"{table} lacks {', '.join(sorted(missing))}")
    if lacks:
        raise NotAdoptable(
            f"the store at {_where(engine)} was made by an older fleetpipe "
            f"({'; '.join(lacks)}), from before migrations, and cannot be adopted. Move that "
            "database away (for `fleetpipe dev`, the .fleetpipe/ directory) and start again.")


@cache
def _first_revision_columns() -> dict[str, frozenset[str]]:
    """The first revision's tables and columns, read from a scratch in-memory database
    migrated to it (the models may since have moved on)."""
    from store.db import make_engine

    scratch = make_engine("sqlite://")
    try:
        with scratch.begin() as connection:
            command.upgrade(alembic_config(connection), FIRST_REVISION)
        inspector = inspect(scratch)
        return {
            table: frozenset(column["name"] for column in inspector.get_columns(table))
            for table in inspector.get_table_names() if table != "alembic_version"
        }
    finally:
        scratch.dispose()


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
