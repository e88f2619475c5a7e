"""RunControl: every operator action on a run, from the request to the state it leaves.

Each action reads the row, pre-checks it against the rule table (domain.actions), carries it as
an update to the workflow that owns that status, and re-reads the row until the change shows or
the answer is due. Which workflow owns what:
- a pipeline run's status and its stage runs' (promote, cancel): its PipelineRunWorkflow;
- adding a device, cancelling a target run, sending one again: the StageRunWorkflow;
- cancelling a command: the TargetRunWorkflow of its target run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from uuid import UUID

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.service import RPCError

from control.closing import RunCloser
from control.connection import TemporalConnection
from control.errors import ActionRefused, Missing, RunsUnavailable
from control.launch import start_pipeline_run
from control.relay import CommandEventRelay
from control.reports import report_on_target_run
from control.updates import answer_deadline, send_update, settle
from domain.actions import (
    CANCELLABLE_TARGET_RUN,
    NotAnAction,
    command_cancellable,
    parse_action,
    stage_run_takes_targets,
    target_run_cancellable,
)
from domain.commands import CommandEvent
from domain.ids import pipeline_run_workflow_id, stage_run_workflow_id, target_run_workflow_id
from domain.ids import target_run_id as derive_target_run_id
from domain.statuses import PipelineRunStatus, RunKind, StageRunStatus, is_terminal
from domain.update_run import DeviceReport
from settings import Settings
from store.definitions import devices, pipelines
from store.definitions.tenants import Caller
from store.runs import commands, reads, retries
from store.runs.commands import Command, UnknownCommand
from store.runs.commands import CommandEvent as CommandEventRow
from store.runs.creation import PipelineNotFound
from store.runs.events import RecordedEvents
from store.runs.tables import PipelineRun, TargetRun
from store.runs.update_run import UpdateRunView, read_update_run
from store.tenancy import NotFound
from workflows.messages import (
    AddTargetRequest,
    CommandCancelRequest,
    RunStatusRequest,
    StageStatusRequest,
    TargetCancelRequest,
    TargetRetryRequest,
)
from workflows.pipeline_run import PipelineRunWorkflow
from workflows.stage_run import StageRunWorkflow
from workflows.target_run import TargetRunWorkflow

T = TypeVar("T")

ACCEPTED_MESSAGE = ("Accepted: the run has the request and is applying it; read it again "
                    "to see the result")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What an action leaves: the row(s) to show; whether the run answered (False: it has the
    request and is still applying it); the message to give with them (None: a plain OK)."""

    content: T
    answered: bool = True
    message: str | None = None


@dataclass(frozen=True)
class CommandState:
    """A device command with every event it reported, in arrival order."""

    command: Command
    events: list[CommandEventRow]


def current_command(session: Session, enterprise_id: UUID, stage_run_id: UUID,
                    target_run_id: UUID) -> CommandState:
    """A target run's current command and its events; Missing while it has none yet."""
    target_run = reads.get_target_run(session, enterprise_id, target_run_id, stage_run_id)
    if target_run.command_id is None:
        raise Missing(f"target run {target_run_id} has no command yet (it is "
                      f"{target_run.status})")
    command = commands.get_command(session, enterprise_id, target_run.command_id)
    return CommandState(command, commands.command_events(session, command.id))


class _WorkflowGone(Exception):
    """The run's workflow is closed or not found."""


CANCELLED_WITHOUT_WORKFLOW = "cancelled by user (its workflow had already ended)"


def _refused(current: str, noun: str, action: str) -> ActionRefused:
    return ActionRefused("status", f"cannot {action}: the {noun} is {current}")


def _action(kind: RunKind, value: str, field: str = "status") -> str:
    try:
        return parse_action(kind, value)
    except NotAnAction as bad:
        raise ActionRefused(field, str(bad), list(bad.allowed)) from None


def _still_applying(content: T) -> Outcome[T]:
    return Outcome(content, answered=False, message=ACCEPTED_MESSAGE)


