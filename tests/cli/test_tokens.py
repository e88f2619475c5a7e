"""`fleetpipe tokens create` prints a key that the API's authentication accepts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from settings import get_settings
from store.db import make_engine
from store.definitions.tenants import ensure_enterprise, enterprise_for_key


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'fleetpipe.db'}"
    monkeypatch.setenv("FLEETPIPE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_tokens_create_prints_a_key_the_store_accepts(database_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    first = runner.invoke(app, ["tokens", "create", "--enterprise", "acme"])
    second = runner.invoke(app, ["tokens", "create", "--enterprise", "acme", "--name", "ci"])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    key, other_key = first.stdout.strip(), second.stdout.strip()
    assert key != other_key

    engine = make_engine(database_url)
    try:
        acme = ensure_enterprise(engine, "acme")  # created by the command, found here
        assert enterprise_for_key(engine, key) == acme.id
        assert enterprise_for_key(engine, other_key) == acme.id
        assert enterprise_for_key(engine, key + "x") is None
    finally:
        engine.dispose()


def test_tokens_create_needs_an_enterprise(database_url: str) -> None:
    result = CliRunner().invoke(app, ["tokens", "create"])
    assert result.exit_code != 0


def test_tokens_create_refuses_a_store_not_at_head_naming_the_command(database_url: str) -> None:
    result = CliRunner().invoke(app, ["tokens", "create", "--enterprise", "acme"])
    assert result.exit_code == 1, result.output
    assert "has no tables yet. Run `fleetpipe db upgrade`" in result.output
    assert "Traceback" not in result.output
