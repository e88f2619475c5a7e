"""List pages in the envelope: `{count, next, previous, results}`. The next/previous links keep
the path the client used (an alias stays an alias) and its query; they start with the configured
public base URL (FLEETPIPE_PUBLIC_BASE_URL), or are relative without one: a link is never built
from the request's Host header, which the client chooses."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.datastructures import URL

from api.deps import Paging
from api.envelope import respond
from api.middleware import original_path


def _this_page(request: Request) -> URL:
    query = request.scope.get("query_string", b"").decode("latin-1")
    return URL(original_path(request.scope) + (f"?{query}" if query else ""))


def page_urls(request: Request, count: int, paging: Paging) -> tuple[str | None, str | None]:
    base: str = request.app.state.settings.public_base_url
    url = _this_page(request)
    following = None
    if paging.offset + paging.limit < count:
        following = base + str(url.include_query_params(limit=paging.limit,
                                                        offset=paging.offset + paging.limit))
    preceding = None
    if paging.offset > 0:
        back = max(0, min(paging.offset - paging.limit, count - paging.limit))
        preceding = base + str(url.include_query_params(limit=paging.limit, offset=back))
    return following, preceding


def respond_page(request: Request, count: int, results: list[Any], paging: Paging) -> JSONResponse:
    """One page of a list in the envelope; `results` are already JSON-ready."""
    following, preceding = page_urls(request, count, paging)
    return respond({"count": count, "next": following, "previous": preceding,
                    "results": results})
