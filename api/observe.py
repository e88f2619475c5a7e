"""Every request observed: its request id (the caller's `X-Request-ID`, or a new one, echoed
in the response), one log line, and the metrics by route template. Outermost middleware, so
even a 413 or a 500 envelope is counted and carries the id."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability.logs import log_fields
from observability.metrics import API_LATENCY, API_REQUESTS

log = logging.getLogger("fleetpipe.api.requests")

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
ROUTE_SLOT = "fleetpipe.route"
UNMATCHED = "unmatched"  # the route label of a path no route serves (bounded: never the path)
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            given = value.decode("latin-1")
            if _REQUEST_ID.match(given):
                return given
    return uuid.uuid4().hex


def route_template(path: str, path_params: Mapping[str, Any]) -> str:
    """The matched path with each parameter's value put back as its name:
    `/api/pipelines/v0/pipelines/{pipeline_id}/runs`."""
    names = {str(value): name for name, value in path_params.items()}
    return "/".join(f"{{{names[part]}}}" if part in names else part for part in path.split("/"))


class RouteCapture:
    """Innermost: once the router has matched, leave the route's template where the outer
    middleware finds it (the path aliases hand the inner layers a copied scope)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            slot = scope.get(ROUTE_SLOT)
            if slot is not None and scope.get("route") is not None:
                slot["route"] = route_template(scope["path"], scope.get("path_params", {}))


class RequestObservability:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        slot: dict[str, str] = {}
        scope = {**scope, ROUTE_SLOT: slot}
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
                route = slot.get("route", UNMATCHED)
                API_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
                API_LATENCY.labels(method=method, route=route).observe(took)
                log.info("%s %s %d %.1f ms", method, scope["path"], status, took * 1000,
                         extra={"route": route, "status": status,
                                "duration_ms": round(took * 1000, 1)})
