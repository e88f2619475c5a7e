"""The document's error shape: 422 `{"detail": [{"loc", "msg", "type"}]}` for bad input, and
`{"detail": "..."}` for the rest (401, 404, 409, ...)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.responses import Response

from api.surfaces import Failure

# Our fields as the document names them.
_DOCUMENT_NAMES = {"step_key": "stepKey"}


class AutomationRunsValidationItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class AutomationRunsValidationError(BaseModel):
    detail: list[AutomationRunsValidationItem]


class AutomationRunsError(BaseModel):
    detail: str


def _item(error: dict[str, Any]) -> dict[str, Any]:
    loc = [_DOCUMENT_NAMES.get(str(part), part) for part in error.get("loc", ())]
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return {"loc": loc, "msg": message, "type": str(error.get("type", "value_error"))}


def render(failure: Failure) -> Response:
    if failure.validation is not None:
        return JSONResponse({"detail": [_item(e) for e in failure.validation]}, 422)
    if failure.code == 400:  # bad input found past parsing (a refused field): a 422 as well
        field = _DOCUMENT_NAMES.get(failure.field or "", failure.field)
        loc: list[str] = [failure.location] + ([field] if field else [])
        return JSONResponse({"detail": [{"loc": loc, "msg": failure.message,
                                         "type": "value_error"}]}, 422)
    return JSONResponse({"detail": failure.message}, failure.code, headers=failure.headers)


RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": AutomationRunsError, "description": "Missing, unknown or revoked API key"},
    404: {"model": AutomationRunsError, "description": "No such run in your tenant"},
    405: {"model": AutomationRunsError, "description": "Method not allowed on this path"},
    413: {"model": AutomationRunsError, "description": "Request body over the size limit"},
    422: {"model": AutomationRunsValidationError, "description": "Validation error"},
}
ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"model": AutomationRunsError, "description": "The run's state refuses it"},
    503: {"model": AutomationRunsError,
          "description": "Temporal cannot be reached; nothing was done"},
}
