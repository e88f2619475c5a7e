"""Every failure becomes an envelope: one handler per kind of error, none reading messages.

Store and domain errors carry the field at fault as an attribute, so mapping them is a lookup.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path

from api.envelope import MESSAGES, ErrorDetail
from api.middleware import original_path
from api.surfaces import Failure, failure_response
from control.errors import ActionConflicts, ActionRefused, CodecRefused, Missing, RunsUnavailable
from domain.inputs import InvalidInput
from domain.operations import InvalidOperation
from store.definitions.fields import InvalidDefinition
from store.paging import InvalidQuery
from store.runs.reads import RunNotTerminal
from store.tenancy import NotFound

log = logging.getLogger("fleetpipe.api")


class ApiError(Exception):
    """An answer other than success, decided by the API itself (a refused action, a conflict)."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        field: str | None = None,
        allowed: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.allowed = allowed
        self.headers = headers


def _field(loc: tuple[Any, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header") and len(parts) > 1:
        parts = parts[1:]
    return ".".join(str(part) for part in parts)


def _validation_message(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        detail = (error.get("ctx") or {}).get("error", "")
        return f"malformed JSON: {detail}".rstrip(": ")
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "model_attributes_type" and isinstance(error.get("input"), bytes):
        message += " (send a JSON object with Content-Type: application/json)"
    return message


def _answer(request: Request, failure: Failure) -> Response:
    return failure_response(request.scope, failure)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    details = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        field = "body" if error.get("type") == "json_invalid" else _field(loc)
        details.append(ErrorDetail(field=field or None, message=_validation_message(error)))
    summary = "; ".join(f"{d.field}: {d.message}" if d.field else d.message for d in details[:5])
    if len(details) > 5:
        summary += f"; and {len(details) - 5} more"
    return _answer(request, Failure(400, summary or MESSAGES[400], details=details,
                                    validation=list(exc.errors())))


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    path = original_path(request.scope)
    if exc.status_code == 404:
        message = f"no such path: {request.method} {path}"
    elif exc.status_code == 405:
        allowed = _methods_of_path(request)
        message = (f"method {request.method} is not allowed on {path}; allowed: "
                   f"{', '.join(allowed)}")
        return _answer(request, Failure(405, message, allowed=allowed,
                                        headers={"Allow": ", ".join(allowed)}))
    elif isinstance(exc.detail, str) and exc.detail:
        message = exc.detail
    else:
        message = MESSAGES.get(exc.status_code, "error")
    return _answer(request, Failure(exc.status_code, message,
                                    headers=getattr(exc, "headers", None)))


def _methods_of_path(request: Request) -> list[str]:
    """Every method the API serves on this path, from its OpenAPI paths (each route holds one
    method, so the route that refused the request knows only its own)."""
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(
        request.app.state, "methods_by_path", None)
    if table is None:
        table = []
        for template, operations in request.app.openapi()["paths"].items():
            methods = {method.upper() for method in operations}
            if "GET" in methods:
                methods.add("HEAD")
            table.append((compile_path(template)[0], methods))
        request.app.state.methods_by_path = table
    path = request.scope["path"]
    return sorted({method for pattern, methods in table if pattern.match(path)
                   for method in methods})


async def _api_error(request: Request, exc: ApiError) -> Response:
    return _answer(request, Failure(exc.code, exc.message, field=exc.field, allowed=exc.allowed,
                                    headers=exc.headers))


async def _not_found(request: Request, exc: NotFound) -> Response:
    return _answer(request, Failure(404, str(exc)))


async def _bad_field(request: Request, exc: InvalidDefinition | InvalidQuery | InvalidOperation
                     | InvalidInput) -> Response:
    return _answer(request, Failure(400, str(exc), field=exc.field))


async def _action_refused(request: Request, exc: ActionRefused) -> Response:
    # Refused for the run's state (a retry of a run still going): a conflict, not bad input.
    code = 409 if isinstance(exc, ActionConflicts) else 400
    return _answer(request, Failure(code, str(exc), field=exc.field, allowed=exc.allowed))


async def _missing(request: Request, exc: Missing) -> Response:
    return _answer(request, Failure(404, str(exc)))


async def _runs_unavailable(request: Request, exc: RunsUnavailable) -> Response:
    return _answer(request, Failure(503, str(exc)))


async def _codec_refused(request: Request, exc: CodecRefused) -> Response:
    return _answer(request, Failure(exc.status, exc.message))


async def _not_terminal(request: Request, exc: RunNotTerminal) -> Response:
    return _answer(request, Failure(400, str(exc), field="status"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(NotFound, _not_found)  # type: ignore[arg-type]
    for kind in (InvalidDefinition, InvalidQuery, InvalidOperation, InvalidInput):
        app.add_exception_handler(kind, _bad_field)  # type: ignore[arg-type]
    app.add_exception_handler(RunNotTerminal, _not_terminal)  # type: ignore[arg-type]
    app.add_exception_handler(ActionRefused, _action_refused)  # type: ignore[arg-type]
    app.add_exception_handler(Missing, _missing)  # type: ignore[arg-type]
    app.add_exception_handler(RunsUnavailable, _runs_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(CodecRefused, _codec_refused)  # type: ignore[arg-type]
