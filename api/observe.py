"""Every request observed: its request id (the caller's `X-Request-ID`, or a new one, echoed
in the response), one log line, and the metrics by route template. Outermost middleware, so
even a 413 or a 500 envelope is counted and carries the id."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.middleware import canonical_path
from observability.logs import log_fields
from observability.metrics import API_LATENCY, API_REQUESTS

log = logging.getLogger("fleetpipe.api.requests")

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
UNMATCHED = "unmatched"  # the route label of a path no route serves (bounded: never the path)
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            given = value.decode("latin-1")
            if _REQUEST_ID.match(given):
                return given
    return uuid.uuid4().hex


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The template of the route serving this request (`/api/pipelines/v0/runs/{run_id}`)."""
    routed = dict(scope, path=canonical_path(scope["path"]))
    partial = None
    for route in routes:
        match, _ = route.matches(routed)
        if match == Match.FULL:
            return str(getattr(route, "path", UNMATCHED))
        if match == Match.PARTIAL and partial is None:  # right path, other method
            partial = str(getattr(route, "path", UNMATCHED))
    return partial or UNMATCHED


class RequestObservability:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        status = 500  # unless a response starts
        started = time.perf_counter()

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with log_fields(request_id=request_id):
            try:
                await self.app(scope, receive, observed_send)
            finally:
                took = time.perf_counter() - started
                method = scope.get("method", "") if scope.get("method") in _METHODS else "other"
                route = route_template(self.routes, scope)
                API_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
                API_LATENCY.labels(method=method, route=route).observe(took)
                log.info("%s %s %d %.1f ms", method, scope["path"], status, took * 1000,
                         extra={"route": route, "status": status,
                                "duration_ms": round(took * 1000, 1)})
