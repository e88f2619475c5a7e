"""`fleetpipe db upgrade` and `db current` against real SQLite files: a store made before
migrations is adopted, an old or a newer one is refused in one plain line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from typer.testing import CliRunner

from cli.main import app
from settings import get_settings
from store.db import make_engine
from store.definitions.tenants import ensure_enterprise
from store.migrations import head_revision
from tests.store.migrations.rows import store_made_before_migrations


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'fleetpipe.db'}"
    monkeypatch.setenv("FLEETPIPE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def _create_all_store(url: str) -> None:
    engine = make_engine(url)
    store_made_before_migrations(engine)
    ensure_enterprise(engine, "kept")
    engine.dispose()


def test_upgrade_makes_an_empty_store_and_again_changes_nothing(database_url: str) -> None:
    runner = CliRunner()
    current = runner.invoke(app, ["db", "current"])
    assert current.exit_code == 1
    assert f"store: no revision; this fleetpipe: {head_revision()}" in current.output

    first = runner.invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert f"store at revision {head_revision()} (was without a revision)" in first.output
    again = runner.invoke(app, ["db", "upgrade"])
    assert again.exit_code == 0, again.output
    assert "(already there)" in again.output

    current = runner.invoke(app, ["db", "current"])
    assert current.exit_code == 0, current.output
    assert f"store: {head_revision()}; this fleetpipe: {head_revision()}" in current.output


def test_upgrade_adopts_a_store_made_before_migrations(database_url: str) -> None:
    _create_all_store(database_url)
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            names = connection.execute(sqlalchemy.text("SELECT name FROM enterprise")).scalars()
            assert list(names) == ["kept"]
    finally:
        engine.dispose()


def test_upgrade_refuses_an_older_store_with_what_it_lacks(database_url: str) -> None:
    _create_all_store(database_url)
    engine = make_engine(database_url)
    with engine.begin() as connection:  # as a store made before target runs could be retried
        connection.execute(sqlalchemy.text("ALTER TABLE target_run DROP COLUMN retry_of"))
    engine.dispose()
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 1, result.output
    assert "older fleetpipe (target_run lacks retry_of)" in result.output
    assert "Traceback" not in result.output


def test_upgrade_refuses_a_store_of_a_newer_fleetpipe(database_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    for argv in (["db", "upgrade"], ["tokens", "create", "--enterprise", "acme"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 1, result.output
        assert "revision 9999, which this fleetpipe does not know" in result.output
        assert "Traceback" not in result.output


def test_db_commands_say_where_the_store_is_and_current_makes_none(database_url: str) -> None:
    path = Path(database_url.removeprefix("sqlite:///"))
    runner = CliRunner()
    current = runner.invoke(app, ["db", "current"])
    assert current.exit_code == 1
    assert f"no store at {path}: the file does not exist" in current.stderr
    assert "run `fleetpipe db upgrade`" in current.stderr
    assert not path.exists()  # asking made nothing

    made = runner.invoke(app, ["db", "upgrade"])
    assert made.exit_code == 0, made.output
    assert f"making a new store at {database_url}" in made.stderr
    assert path.exists()
    again = runner.invoke(app, ["db", "upgrade"])
    assert f"using the store at {database_url}" in again.stderr
    current = runner.invoke(app, ["db", "current"])
    assert current.exit_code == 0
    assert f"using the store at {database_url}" in current.stderr


def test_the_store_is_named_without_its_password_and_an_unreachable_one_in_a_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEETPIPE_DATABASE_URL",
                       "postgresql://fleet:s3cret-pw@127.0.0.1:1/nothing?connect_timeout=1")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["db", "current"])
    finally:
        get_settings.cache_clear()
    assert "using the store at postgresql://fleet:***@127.0.0.1:1/nothing" in result.stderr
    assert result.exit_code == 1
    assert "fleetpipe: the store does not answer (connection failed" in result.stderr
    assert "Traceback" not in result.output
    assert "s3cret-pw" not in result.output
