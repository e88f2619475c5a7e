"""What routes receive, as `Annotated` dependencies: a database session, the run-control
service, the caller's enterprise, and the list paging parameters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from control.codec import PayloadCodecService
from control.service import RunControl
from domain.bounds import MAX_OFFSET
from store.db import transaction
from store.definitions.tenants import Caller, caller_for_hash, hash_key

MAX_LIMIT = 1000
DEFAULT_LIMIT = 20


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """The request's unit of work: committed once the route returned, before the response is
    sent (the dependency's scope is the route function), rolled back if the route raised."""
    with transaction(engine) as session:
        yield session


def get_control(request: Request) -> RunControl:
    """The run-control service, built once with the app. It connects to Temporal only when an
    action gets past its pre-checks: a request refused earlier never waits on a connection."""
    return request.app.state.control


def get_codec(request: Request) -> PayloadCodecService:
    return request.app.state.codec


_auth_header = APIKeyHeader(
    name="Authorization",
    auto_error=False,
    scheme_name="SCAPIAuthToken",
    description="`Token <api-key>` or `Bearer <api-key>` (`fleetpipe tokens create`).",
)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, field="Authorization", headers={"WWW-Authenticate": "Token"})


async def get_caller(
    engine: Annotated[Engine, Depends(get_engine)],
    authorization: Annotated[str | None, Depends(_auth_header)],
) -> Caller:
    """The enterprise and API key of the request (401 without a live key)."""
    if not authorization:
        raise _unauthorized("missing Authorization header: send `Authorization: Token "
                            "<api-key>` or `Authorization: Bearer <api-key>`")
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not key.strip():
        raise _unauthorized("malformed Authorization header: use `Token <api-key>` or "
                            "`Bearer <api-key>`")
    # Checked in the store on every request, never from a per-process cache: a key revoked
    # with `fleetpipe tokens revoke` is refused by every API process from the next request.
    caller = await run_in_threadpool(caller_for_hash, engine, hash_key(key.strip()))
    if caller is None:
        raise _unauthorized("unknown or revoked API key")
    return caller


async def get_enterprise(caller: Annotated[Caller, Depends(get_caller)]) -> UUID:
    return caller.enterprise_id


@dataclass
class Paging:
    limit: int
    offset: int


def get_paging(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1 to 1000).")
                     ] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET,
                                 description="How many objects to skip.")] = 0,
) -> Paging:
    return Paging(limit=limit, offset=offset)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ControlDep = Annotated[RunControl, Depends(get_control)]
CodecDep = Annotated[PayloadCodecService, Depends(get_codec)]
CallerDep = Annotated[Caller, Depends(get_caller)]
EnterpriseDep = Annotated[UUID, Depends(get_enterprise)]
PagingDep = Annotated[Paging, Depends(get_paging)]

