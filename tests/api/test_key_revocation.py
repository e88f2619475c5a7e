"""A key revoked with `fleetpipe tokens revoke` is refused at once by every API process: two
API apps, each with its own engine (as two processes have), on one store, SQLite and
PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as cli
from settings import get_settings
from store.db import make_engine
from tests.api.conftest import BASE, GuardedClient, settings_for
from tests.conftest import POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A store's URL, as the CLI reads it from FLEETPIPE_DATABASE_URL: an SQLite file, or a
    fresh PostgreSQL schema named in the URL's search path."""
    if request.param == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'fleetpipe.db'}", None
    else:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = make_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
        url, drop = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", schema
    monkeypatch.setenv("FLEETPIPE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
    if drop:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{drop}" CASCADE'))
        admin.dispose()


def _run(*argv: str) -> str:
    result = CliRunner().invoke(cli, list(argv))
    assert result.exit_code == 0, result.output
    return result.stdout


async def test_a_revoked_key_is_refused_by_every_api_process_at_once(store_url: str) -> None:
    _run("db", "upgrade")
    key = _run("tokens", "create", "--enterprise", "acme", "--name", "to-revoke").strip()
    kept = _run("tokens", "create", "--enterprise", "acme", "--name", "kept").strip()
    engines = [make_engine(store_url), make_engine(store_url)]
    apps = [create_app(settings_for(store_url), engine=engine) for engine in engines]
    clients = [GuardedClient(transport=httpx.ASGITransport(app=app),
                             base_url="http://testserver") for app in apps]
    try:
        def auth(token: str) -> dict[str, str]:
            return {"Authorization": f"Token {token}"}

        for client in clients:
            for _ in range(2):  # used, so any per-process memory of it would now hold it
                response = await client.get(f"{BASE}/devices", headers=auth(key))
                assert response.status_code == 200, response.text

        listed = _run("tokens", "list", "--enterprise", "acme").splitlines()[1:]
        (token_id,) = [line.split()[0] for line in listed if line.split()[1] == "to-revoke"]
        assert "revoked token" in _run("tokens", "revoke", token_id)

        for client in clients:
            refused = await client.get(f"{BASE}/devices", headers=auth(key))
            assert refused.status_code == 401, refused.text
            assert refused.json()["message"] == "unknown or revoked API key"
            assert refused.headers["www-authenticate"] == "Token"
            still = await client.get(f"{BASE}/devices", headers=auth(kept))
            assert still.status_code == 200, still.text
    finally:
        for client in clients:
            await client.aclose()
        for engine in engines:
            engine.dispose()
