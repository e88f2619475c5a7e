"""The store's migrations on SQLite and PostgreSQL: a populated store goes from the first
revision to head intact, a store made by `create_all` is adopted, a store from a newer or an
older fleetpipe is refused untouched, and the models agree with the migrations."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from store.definitions.tenants import enterprise_for_key, hash_key, list_tokens, revoke_token
from store.migrations import (
    FIRST_REVISION,
    NotAdoptable,
    StoreNotAtHead,
    UnknownRevision,
    current_revision,
    head_revision,
    is_at_head,
    require_head,
    upgrade,
)
from store.migrations.scope import TARGET_METADATA, include_name
from tests.store.migrations.rows import (
    assert_kept,
    migrate_to,
    store_made_before_migrations,
    write_one_row_each,
)

# Tables made by revisions after the first (a populated first-revision store has none).
TABLES_ADDED_LATER = {"operator_action"}


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": include_name})
        return list(compare_metadata(context, TARGET_METADATA))


def test_models_and_migrations_agree(engine: Engine) -> None:
    # `engine` is a fresh database taken to head by the migrations.
    assert current_revision(engine) == head_revision()
    assert _diff(engine) == []


def test_the_agreement_check_sees_a_difference(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP INDEX ix_command_status"))
    assert [entry[0] for entry in _diff(engine)] == ["add_index"]  # type: ignore[index]


def test_a_populated_store_goes_from_the_first_revision_to_head_intact(
    blank_engine: Engine,
) -> None:
    migrate_to(blank_engine, FIRST_REVISION)
    written = write_one_row_each(blank_engine)
    # a row in every table the first revision made
    assert set(written) == set(TARGET_METADATA.tables) - TABLES_ADDED_LATER

    assert upgrade(blank_engine) == (FIRST_REVISION, head_revision())

    assert is_at_head(blank_engine)
    assert_kept(written, blank_engine)


def test_a_store_made_by_create_all_is_adopted_with_its_data(blank_engine: Engine) -> None:
    store_made_before_migrations(blank_engine)
    written = write_one_row_each(blank_engine)
    assert current_revision(blank_engine) is None
    with pytest.raises(StoreNotAtHead) as refused:
        require_head(blank_engine)
    assert "before fleetpipe had migrations" in str(refused.value)
    assert "`fleetpipe db upgrade`" in str(refused.value)

    assert upgrade(blank_engine) == (None, head_revision())

    require_head(blank_engine)
    assert_kept(written, blank_engine)
    assert _diff(blank_engine) == []


def test_an_empty_store_is_upgraded_from_scratch_and_again_changes_nothing(
    blank_engine: Engine,
) -> None:
    with pytest.raises(StoreNotAtHead) as refused:
        require_head(blank_engine)
    assert "has no tables yet. Run `fleetpipe db upgrade`" in str(refused.value)
    assert not is_at_head(blank_engine)

    assert upgrade(blank_engine) == (None, head_revision())
    assert upgrade(blank_engine) == (head_revision(), head_revision())
    assert is_at_head(blank_engine)
    assert _diff(blank_engine) == []


def test_a_store_ahead_of_head_is_refused_untouched(engine: Engine) -> None:
    with engine.begin() as connection:  # as a newer fleetpipe would leave it
        connection.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(UnknownRevision) as refused:
        upgrade(engine)
    message = str(refused.value)
    assert "at revision 9999, which this fleetpipe does not know" in message
    assert "newer fleetpipe" in message
    with pytest.raises(UnknownRevision):
        require_head(engine)
    assert not is_at_head(engine)
    assert current_revision(engine) == "9999"


def test_a_store_from_before_the_first_revision_is_refused_with_what_it_lacks(
    blank_engine: Engine,
) -> None:
    store_made_before_migrations(blank_engine)
    with blank_engine.begin() as connection:  # as a store made before retries existed
        connection.execute(sqlalchemy.text("ALTER TABLE target_run DROP COLUMN retry_of"))
    with pytest.raises(NotAdoptable) as refused:
        upgrade(blank_engine)
    assert "older fleetpipe (target_run lacks retry_of)" in str(refused.value)
    assert current_revision(blank_engine) is None  # not stamped
    assert "alembic_version" not in sqlalchemy.inspect(blank_engine).get_table_names()


def test_the_simulators_table_is_not_the_migrations_business(engine: Engine) -> None:
    from devices.sim_records import create_tables

    create_tables(engine)
    assert _diff(engine) == []  # not reported as a table to drop
    assert upgrade(engine) == (head_revision(), head_revision())
    assert "sim_delivery" in sqlalchemy.inspect(engine).get_table_names()



def test_revision_0002_keeps_the_keys_live_and_lets_them_be_revoked(
    blank_engine: Engine,
) -> None:
    migrate_to(blank_engine, FIRST_REVISION)
    written = write_one_row_each(blank_engine)
    key = "fp_made-before-revocation"
    with blank_engine.begin() as connection:  # the one key, as a store at 0001 holds it
        connection.execute(sqlalchemy.text("UPDATE api_token SET token_hash = :hash"),
                           {"hash": hash_key(key)})
    written["api_token"]["token_hash"] = hash_key(key)
    assert "revoked_at" not in _columns(blank_engine, "api_token")

    assert upgrade(blank_engine) == (FIRST_REVISION, head_revision())

    assert "revoked_at" in _columns(blank_engine, "api_token")
    assert_kept(written, blank_engine)
    enterprise_id = uuid.UUID(str(written["enterprise"]["id"]))  # hex text on SQLite
    (listed,) = list_tokens(blank_engine, enterprise_id)
    assert listed.revoked_at is None
    assert enterprise_for_key(blank_engine, key) == enterprise_id  # still live
    revoke_token(blank_engine, listed.id)
    assert enterprise_for_key(blank_engine, key) is None


def _columns(engine: Engine, table: str) -> set[str]:
    return {column["name"] for column in sqlalchemy.inspect(engine).get_columns(table)}
