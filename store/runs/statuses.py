"""Status changes of run rows, made on behalf of the workflow that owns each row.

A status only ever moves forward (domain.statuses), through every step between, each step
kept as a numbered StatusEvent; a move that is not allowed changes nothing, so an activity
retried or replayed after a crash writes nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from domain.records import StatusChange
from domain.statuses import (
    PipelineRunStatus,
    RunKind,
    StageRunStatus,
    is_terminal,
    transition_path,
)
from store.db import transaction
from store.runs.tables import PipelineRun, StageRun, StatusEvent, TargetRun

_ROW_TYPES: dict[RunKind, Any] = {
    RunKind.PIPELINE: PipelineRun,
    RunKind.STAGE: StageRun,
    RunKind.TARGET: TargetRun,
}
_STATUS_EVENTS = StatusEvent.__table__  # type: ignore[attr-defined]


def _starts(kind: RunKind, current: str, new: str) -> bool:
    """A run starts when it leaves pending; a pipeline run queued behind its concurrency key
    has not started yet: it starts when it leaves queued for processing (cancelled while
    queued, it never started)."""
    if kind == RunKind.PIPELINE:
        if current == PipelineRunStatus.QUEUED:
            return not is_terminal(kind, new)
        return current == PipelineRunStatus.PENDING and new != PipelineRunStatus.QUEUED
    return current == "pending"


def apply_status(session: Session, change: StatusChange) -> str:
    """Move one run row forward to `change.status` (through any steps between); returns the
    row's status afterwards. A move that is not allowed (backwards, or out of a terminal
    status) changes nothing, which is what makes retries and replays harmless.

    Core statements, not ORM objects: every target run passes here four or five times, and
    loading and flushing instances was most of the cost (bench/fanout.py). A row already
    loaded as an object in the same session is not refreshed; no caller reads it afterwards.
    """
    kind = RunKind(change.kind)
    table = _ROW_TYPES[kind].__table__
    run_id = UUID(change.run_id)
    parent = table.c.id if kind == RunKind.PIPELINE else table.c.pipeline_run_id
    row = session.execute(select(table.c.status, table.c.started_at, parent)
                          .where(table.c.id == run_id)).first()
    if row is None:
        raise LookupError(f"{kind.value} {change.run_id} not found")
    current, started_at, pipeline_run_id = row
    if is_terminal(kind, current):
        return str(current)  # ended: neither its status nor its other fields change
    steps = transition_path(kind, current, change.status)
    values: dict[str, Any] = dict(change.fields)
    if steps:
        previous = current
        events = []
        for step in steps:
            events.append({"pipeline_run_id": pipeline_run_id, "kind": kind.value,
                           "run_id": run_id, "from_status": previous, "to_status": step,
                           "reason": change.reason, "at": change.at})
            previous = step
        session.execute(insert(_STATUS_EVENTS), events)
        if started_at is None and _starts(kind, current, change.status):
            values["started_at"] = change.at
        values["status"] = change.status
        if change.reason:
            values["status_reason"] = change.reason
        if is_terminal(kind, change.status):
            values["ended_at"] = change.at
    if values:
        values["updated_at"] = change.at
        session.execute(update(table).where(table.c.id == run_id).values(**values))
    return str(change.status) if steps else str(current)


def record_statuses(engine: Engine, changes: Sequence[StatusChange]) -> list[str]:
    """Apply several status changes in one transaction (one round trip for a workflow)."""
    with transaction(engine) as session:
        return apply_statuses(session, changes)


def apply_statuses(session: Session, changes: Sequence[StatusChange]) -> list[str]:
    """`apply_status` for each change, in order."""
    return [apply_status(session, change) for change in changes]


def close_open_stage_runs(
    engine: Engine, pipeline_run_id: UUID, status: str, reason: str, at: datetime
) -> int:
    """End every stage run of the run that never started (pending) with `status`."""
    with transaction(engine) as session:
        rows = session.exec(
            select(StageRun.id).where(
                StageRun.pipeline_run_id == pipeline_run_id,
                StageRun.status == StageRunStatus.PENDING,
            )
        ).all()
        for stage_run_id in rows:
            apply_status(session, StatusChange(RunKind.STAGE, str(stage_run_id), status, at,
                                               reason))
        return len(rows)


