"""What routes receive, as `Annotated` dependencies: settings, the engine and a session, the
Temporal client, the caller's enterprise, and the list paging parameters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, TypeVar
from uuid import UUID

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.errors import ApiError
from api.key_cache import KeyCache
from settings import Settings
from store.db import transaction
from store.definitions.tenants import enterprise_for_hash, hash_key

T = TypeVar("T")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 20


class TemporalConnection:
    """The Temporal client, created once: given at startup, or connected on first use (so the
    definitions endpoints work while Temporal is still starting)."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = asyncio.Lock()

    async def get(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await Client.connect(
                        self._settings.temporal_address,
                        namespace=self._settings.temporal_namespace,
                    )
                except Exception as exc:  # the SDK raises plain RuntimeError on connect
                    raise ApiError(
                        503,
                        f"Temporal is not reachable at {self._settings.temporal_address}: "
                        "runs cannot be started or changed right now",
                    ) from exc
        return self._client


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """The request's unit of work: committed once the route returned, before the response is
    sent (the dependency's scope is the route function), rolled back if the route raised."""
    with transaction(engine) as session:
        yield session


def get_temporal(request: Request) -> TemporalConnection:
    """The connection, not yet the client: a request refused before it reaches Temporal
    (bad input, a finished run) never waits on a connection."""
    return request.app.state.temporal


_auth_header = APIKeyHeader(
    name="Authorization",
    auto_error=False,
    scheme_name="SCAPIAuthToken",
    description="`Token <api-key>` or `Bearer <api-key>` (`fleetpipe tokens create`).",
)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, field="Authorization", headers={"WWW-Authenticate": "Token"})


async def get_enterprise(
    request: Request,
    engine: Annotated[Engine, Depends(get_engine)],
    authorization: Annotated[str | None, Depends(_auth_header)],
) -> UUID:
    if not authorization:
        raise _unauthorized("missing Authorization header: send `Authorization: Token "
                            "<api-key>` or `Authorization: Bearer <api-key>`")
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not key.strip():
        raise _unauthorized("malformed Authorization header: use `Token <api-key>` or "
                            "`Bearer <api-key>`")
    cache: KeyCache = request.app.state.key_cache
    key_hash = hash_key(key.strip())
    enterprise_id = cache.get(key_hash)
    if enterprise_id is None:
        enterprise_id = await run_in_threadpool(enterprise_for_hash, engine, key_hash)
        if enterprise_id is None:
            raise _unauthorized("unknown API key")
        cache.put(key_hash, enterprise_id)
    return enterprise_id


@dataclass
class Paging:
    limit: int
    offset: int


def get_paging(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1 to 1000).")
                     ] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, description="How many objects to skip.")] = 0,
) -> Paging:
    return Paging(limit=limit, offset=offset)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
TemporalDep = Annotated[TemporalConnection, Depends(get_temporal)]
EnterpriseDep = Annotated[UUID, Depends(get_enterprise)]
PagingDep = Annotated[Paging, Depends(get_paging)]


def reader(engine: Engine, work: Callable[[Session], T]) -> Callable[[], T]:
    """A blocking function running store work in its own session (see `in_session`)."""

    def call() -> T:
        with Session(engine, expire_on_commit=False) as session:
            return work(session)

    return call


async def in_session(engine: Engine, work: Callable[[Session], T]) -> T:
    """Run store work in a worker thread with its own session, from an async route (one that
    also talks to Temporal), so the event loop never waits on the database."""
    return await asyncio.to_thread(reader(engine, work))
