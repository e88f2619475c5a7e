"""The store answers: the cheapest round trip a readiness check can make."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine


def ping(engine: Engine) -> None:
    """Raises (sqlalchemy's OperationalError, mostly) unless the database answers a query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
