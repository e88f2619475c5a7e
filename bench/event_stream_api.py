"""The API as `uvicorn api.app:app` serves it, plus a count of the SQL statements it sends to
the database and a route to read it (`GET /bench/queries`): for bench/event_stream.py only."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from api.app import app

_statements = itertools.count()
_seen = [0]


@event.listens_for(Engine, "before_cursor_execute")
def _count(*_args: Any) -> None:
    _seen[0] = next(_statements) + 1


@app.get("/bench/queries", include_in_schema=False)
def bench_queries() -> dict[str, int]:
    """How many statements every engine of this process has sent so far."""
    return {"statements": _seen[0]}


__all__ = ["app"]