class RunControl:
    """The one door to the runs: starting them and every operator action."""

    def __init__(self, engine: Engine, temporal: TemporalConnection, settings: Settings) -> None:
        self._engine = engine
        self._temporal = temporal
        self._settings = settings

    def _reader(self, work: Callable[[Session], T]) -> Callable[[], T]:
        def call() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                return work(session)

        return call

    async def _read(self, work: Callable[[Session], T]) -> T:
        """Store work in a worker thread with its own session: the event loop never waits."""
        return await asyncio.to_thread(self._reader(work))

    # ---- pipeline runs -------------------------------------------------------------------
    async def start_pipeline_run(self, enterprise_id: UUID,
                                 pipeline_id: UUID) -> Outcome[PipelineRun]:
        """A run of the pipeline as it is now, started by an operator."""
        await self._read(lambda s: pipelines.get_pipeline(s, enterprise_id, pipeline_id))
        settings = self._settings
        try:
            run = await start_pipeline_run(
                await self._temporal.get(), self._engine, enterprise_id=enterprise_id,
                pipeline_id=pipeline_id, task_queue=settings.task_queue,
                search_attributes=settings.search_attributes,
                stage_window=settings.stage_window,
                targets_task_queue=settings.targets_task_queue, trigger_type="manual",
                trigger_source="api")
        except PipelineNotFound:
            raise NotFound("pipeline", pipeline_id) from None
        row = await self._read(lambda s: reads.get_pipeline_run(s, enterprise_id, run.id))
        return Outcome(row, message="Created")

    async def set_pipeline_run_status(self, enterprise_id: UUID, pipeline_id: UUID,
                                      pipeline_run_id: UUID, status: str) -> Outcome[PipelineRun]:
        """Cancel (cancelled), pause (waiting), resume or pass the manual gate (running)."""
        deadline = answer_deadline()
        action = _action(RunKind.PIPELINE, status)
        read = self._reader(lambda s: reads.get_pipeline_run(
            s, enterprise_id, pipeline_run_id, pipeline_id))
        before = await asyncio.to_thread(read)
        if is_terminal(RunKind.PIPELINE, before.status):
            raise _refused(before.status, "pipeline run", f"set status {action}")
        client = await self._temporal.get()
        cancel = action == PipelineRunStatus.CANCELLED
        try:
            sent = await send_update(
                client, pipeline_run_workflow_id(pipeline_run_id),
                PipelineRunWorkflow.set_run_status, RunStatusRequest(status=action),
                deadline=deadline,
                closed=lambda: _WorkflowGone() if cancel else _refused(
                    before.status, "pipeline run", f"set status {action}"))
        except _WorkflowGone:
            # Nothing else will ever end it: cancel it here, so it can then be deleted.
            await RunCloser(self._engine, client).close(pipeline_run_id, action,
                                                        CANCELLED_WITHOUT_WORKFLOW)
            return Outcome(await asyncio.to_thread(read))
        # Cancel and pause answer once recorded; passing a gate is recorded a moment later.
        row = await settle(read, lambda r: not sent.answered or action != "running"
                           or r.status != before.status, deadline)
        return Outcome(row) if sent.answered else _still_applying(row)

    # ---- stage runs ----------------------------------------------------------------------
    async def set_stage_run_status(self, enterprise_id: UUID, pipeline_run_id: UUID,
                                   stage_run_id: UUID,
                                   status: str) -> Outcome[reads.StageRunRow]:
        """Promote the stage run its pipeline run waits at (queued), or cancel it (cancelled)."""
        deadline = answer_deadline()
        action = _action(RunKind.STAGE, status)
        read = self._reader(lambda s: reads.get_stage_run_row(
            s, enterprise_id, stage_run_id, pipeline_run_id))
        before = await asyncio.to_thread(read)
        current = before.stage_run.status
        verb = "promote it" if action == StageRunStatus.QUEUED else "cancel it"
        if is_terminal(RunKind.STAGE, current):
            raise _refused(current, "stage run", verb)
        sent = await send_update(
            await self._temporal.get(), pipeline_run_workflow_id(pipeline_run_id),
            PipelineRunWorkflow.set_stage_status,
            StageStatusRequest(stage_run_id=str(stage_run_id), status=action),
            deadline=deadline, closed=lambda: _refused(current, "stage run", verb))
        # A promoted stage run records queued as its own workflow starts, a moment later.
        row = await settle(read, lambda r: not sent.answered
                           or r.stage_run.status != StageRunStatus.PENDING, deadline)
        return Outcome(row) if sent.answered else _still_applying(row)

    # ---- target runs ---------------------------------------------------------------------
    async def add_device(self, enterprise_id: UUID, stage_run_id: UUID, device_id: UUID, *,
                         device_name: str = "",
                         device_alias: str = "") -> Outcome[list[TargetRun]]:
        """One target run per operation of the stage for the device (its existing ones if it is
        in the stage run already)."""

        def check(session: Session) -> str:
            stage_run = reads.get_stage_run(session, enterprise_id, stage_run_id)
            try:
                devices.get_device(session, enterprise_id, device_id)
            except NotFound:
                raise ActionRefused("target_id", f"no device {device_id}") from None
            return stage_run.status

        deadline = answer_deadline()
        status = await self._read(check)
        verb = "add a device to it"
        if is_terminal(RunKind.STAGE, status):
            raise _refused(status, "stage run", verb)
        sent = await send_update(
            await self._temporal.get(), stage_run_workflow_id(stage_run_id),
            StageRunWorkflow.add_target,
            AddTargetRequest(device_id=str(device_id), device_name=device_name,
                             device_alias=device_alias),
            deadline=deadline, closed=lambda: _refused(status, "stage run", verb),
            field="stage_run")
        if sent.result is not None:
            ids = [UUID(i) for i in sent.result.target_run_ids]
        else:  # still being applied: the ids are derived, show whichever rows exist already
            operations = await self._read(lambda s: reads.list_stage_run_operations(
                s, enterprise_id, stage_run_id, limit=1000, offset=0).items)
            ids = [derive_target_run_id(stage_run_id, device_id, op.id) for op in operations]
        rows = await self._read(lambda s: reads.get_target_runs(s, ids))
        return Outcome(rows, message="Created") if sent.answered else _still_applying(rows)

    async def update_target_run(self, enterprise_id: UUID, stage_run_id: UUID,
                                target_run_id: UUID, *, status: str | None,
                                device_name: str | None) -> Outcome[TargetRun]:
        """Cancel a target run (status cancelled) before its command is dispatched. Its
        device_name is kept from the device at the time of the run: only that value is taken."""
        deadline = answer_deadline()
        read = self._reader(lambda s: reads.get_target_run(s, enterprise_id, target_run_id,
                                                             stage_run_id))
        before = await asyncio.to_thread(read)
        if device_name is not None and device_name != before.device_name:
            raise ActionRefused(
                "device_name", "a target run keeps the device's name from when it was created "
                f"({before.device_name!r}); rename the device instead")
        if status is None:
            return Outcome(before)
        action = _action(RunKind.TARGET, status)
        if not target_run_cancellable(before.status):
            raise ActionRefused(
                "status", "a target run can be cancelled only while pending, queued or "
                f"processing; it is {before.status}"
                + (" (cancel its command instead)" if before.command_id else ""),
                list(CANCELLABLE_TARGET_RUN))
        sent = await send_update(
            await self._temporal.get(), stage_run_workflow_id(stage_run_id),
            StageRunWorkflow.cancel_target, TargetCancelRequest(target_run_id=str(target_run_id)),
            deadline=deadline,
            closed=lambda: _refused(before.status, "target run's stage run", f"set {action}"))
        row = await settle(read, lambda r: not sent.answered
                           or not target_run_cancellable(r.status), deadline)
        return Outcome(row) if sent.answered else _still_applying(row)

    async def send_target_run_again(
        self, enterprise_id: UUID, stage_run_id: UUID, target_run_id: UUID,
    ) -> Outcome[TargetRun | CommandState]:
        """A retry: a new target run for the same device and operation. Shows its command once
        it has one, else the new target run waiting its turn in the stage's window."""
        deadline = answer_deadline()

        def check(session: Session) -> tuple[TargetRun, str]:
            target_run = reads.get_target_run(session, enterprise_id, target_run_id,
                                                stage_run_id)
            stage_run = reads.get_stage_run(session, enterprise_id, stage_run_id)
            status, command_status = target_run.status, target_run.command_status
            if target_run.command_id and command_status and not is_terminal(RunKind.COMMAND,
                                                                             command_status):
                raise ActionRefused("command", f"target run {target_run_id} already has an "
                                    f"active command {target_run.command_id} ({command_status})")
            if not is_terminal(RunKind.TARGET, status):
                raise ActionRefused("command", f"target run {target_run_id} is {status}: its "
                                    "command is being created by the run itself")
            refusal = retries.retry_refusal(session, target_run)
            if refusal is not None:
                raise ActionRefused("command", str(refusal), refusal.allowed)
            return target_run, stage_run.status

        old, stage_status = await self._read(check)
        verb = "send a target run of it again"
        if not stage_run_takes_targets(stage_status):
            raise _refused(stage_status, "stage run", verb)
        sent = await send_update(
            await self._temporal.get(), stage_run_workflow_id(stage_run_id),
            StageRunWorkflow.retry_target,
            TargetRetryRequest(target_run_id=str(target_run_id), device_id=str(old.target_id),
                               operation_index=old.operation_order),
            deadline=deadline, closed=lambda: _refused(stage_status, "stage run", verb),
            field="command")
        # The retry row's id is derived, so it is known even before the run answers.
        new_id = derive_target_run_id(stage_run_id, old.target_id, old.stage_run_operation_id,
                                      old.generation + 1)

        def new_state(session: Session) -> tuple[TargetRun | None, CommandState | None]:
            rows = reads.get_target_runs(session, [new_id])
            if not rows or rows[0].command_id is None:
                return (rows[0] if rows else None), None
            command = commands.get_command(session, enterprise_id, rows[0].command_id)
            return rows[0], CommandState(command, commands.command_events(session, command.id))

        waiting = sent.result.waiting if sent.result is not None else ""
        row, command = await settle(self._reader(new_state), lambda st: not sent.answered
                                    or bool(waiting) or st[1] is not None, deadline)
        if not sent.answered:
            return _still_applying(row if row is not None else old)
        if command is not None:
            return Outcome(command, message=f"Sent again as target run {new_id}")
        assert row is not None  # the run answered: the row exists
        why = f" ({waiting})" if waiting else ""
        return Outcome(row, message=(
            f"Queued: target run {new_id} replaces {target_run_id} and sends the command when "
            f"its turn in the stage's window comes{why}; read .../targetruns/{new_id}/command "
            "then"))

    # ---- commands ------------------------------------------------------------------------
    async def cancel_command(self, enterprise_id: UUID, stage_run_id: UUID, target_run_id: UUID,
                             command_id: UUID, request_status: str) -> Outcome[CommandState]:
        """Ask the gateway to cancel the command; its target run then ends failure once the
        command reports cancelled."""
        deadline = answer_deadline()
        _action(RunKind.COMMAND, request_status, field="request_status")

        def check(session: Session) -> str:
            target_run = reads.get_target_run(session, enterprise_id, target_run_id,
                                                stage_run_id)
            command = commands.get_command(session, enterprise_id, command_id)
            if command.target_run_id != target_run.id:
                raise NotFound("command", command_id)
            return command.status

        status = await self._read(check)
        if not command_cancellable(status):
            raise _refused(status, "command", "cancel it")
        sent = await send_update(
            await self._temporal.get(), target_run_workflow_id(target_run_id),
            TargetRunWorkflow.cancel_command, CommandCancelRequest(command_id=str(command_id)),
            deadline=deadline, closed=lambda: _refused(status, "command", "cancel it"),
            field="request_status")

        state = await settle(self._reader(lambda s: current_command(
            s, enterprise_id, stage_run_id, target_run_id)), lambda c: not sent.answered
                             or is_terminal(RunKind.COMMAND, c.command.status), deadline)
        return Outcome(state) if sent.answered else _still_applying(state)

    async def report_on_target_run(self, caller: Caller, target_run_id: UUID,
                                   report: DeviceReport) -> UpdateRunView:
        """A device's report on its target run (the "update run" view): a command event for
        its command, through the relay; the run as it is afterwards. NotFound, ReportRefused."""
        async def relay() -> CommandEventRelay:  # connected only past the pre-checks
            return CommandEventRelay(self._engine, await self._temporal.get())

        try:
            await report_on_target_run(self._engine, relay, caller, target_run_id, report)
        except RPCError:
            raise RunsUnavailable("the report is recorded; passing it to the run failed and "
                                  "will be retried") from None
        return await self._read(lambda s: read_update_run(s, caller.enterprise_id,
                                                          target_run_id))

    async def report_command_event(self, enterprise_id: UUID, command_id: UUID,
                                   event: CommandEvent) -> RecordedEvents:
        """A gateway's report of a command's progress: recorded, then passed to its run.
        Duplicates and out-of-order events are recorded but change nothing."""
        await self._read(lambda s: commands.get_command(s, enterprise_id, command_id))
        relay = CommandEventRelay(self._engine, await self._temporal.get())
        try:
            return await relay.record_and_signal(command_id, [event])
        except UnknownCommand:
            raise NotFound("command", command_id) from None
        except RPCError:
            raise RunsUnavailable("the event is recorded; passing it to the run failed and "
                                  "will be retried") from None
