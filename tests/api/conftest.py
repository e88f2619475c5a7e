"""HTTP tests against the real app (httpx over ASGI), a real database, and, for runs, the real
Temporal dev server with a real worker and the simulated fleet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy.engine import Engine
from temporalio.client import Client

from api.app import create_app
from settings import Settings
from store.definitions.tenants import create_token, ensure_enterprise

BASE = "/api/pipelines/v0"
# Only against a hang: no test asserts how fast a request answers (bench/api_poll.py reports it).
HANG_GUARD = 60.0


class GuardedClient(httpx.AsyncClient):
    """An httpx client whose requests fail the test only if they hang (HANG_GUARD)."""

    async def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> httpx.Response:
        async with asyncio.timeout(HANG_GUARD):
            return await super().request(method, url, *args, **kwargs)


@dataclass
class Api:
    http: GuardedClient
    engine: Engine
    enterprise_id: UUID
    key: str
    make_client: Callable[..., GuardedClient]

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(BASE + path, **kwargs)

    async def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return await self.http.post(BASE + path, json=json, **kwargs)

    async def put(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return await self.http.put(BASE + path, json=json, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.delete(BASE + path, **kwargs)

    async def ok(self, method: str, path: str, json: Any = None, code: int = 200) -> Any:
        """The content of a successful call (asserting its envelope)."""
        response = await self.http.request(method, BASE + path, json=json)
        body = response.json()
        assert response.status_code == code, body
        assert body["code"] == code and isinstance(body["message"], str)
        return body["content"]


def settings_for(engine_url: str = "sqlite://", **overrides: Any) -> Settings:
    return Settings(database_url=engine_url, **overrides)


@asynccontextmanager
async def api_for(engine: Engine, *, enterprise: str = "acme",
                  temporal_client: Client | None = None,
                  settings: Settings | None = None) -> AsyncIterator[Api]:
    ent = ensure_enterprise(engine, enterprise)
    key = create_token(engine, ent.id, "tests")
    app = create_app(settings or settings_for(), engine=engine, temporal_client=temporal_client)

    def make_client(token: str | None = key, scheme: str = "Token") -> GuardedClient:
        headers = {"Authorization": f"{scheme} {token}"} if token else {}
        return GuardedClient(transport=httpx.ASGITransport(app=app),
                           base_url="http://testserver", headers=headers)

    async with make_client() as http:
        yield Api(http=http, engine=engine, enterprise_id=ent.id, key=key,
                  make_client=make_client)


@pytest.fixture
async def api(sqlite_engine: Engine) -> AsyncIterator[Api]:
    async with api_for(sqlite_engine) as value:
        yield value


@pytest.fixture
async def other_api(sqlite_engine: Engine) -> AsyncIterator[Api]:
    """A second enterprise on the same database."""
    async with api_for(sqlite_engine, enterprise="globex") as value:
        yield value


@pytest.fixture
async def any_api(engine: Engine) -> AsyncIterator[Api]:
    """The API on SQLite and on PostgreSQL (tests that reach the store's limits)."""
    async with api_for(engine) as value:
        yield value
