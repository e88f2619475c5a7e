"""Closing a pipeline run from outside its workflow: the run, its open stage runs, target runs
and commands, ended in the store (domain.closing says with which status).

For runs whose workflow can no longer do it: cancelled or terminated in Temporal, a workflow
that failed, a cancel of a run whose workflow is gone. Every write goes through apply_status,
so statuses only move forward: closing twice, or while a workflow writes, changes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from sqlalchemy import insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from domain.closing import closing_status
from domain.records import StatusChange
from domain.statuses import TERMINAL, CommandStatus, RunKind, TargetRunStatus
from store.db import transaction
from store.runs.commands import Command, CommandEvent
from store.runs.events import command_log_entry
from store.runs.statuses import apply_status
from store.runs.tables import PipelineRun, StageRun, StatusEvent, TargetRun
from store.runs.targets import close_pending_targets

_TERMINAL_TARGET = list(TERMINAL[RunKind.TARGET])
_TERMINAL_COMMAND = list(TERMINAL[RunKind.COMMAND])


@dataclass
class OpenRun:
    """What of a run is still open: the workflows that may still run and the commands a
    gateway may still be carrying out."""

    pipeline_run_id: str
    stage_run_ids: list[str] = field(default_factory=list)  # every stage run of the run
    target_run_ids: list[str] = field(default_factory=list)  # started, not ended
    command_ids: list[str] = field(default_factory=list)  # not ended


@dataclass
class ClosedRun:
    pipeline_status: str  # the run's status afterwards
    stage_runs: int  # how many rows this call ended
    target_runs: int
    commands: int


def runs_left_open(engine: Engine, created_before: datetime,
                   limit: int = 10_000) -> list[str]:
    """Pipeline runs made before `created_before` that are not ended, or have a stage or
    target run that is not: the runs whose workflows the reconciler looks at. Open runs that
    are running fine come back every round, so the limit is far above how many run at once
    (a lower one would hide the runs past it for ever)."""
    with transaction(engine) as session:
        open_runs = session.exec(
            select(PipelineRun.id).where(col(PipelineRun.status).not_in(
                list(TERMINAL[RunKind.PIPELINE])), col(PipelineRun.created_at) < created_before)
            .order_by(col(PipelineRun.created_at)).limit(limit)).all()
        ended_with_open_stages = session.exec(
            select(StageRun.pipeline_run_id).distinct()
            .join(PipelineRun, col(PipelineRun.id) == col(StageRun.pipeline_run_id))
            .where(col(PipelineRun.status).in_(list(TERMINAL[RunKind.PIPELINE])),
                   col(StageRun.status).not_in(list(TERMINAL[RunKind.STAGE])),
                   col(PipelineRun.created_at) < created_before)
            .limit(limit)).all()
        ended_stages_with_open_targets = session.exec(
            select(StageRun.pipeline_run_id).distinct()
            .join(TargetRun, col(TargetRun.stage_run_id) == col(StageRun.id))
            .where(col(StageRun.status).in_(list(TERMINAL[RunKind.STAGE])),
                   col(TargetRun.status).not_in(_TERMINAL_TARGET),
                   col(StageRun.created_at) < created_before)
            .limit(limit)).all()
    found = dict.fromkeys(str(i) for i in (*open_runs, *ended_with_open_stages,
                                           *ended_stages_with_open_targets))
    return list(found)[:limit]


def open_parts(engine: Engine, pipeline_run_id: UUID) -> OpenRun:
    with transaction(engine) as session:
        stage_ids = session.exec(select(StageRun.id).where(
            StageRun.pipeline_run_id == pipeline_run_id)).all()
        # A pending target run has no workflow yet (or one that will find its row ended).
        target_ids = session.exec(select(TargetRun.id).where(
            TargetRun.pipeline_run_id == pipeline_run_id,
            col(TargetRun.status).not_in([*_TERMINAL_TARGET, TargetRunStatus.PENDING]))).all()
        command_ids = _open_commands(session, pipeline_run_id)
    return OpenRun(str(pipeline_run_id), [str(i) for i in stage_ids],
                   [str(i) for i in target_ids], [str(i) for i in command_ids])


def _open_commands(session: Session, pipeline_run_id: UUID) -> list[UUID]:
    return list(session.exec(
        select(Command.id).join(TargetRun, col(TargetRun.id) == col(Command.target_run_id))
        .where(TargetRun.pipeline_run_id == pipeline_run_id,
               col(Command.status).not_in(_TERMINAL_COMMAND))).all())


def close_run(engine: Engine, pipeline_run_id: UUID, status: str, reason: str,
              at: datetime) -> ClosedRun:
    """End the run (`status`: cancelled or failure) and everything under it still open: stage
    runs and target runs as domain.closing says, commands `cancelled` (a gateway that still
    reports on one changes nothing: an ended command takes no more events)."""
    with transaction(engine) as session:
        run = session.get(PipelineRun, pipeline_run_id)
        if run is None:
            raise LookupError(f"pipeline run {pipeline_run_id} not found")
        stages = session.exec(select(StageRun.id, StageRun.status).where(
            StageRun.pipeline_run_id == pipeline_run_id)).all()
        stages_closed = sum(
            _close(session, RunKind.STAGE, stage_id, current, status, reason, at) is not None
            for stage_id, current in stages)
        commands_closed = _cancel_commands(session, pipeline_run_id, reason, at)
        started = session.exec(select(TargetRun.id, TargetRun.status, TargetRun.command_status)
                               .where(TargetRun.pipeline_run_id == pipeline_run_id,
                                      col(TargetRun.status).not_in(
                                          [*_TERMINAL_TARGET, TargetRunStatus.PENDING]))).all()
        targets_closed = 0
        for target_id, current, command_status in started:
            fields = {}
            if command_status and command_status not in _TERMINAL_COMMAND:
                fields["command_status"] = CommandStatus.CANCELLED.value
            targets_closed += _close(session, RunKind.TARGET, target_id, current, status,
                                     reason, at, **fields) is not None
    # Pending target runs in batches, a stage run at a time (a stage may hold many thousands).
    pending = closing_status(RunKind.TARGET, TargetRunStatus.PENDING, status)
    assert pending is not None
    for stage_id, _ in stages:
        targets_closed += close_pending_targets(engine, stage_id, pending, reason, at)
    # The run itself last, as its workflow would: its terminal entry ends the run's log (an
    # event stream ends there), so nothing of its children comes after it.
    with transaction(engine) as session:
        current = session.exec(select(PipelineRun.status).where(
            PipelineRun.id == pipeline_run_id)).one()
        final = _close(session, RunKind.PIPELINE, pipeline_run_id, current, status, reason, at)
    return ClosedRun(str(final or current), stages_closed, targets_closed, commands_closed)


def _close(session: Session, kind: RunKind, run_id: UUID, current: str, wanted: str,
           reason: str, at: datetime, **fields: str) -> str | None:
    status = closing_status(kind, current, wanted)
    if status is None:
        return None
    return apply_status(session, StatusChange(kind, str(run_id), status, at, reason, fields))


def _cancel_commands(session: Session, pipeline_run_id: UUID, reason: str,
                     at: datetime) -> int:
    """Commands not ended are cancelled, each with an event saying why (its history)."""
    open_commands = session.exec(
        select(Command.id, Command.status, Command.target_run_id)
        .join(TargetRun, col(TargetRun.id) == col(Command.target_run_id))
        .where(TargetRun.pipeline_run_id == pipeline_run_id,
               col(Command.status).not_in(_TERMINAL_COMMAND))).all()
    ids = [cid for cid, _, _ in open_commands]
    if not ids:
        return 0
    commands = Command.__table__  # type: ignore[attr-defined]
    session.execute(update(commands).where(commands.c.id.in_(ids)).values(
        status=CommandStatus.CANCELLED.value, reason=reason, updated_at=at))
    session.execute(update(commands).where(commands.c.id.in_(ids),
                                           commands.c.cancel_requested_at.is_(None))
                    .values(cancel_requested_at=at))
    session.execute(insert(CommandEvent.__table__), [  # type: ignore[attr-defined]
        {"command_id": cid, "status": CommandStatus.CANCELLED.value, "reason": reason,
         "output": {}, "sequence": None, "applied": True, "received_at": at} for cid in ids])
    session.execute(insert(StatusEvent.__table__), [  # type: ignore[attr-defined]
        command_log_entry(pipeline_run_id, target_run_id, cid, current,
                          CommandStatus.CANCELLED.value, reason, {}, None, at)
        for cid, current, target_run_id in open_commands])
    return len(ids)
