"""The envelope every response body travels in: `{"code", "message", "content"}`.

`code` repeats the HTTP status; `message` says what happened in words; `content` is the object,
a list page `{"count", "next", "previous", "results"}`, or on an error the details (which field,
which values are allowed).
"""

from __future__ import annotations

from types import UnionType
from typing import Any, Generic, TypeVar, Union, get_origin

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

T = TypeVar("T")


def _type_name(param: Any) -> str:
    name = getattr(param, "__name__", None)
    args = getattr(param, "__args__", ())
    if name and not args:
        return name
    if get_origin(param) in (Union, UnionType):
        return "Or".join(_type_name(arg) for arg in args)
    return "".join(_type_name(arg) for arg in args) + "Array"


class Envelope(BaseModel, Generic[T]):
    """Every response: the HTTP status, a human message, and the content."""

    code: int = Field(description="The HTTP status code of the response, repeated.", examples=[200])
    message: str = Field(description="What happened, in words.", examples=["OK"])
    content: T

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        return f"{_type_name(params[0])}Envelope"


class ListContent(BaseModel, Generic[T]):
    """One page of a list (`limit` default 20, at most 1000; `offset` from 0)."""

    count: int = Field(description="How many objects match, over all pages.")
    next: str | None = Field(description="Link to the next page, or null on the last one: "
                             "on the public base URL when one is configured, else relative.")
    previous: str | None = Field(
        description="Link to the previous page, or null on the first one (as `next`)."
    )
    results: list[T]

    @classmethod
    def model_parametrized_name(cls, params: tuple[Any, ...]) -> str:
        return f"{_type_name(params[0])}List"


class ErrorDetail(BaseModel):
    field: str | None = Field(default=None, description="The input at fault, dotted for nesting.")
    message: str


class ErrorContent(BaseModel):
    errors: list[ErrorDetail] = Field(default_factory=list)
    allowed: list[str] | None = Field(
        default=None, description="The values the field accepts, when there is such a list."
    )


class ErrorEnvelope(BaseModel):
    """Every error: the HTTP status, what went wrong, and which input (if one is at fault)."""

    code: int = Field(examples=[400])
    message: str = Field(examples=["status: unknown pipeline_run status 'paused'; allowed: ..."])
    content: ErrorContent | None = None


MESSAGES = {
    200: "OK",
    201: "Created",
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    500: "Internal server error",
    503: "Service unavailable",
}


def envelope(content: Any, code: int = 200, message: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message or MESSAGES.get(code, ""), "content": content}


def error_response(
    code: int,
    message: str,
    *,
    field: str | None = None,
    errors: list[ErrorDetail] | None = None,
    allowed: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    details = errors if errors is not None else [ErrorDetail(field=field, message=message)]
    body = ErrorEnvelope(code=code, message=message,
                         content=ErrorContent(errors=details, allowed=allowed))
    return JSONResponse(body.model_dump(mode="json"), status_code=code, headers=headers)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries showing the error envelope for these statuses."""
    descriptions = {
        400: "Bad input: the message names the field and the allowed values",
        401: "Missing, unknown or revoked API key",
        404: "No such object in your enterprise",
        405: "Method not allowed on this path; the Allow header lists the allowed ones",
        413: "Request body over the size limit (FLEETPIPE_MAX_REQUEST_BYTES)",
        503: "Temporal cannot be reached; the request did nothing, or (a device event) was "
             "recorded and is passed to the run later",
    }
    return {
        code: {"model": ErrorEnvelope, "description": descriptions.get(code, MESSAGES[code])}
        for code in codes
    }


# What every route may answer besides its success: bad input, no key, no such object, a method
# the path does not serve, a body over the limit.
COMMON_ERRORS = (400, 401, 404, 405, 413)


def action_responses(model: Any) -> dict[int | str, dict[str, Any]]:
    """The extra answers of a route that asks a run to act: 202 with the state so far while the
    run still applies it, and 503 when Temporal cannot be reached."""
    return {
        202: {"model": model, "description": "Accepted: the run applies the action; the "
              "content is the state before it shows"},
        **error_responses(503),
    }


def respond(content: Any, code: int = 200, message: str | None = None) -> JSONResponse:
    """A success in the envelope; `content` is already JSON-ready (see api.present)."""
    return JSONResponse(envelope(content, code, message), status_code=code)
