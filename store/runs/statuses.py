"""Status changes of run rows, made on behalf of the workflow that owns each row.

A status only ever moves forward (domain.statuses), through every step between, each step
kept as a numbered StatusEvent; a move that is not allowed changes nothing, so an activity
retried or replayed after a crash writes nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, insert, update
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
_ID = "run_id_"  # the bound id of the statements below (not a column name)


def _statements(kind: RunKind) -> tuple[Any, Any]:
    """The read and the update of one kind's row, built once: building a statement and its
    cache key on every call was a fifth of a status change's cost (bench/fanout.py)."""
    table = _ROW_TYPES[kind].__table__
    parent = table.c.id if kind == RunKind.PIPELINE else table.c.pipeline_run_id
    read = select(table.c.status, table.c.started_at, parent).where(
        table.c.id == bindparam(_ID))
    # No .values(): the SET clause is the parameters given (compiled once per set of keys).
    write = update(table).where(table.c.id == bindparam(_ID))
    return read, write


_STATEMENTS = {kind: _statements(kind) for kind in _ROW_TYPES}
_INSERT_STATUS_EVENTS = insert(_STATUS_EVENTS)


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
    return apply_statuses(session, [change])[0]


@dataclass
class _Row:
    """One run row as the changes to it so far leave it, and what to write for them."""

    kind: RunKind
    run_id: UUID
    status: str
    started_at: datetime | None
    pipeline_run_id: UUID
    events: list[dict[str, Any]] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def move(self, change: StatusChange) -> str:
        """Plan `change` on top of the changes before it; returns the status afterwards."""
        kind, current = self.kind, self.status
        if is_terminal(kind, current):
            return current  # ended: neither its status nor its other fields change
        steps = transition_path(kind, current, change.status)
        values: dict[str, Any] = dict(change.fields)
        if steps:
            previous = current
            for step in steps:
                self.events.append({
                    "pipeline_run_id": self.pipeline_run_id, "kind": kind.value,
                    "run_id": self.run_id, "from_status": previous, "to_status": step,
                    "reason": change.reason, "at": change.at})
                previous = step
            if self.started_at is None and _starts(kind, current, change.status):
                values["started_at"] = self.started_at = change.at
            values["status"] = self.status = change.status
            if change.reason:
                values["status_reason"] = change.reason
            if is_terminal(kind, change.status):
                values["ended_at"] = change.at
        if values:
            values["updated_at"] = change.at
            self.values.update(values)
        return self.status

    def write(self, session: Session) -> None:
        if self.events:
            session.execute(_INSERT_STATUS_EVENTS, self.events)
        if self.values:
            session.execute(_STATEMENTS[self.kind][1], {**self.values, _ID: self.run_id})


def apply_statuses(session: Session, changes: Sequence[StatusChange]) -> list[str]:
    """`apply_status` for each change, in order. Consecutive changes of one row (a target's
    `running` and its end) are one read and one write of it, with every step in its log."""
    statuses: list[str] = []
    row: _Row | None = None
    for change in changes:
        kind, run_id = RunKind(change.kind), UUID(change.run_id)
        if row is None or (row.kind, row.run_id) != (kind, run_id):
            if row is not None:
                row.write(session)
            found = session.execute(_STATEMENTS[kind][0], {_ID: run_id}).first()
            if found is None:
                raise LookupError(f"{kind.value} {change.run_id} not found")
            row = _Row(kind, run_id, str(found[0]), found[1], found[2])
        statuses.append(row.move(change))
    if row is not None:
        row.write(session)
    return statuses


def record_statuses(engine: Engine, changes: Sequence[StatusChange]) -> list[str]:
    """Apply several status changes in one transaction (one round trip for a workflow)."""
    with transaction(engine) as session:
        return apply_statuses(session, changes)



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


