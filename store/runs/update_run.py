"""One target run with everything its "update run" view shows (the run, its pipeline, its
stage, its command and that command's events, its device's groups), read in one session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy import func
from sqlmodel import Session, select

from store.definitions.devices import device_group_ids
from store.runs.commands import Command, CommandEvent, command_events
from store.runs.reads import get_target_run
from store.runs.tables import PipelineRun, StageRun, StageRunOperation, TargetRun

# The message history shows at most this many command events (the command's own read too).
MAX_EVENTS = 1000


@dataclass
class UpdateRunView:
    target_run: TargetRun
    pipeline_id: UUID
    stage_name: str
    operation_args: dict[str, Any]  # what the run sends (its command's, once it has one)
    last_operation: bool  # the device's last operation in its stage run
    group_ids: list[UUID] = field(default_factory=list)
    command: Command | None = None
    events: list[CommandEvent] = field(default_factory=list)


def read_update_run(session: Session, enterprise_id: UUID, target_run_id: UUID) -> UpdateRunView:
    """The target run of the enterprise with this id (NotFound otherwise) and its context."""
    target = get_target_run(session, enterprise_id, target_run_id)
    pipeline_id = session.exec(select(PipelineRun.pipeline_id).where(
        PipelineRun.id == target.pipeline_run_id)).one()
    stage_name = session.exec(select(StageRun.stage_name).where(
        StageRun.id == target.stage_run_id)).one()
    operation_args, last_order = session.exec(
        select(StageRunOperation.args,
               select(func.max(StageRunOperation.order))
               .where(StageRunOperation.stage_run_id == target.stage_run_id)
               .scalar_subquery())
        .where(StageRunOperation.id == target.stage_run_operation_id)).one()
    view = UpdateRunView(
        target_run=target, pipeline_id=pipeline_id, stage_name=stage_name,
        operation_args=dict(operation_args or {}),
        last_operation=target.operation_order >= (last_order or 0),
        group_ids=device_group_ids(session, [target.target_id])[target.target_id])
    if target.command_id is not None:
        view.command = session.get(Command, target.command_id)
        if view.command is not None:
            view.operation_args = dict(view.command.args or {})
            view.events = command_events(session, view.command.id, limit=MAX_EVENTS)
    return view

