"""Plain ASGI middleware: path aliases and trailing slashes, the body size limit, and a last
resort that turns any unexpected exception into a 500 envelope without a stack trace."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.surfaces import Failure, envelope_of, renderer_for

log = logging.getLogger("fleetpipe.api")

CANONICAL_BASE = "/api/pipelines/v0"
# The served documents write paths relative to /api (`/pipelines/v0/...`) and to /api/pipelines
# (`/v0/...`); both are served as aliases of the canonical base (docs/api.md).
ALIASES = ("/pipelines/v0", "/v0")
ORIGINAL_PATH = "fleetpipe.original_path"


def canonical_path(path: str) -> str:
    """The path a request is routed by: aliases mapped onto the canonical base, and no trailing
    slash (so `/v0/runs/` and `/api/pipelines/v0/runs` reach the same route without a redirect)."""
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    if path == CANONICAL_BASE or path.startswith(CANONICAL_BASE + "/"):
        return path
    for alias in ALIASES:
        if path == alias or path.startswith(alias + "/"):
            return CANONICAL_BASE + path[len(alias):]
    return path


def _envelope_bytes(code: int, message: str) -> bytes:
    return json.dumps({"code": code, "message": message,
                       "content": {"errors": [{"field": None, "message": message}],
                                   "allowed": None}}).encode()


async def _send_envelope(send: Send, code: int, message: str, scope: Scope | None = None,
                         receive: Receive | None = None) -> None:
    """An error answered before any route: in the envelope, or in the shape of the surface the
    path is under (api.surfaces)."""
    if scope is not None and receive is not None:
        render = renderer_for(scope)
        if render is not envelope_of:
            await render(Failure(code, message))(scope, receive, send)
            return
    body = _envelope_bytes(code, message)
    await send({"type": "http.response.start", "status": code,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class PathAliasMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            original = scope["path"]
            path = canonical_path(original)
            if path != original:
                scope = dict(scope)
                scope[ORIGINAL_PATH] = original
                scope["path"] = path
                scope["raw_path"] = path.encode()
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 in the envelope for a body over `max_bytes`, whether announced or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body over the limit of {self.max_bytes} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    await _send_envelope(send, 400, "malformed Content-Length header", scope,
                                         receive)
                    return
                if announced > self.max_bytes:
                    await _send_envelope(send, 413, too_large, scope, receive)
                    return
        # Read the body up front (it is bounded), then replay it to the app.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _send_envelope(send, 413, too_large, scope, receive)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replaying(b"".join(chunks), receive), send)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app a body already read, then the client's own messages."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class CatchAllMiddleware:
    """Anything no handler mapped: log it whole, answer a generic 500 envelope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _send_envelope(send, 500, "internal server error; the details are in "
                                     "the server log", scope, receive)


def original_path(scope: Mapping[str, Any]) -> str:
    return scope.get(ORIGINAL_PATH, scope["path"])
