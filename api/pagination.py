"""List pages in the envelope: `{count, next, previous, results}` with full next/previous URLs
on the path the client used (an alias stays an alias)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from api.deps import Paging
from api.envelope import respond
from api.middleware import original_path


def page_urls(request: Request, count: int, paging: Paging) -> tuple[str | None, str | None]:
    url = request.url.replace(path=original_path(request.scope))
    following = None
    if paging.offset + paging.limit < count:
        following = str(url.include_query_params(limit=paging.limit,
                                                 offset=paging.offset + paging.limit))
    preceding = None
    if paging.offset > 0:
        back = max(0, min(paging.offset - paging.limit, count - paging.limit))
        preceding = str(url.include_query_params(limit=paging.limit, offset=back))
    return following, preceding


def respond_page(request: Request, count: int, results: list[Any], paging: Paging) -> JSONResponse:
    """One page of a list in the envelope; `results` are already JSON-ready."""
    following, preceding = page_urls(request, count, paging)
    return respond({"count": count, "next": following, "previous": preceding,
                    "results": results})
