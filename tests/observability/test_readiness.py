"""The API's /healthz and /readyz: unready (503, naming what) while the store or Temporal is
away, ready again when it returns. Real PostgreSQL behind a proxy we stop and restart, and real
Temporal dev servers, one started only after the API asked."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from settings import Settings
from store.db import make_engine
from store.migrations import upgrade
from tests.conftest import POSTGRES_URL, venv_binary
from tests.observability.tcp_proxy import TcpProxy
from workflows.converter import DATA_CONVERTER


@asynccontextmanager
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        yield client


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict]:
    response = await client.get("/readyz")
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def via_proxy(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


async def test_healthz_answers_without_any_dependency() -> None:
    # Nothing listens at this Temporal address and the store URL cannot be opened: alive anyway.
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/none",
                        temporal_address=f"127.0.0.1:{free_port()}")
    app = create_app(settings, engine=make_engine(settings.database_url))
    async with http(app) as client:
        response = await client.get("/healthz")
        assert response.status_code == 200 and response.json() == {"status": "alive"}
        assert "x-request-id" in response.headers
        assert (await client.get("/readyz/")).status_code == 503  # aliases: trailing slash too
        spec = (await client.get("/openapi.json")).json()
        assert not {"/healthz", "/readyz", "/metrics"} & set(spec["paths"])


async def test_readyz_follows_the_store_away_and_back(temporal_client: Client,
                                                     postgres_engine: Engine) -> None:
    with postgres_engine.connect() as conn:  # the test's own migrated schema
        schema = conn.execute(text("SELECT current_schema()")).scalar()
    proxy = TcpProxy(urlsplit(POSTGRES_URL).hostname or "127.0.0.1",
                     urlsplit(POSTGRES_URL).port or 5432)
    await proxy.start()
    engine: Engine = make_engine(via_proxy(POSTGRES_URL, proxy.port), connect_args={
        "connect_timeout": 2, "options": f"-csearch_path={schema}"})
    app = create_app(Settings(), engine=engine, temporal_client=temporal_client)
    try:
        async with http(app) as client:
            code, body = await readiness(client)
            assert code == 200, body
            assert body == {"status": "ready", "not_ready": [],
                            "checks": {"store": "ok", "migrations": "ok", "temporal": "ok"}}

            await proxy.stop()
            code, body = await readiness(client)
            assert code == 503
            assert body["status"] == "not ready"
            assert body["not_ready"] == ["store", "migrations"]  # cannot tell without a store
            assert body["checks"]["temporal"] == "ok"
            assert body["checks"]["store"].startswith("OperationalError"), body

            await proxy.start()  # the same port: the database is back
            code, body = await readiness(client)
            assert code == 200, body
    finally:
        engine.dispose()


async def test_readyz_follows_temporal_away_and_back(sqlite_engine: Engine) -> None:
    port = free_port()
    engine = sqlite_engine
    # No client given: the API connects on first need, as the served API does.
    app = create_app(Settings(temporal_address=f"127.0.0.1:{port}"), engine=engine)
    async with http(app) as client:
        code, body = await readiness(client)
        assert code == 503 and body["not_ready"] == ["temporal"], body
        assert body["checks"]["store"] == "ok"

        for _ in range(2):  # started after the API asked; stopped; started again
            env = await start_dev_server(port)
            try:
                code, body = await readiness(client)
                assert code == 200, body
            finally:
                await env.shutdown()
            code, body = await readiness(client)
            assert code == 503 and body["not_ready"] == ["temporal"], body


async def test_readyz_waits_for_the_migrations(temporal_client: Client,
                                               blank_sqlite_engine: Engine) -> None:
    app = create_app(Settings(), engine=blank_sqlite_engine, temporal_client=temporal_client)
    async with http(app) as client:
        code, body = await readiness(client)
        assert code == 503 and body["not_ready"] == ["migrations"], body
        assert "fleetpipe db upgrade" in body["checks"]["migrations"]
        upgrade(blank_sqlite_engine)
        code, body = await readiness(client)
        assert code == 200, body


async def start_dev_server(port: int) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"), port=port,
        data_converter=DATA_CONVERTER, dev_server_startup_timeout=timedelta(seconds=60))
