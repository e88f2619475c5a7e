"""Input no store or workflow can take, refused before any route sees it: a 400 in the envelope
naming the field, whichever field it is in.

- a NUL character in a query parameter (PostgreSQL cannot compare text holding one);
- in a JSON body: a NUL in any key or string, NaN or Infinity (which Python's JSON reader
  accepts), or nesting past MAX_BODY_DEPTH (deeper bodies fail the JSON reader itself).

The shapes then check each field's own bounds (domain.bounds) as they parse it.
"""

from __future__ import annotations

import json
from email.message import Message as MimeMessage
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from api.middleware import replaying
from api.surfaces import Failure, failure_response
from domain.bounds import MAX_BODY_DEPTH, UnsafeValue, check_json


def _query_fault(query_string: bytes) -> UnsafeValue | None:
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if "\x00" in key or "\x00" in value:
            name = key.replace("\x00", "\\u0000")
            return UnsafeValue(name, f"{name}: a query parameter holds a NUL character")
    return None


def _is_json(scope: Scope) -> bool:
    """The bodies FastAPI reads as JSON: no Content-Type (the app is not strict about it), or
    application/json and application/*+json."""
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            mime = MimeMessage()
            mime["content-type"] = value.decode("latin-1")
            subtype = mime.get_content_subtype()
            return mime.get_content_maintype() == "application" and (
                subtype == "json" or subtype.endswith("+json"))
    return True


def _body_fault(body: bytes) -> UnsafeValue | None:
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError:
        return None  # the route answers it: a 400 saying where the JSON breaks
    except RecursionError:
        return UnsafeValue("body", f"body: nested deeper than {MAX_BODY_DEPTH} levels")
    except ValueError as exc:  # not UTF-8, or an integer of thousands of digits
        return UnsafeValue("body", f"malformed JSON: {exc}")
    try:
        check_json(parsed, "", MAX_BODY_DEPTH)
    except UnsafeValue as exc:
        return exc
    return None


class InputGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fault = _query_fault(scope.get("query_string", b""))
        if fault is not None:
            await failure_response(scope, Failure(400, str(fault), field=fault.field,
                                                  location="query"))(scope, receive, send)
            return
        # The body is already bounded in size (BodyLimitMiddleware): read it whole, check it,
        # then hand it on.
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and _is_json(scope):
            fault = _body_fault(body)
            if fault is not None:
                await failure_response(scope, Failure(400, str(fault), field=fault.field))(
                    scope, receive, send)
                return
        await self.app(scope, replaying(body, receive), send)
