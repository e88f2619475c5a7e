"""Error shapes per surface. The API answers errors in the Esper envelope, except under the
prefixes of the peer documents it serves as written (api.peers), which answer in their own
document's shape. Every error path (the exception handlers and the middleware that answers
before any route) describes the failure once, as a Failure, and the surface renders it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import Scope

from api.envelope import ErrorDetail, error_response


@dataclass
class Failure:
    code: int
    message: str
    field: str | None = None
    allowed: list[str] | None = None
    headers: dict[str, str] | None = None
    details: list[ErrorDetail] | None = None  # the envelope's per-field errors
    validation: list[dict[str, Any]] | None = None  # the request's validation errors, raw
    location: str = "body"  # where `field` is: body, query, path or header


Renderer = Callable[[Failure], Response]


def register_surface(app: FastAPI, prefix: str, render: Renderer) -> None:
    surfaces: list[tuple[str, Renderer]] = getattr(app.state, "error_surfaces", [])
    app.state.error_surfaces = [*surfaces, (prefix, render)]


def envelope_of(failure: Failure) -> Response:
    return error_response(failure.code, failure.message, field=failure.field,
                          errors=failure.details, allowed=failure.allowed,
                          headers=failure.headers)


def renderer_for(scope: Scope) -> Renderer:
    """The renderer of the surface the request's path is under (the envelope by default)."""
    app = scope.get("app")
    path = scope.get("path", "")
    state = getattr(app, "state", None)
    for prefix, render in getattr(state, "error_surfaces", []):
        if path == prefix or path.startswith(prefix + "/"):
            return render
    return envelope_of


def failure_response(scope: Scope, failure: Failure) -> Response:
    return renderer_for(scope)(failure)
