"""Reading runs' numbered logs (StatusEvent) for their event streams.

A stream tails many runs with few queries: `new_event_ids` reads only ids and run ids past a
cursor (narrow, on the primary key) to see how far the log is complete; `events_of_runs` then
reads the entries of the runs someone follows, in one query for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Engine

from store.runs.tables import StatusEvent

_LOG: Table = StatusEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LogEntry:
    """One entry of a run's log: a status change, a command event or an operator action."""

    id: int
    pipeline_run_id: UUID
    kind: str  # pipeline_run, stage_run, target_run, command or action
    run_id: UUID
    from_status: str
    to_status: str
    reason: str
    at: datetime
    detail: dict[str, Any]


def _entry(row: Any) -> LogEntry:
    return LogEntry(id=int(row.id), pipeline_run_id=row.pipeline_run_id, kind=row.kind,
                    run_id=row.run_id, from_status=row.from_status, to_status=row.to_status,
                    reason=row.reason, at=row.at, detail=dict(row.detail or {}))


def last_event_id(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.max(_LOG.c.id))).scalar() or 0)


def new_event_ids(engine: Engine, after: int, limit: int) -> list[tuple[int, UUID]]:
    """(id, pipeline run id) of the entries past `after`, in id order, at most `limit`."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(_LOG.c.id, _LOG.c.pipeline_run_id).where(_LOG.c.id > after)
            .order_by(_LOG.c.id).limit(limit)).all()
    return [(int(i), run_id) for i, run_id in rows]


def events_of_runs(engine: Engine, run_ids: Sequence[UUID], after: int,
                   upto: int | None = None, limit: int | None = None) -> list[LogEntry]:
    """The entries of these runs with after < id <= upto (no upper bound: None), in order."""
    where = [_LOG.c.pipeline_run_id.in_(list(run_ids)), _LOG.c.id > after]
    if upto is not None:
        where.append(_LOG.c.id <= upto)
    stmt = select(_LOG).where(*where).order_by(_LOG.c.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    with engine.connect() as connection:
        return [_entry(row) for row in connection.execute(stmt).all()]
