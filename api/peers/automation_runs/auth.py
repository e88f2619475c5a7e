"""The document's three ways to send a key: `Authorization: Bearer|Token <key>`, the
`X-API-Key` header, or the `vai_token` cookie, tried in that order (a key that is given and
refused is a 401; it does not fall through to the next)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Cookie, Depends, Header
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from api.deps import get_engine
from api.errors import ApiError
from store.definitions.tenants import Caller, caller_for_hash, hash_key


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": "Bearer"})


def _key(authorization: str | None, api_key: str | None, cookie: str | None) -> str:
    if authorization:
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() not in ("bearer", "token") or not key.strip():
            raise _unauthorized("malformed Authorization header: use `Bearer <key>` or "
                                "`Token <key>`")
        return key.strip()
    if api_key and api_key.strip():
        return api_key.strip()
    if cookie and cookie.strip():
        return cookie.strip()
    raise _unauthorized("not authenticated: send `Authorization: Bearer <key>`, `X-API-Key: "
                        "<key>` or the cookie `vai_token`")


async def peer_caller(
    engine: Annotated[Engine, Depends(get_engine)],
    authorization: Annotated[str | None, Header(description="`Bearer <key>` or "
                                                "`Token <key>`")] = None,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
    vai_token: Annotated[str | None, Cookie()] = None,
) -> Caller:
    key = _key(authorization, x_api_key, vai_token)
    caller = await run_in_threadpool(caller_for_hash, engine, hash_key(key))
    if caller is None:
        raise _unauthorized("unknown or revoked API key")
    return caller


PeerCallerDep = Annotated[Caller, Depends(peer_caller)]
