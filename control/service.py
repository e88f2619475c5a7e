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
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.service import RPCError

from control.audit import RecordedAction, action_entry, audited
from control.closing import RunCloser
from control.connection import TemporalConnection
from control.errors import ActionConflicts, ActionRefused, Missing, RunsUnavailable
from control.inputs import check_run_inputs
from control.launch import start_pipeline_run, start_run_workflow
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
from domain.concurrency import check_concurrency_key
from domain.ids import pipeline_run_workflow_id, stage_run_workflow_id, target_run_workflow_id
from domain.ids import target_run_id as derive_target_run_id
from domain.retry_modes import RetryNotPossible, parse_mode
from domain.statuses import PipelineRunStatus, RunKind, StageRunStatus, is_terminal
from domain.update_run import DeviceReport
from settings import Settings
from store.audit import DONE, FAILED
from store.definitions import devices, pipelines
from store.definitions.tenants import Caller
from store.runs import commands, reads, retries
from store.runs.commands import Command, UnknownCommand
from store.runs.commands import CommandEvent as CommandEventRow
from store.runs.creation import PipelineNotFound
from store.runs.events import RecordedEvents
from store.runs.retry_plans import create_retry_run
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
# How a run was started (docs/decisions.md): through the REST API by an API key.
API_TRIGGER = "api"
API_KEY_SOURCE = "api_key"

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


# What each status an operator PUTs does, by the name the audit trail records.
_PIPELINE_ACTIONS: dict[str, str] = {
    PipelineRunStatus.CANCELLED: "cancel", PipelineRunStatus.WAITING: "pause",
    PipelineRunStatus.RUNNING: "resume"}
_STAGE_ACTIONS: dict[str, str] = {
    StageRunStatus.QUEUED: "promote", StageRunStatus.CANCELLED: "cancel_stage"}


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

    def _audit(self, caller: Caller | None, action: str, pipeline_run_id: UUID | None,
               request: dict[str, Any] | None = None, *, enterprise_id: UUID | None = None,
               subject: str = "pipeline_run", subject_id: UUID | None = None,
               ) -> AbstractAsyncContextManager[RecordedAction]:
        """`async with self._audit(caller, "pause", run_id, body):` around carrying an action
        to its run: recorded (who, when, the request) before, its outcome after."""
        return audited(self._engine, action_entry(
            caller, action, pipeline_run_id, request, enterprise_id=enterprise_id,
            subject=subject, subject_id=subject_id))

    # ---- pipeline runs -------------------------------------------------------------------
    async def start_pipeline_run(
        self, enterprise_id: UUID, pipeline_id: UUID, caller: Caller | None = None, *,
        concurrency_key: str | None = None,
        input_values: Mapping[str, Any] | None = None,
        sensitive_input_values: Mapping[str, str] | None = None,
    ) -> Outcome[PipelineRun]:
        """A run of the pipeline as it is now, started through the API (trigger `api`, its
        source the caller's API key), with its inputs (control.inputs: refused whole, before
        anything is made, when they cannot be used). With a concurrency key it starts only
        when no other active run of the enterprise has that key (it waits `queued`, in
        creation order)."""
        if concurrency_key is not None:
            try:
                check_concurrency_key(concurrency_key)
            except ValueError as bad:
                raise ActionRefused("concurrency_key", str(bad)) from None
        await self._read(lambda s: pipelines.get_pipeline(s, enterprise_id, pipeline_id))
        settings = self._settings
        sensitive = check_run_inputs(settings, input_values or {}, sensitive_input_values or {})
        recorded: list[RecordedAction] = []

        async def record_start(run: PipelineRun) -> None:
            # Between the row and its workflow: the start comes first in the run's log.
            action = RecordedAction(self._engine, action_entry(
                caller, "start", run.id, {"pipeline_id": pipeline_id},
                enterprise_id=enterprise_id))
            await action.begin()
            recorded.append(action)

        try:
            run = await start_pipeline_run(
                await self._temporal.get(), self._engine, enterprise_id=enterprise_id,
                pipeline_id=pipeline_id, task_queue=settings.task_queue,
                search_attributes=settings.search_attributes,
                stage_window=settings.stage_window,
                targets_task_queue=settings.targets_task_queue, trigger_type=API_TRIGGER,
                trigger_source=str(caller.key_id) if caller else "",
                trigger_source_type=API_KEY_SOURCE if caller else "",
                concurrency_key=concurrency_key, input_values=input_values, sensitive=sensitive,
                before_start=record_start)
        except PipelineNotFound:
            raise NotFound("pipeline", pipeline_id) from None
        except BaseException as failed:
            for action in recorded:
                await asyncio.shield(action.finish(FAILED, type(failed).__name__))
            raise
        for action in recorded:
            await action.finish(DONE)
        row = await self._read(lambda s: reads.get_pipeline_run(s, enterprise_id, run.id))
        return Outcome(row, message="Created")

    async def retry(self, enterprise_id: UUID, pipeline_run_id: UUID, *, mode: str | None,
                    step_key: str | None, caller: Caller | None = None,
                    pipeline_id: UUID | None = None) -> Outcome[PipelineRun]:
        """A new run of the finished run's snapshot (trigger `retry`, its source the retried
        run): `full` runs every stage again, `from_step` starts at the stage whose key is
        `step_key` (earlier ones carried over), `from_failed` (the default) sends again only
        the target runs that did not succeed and runs the stages not reached. Refused with
        ActionConflicts while the run is not finished; nothing is made when refused."""
        try:
            parsed = parse_mode(mode)
            run = await asyncio.to_thread(
                create_retry_run, self._engine, enterprise_id, pipeline_run_id, parsed,
                step_key or None, requested_by=str(caller.key_id) if caller else "",
                pipeline_id=pipeline_id)
        except RetryNotPossible as refused:
            kind = ActionConflicts if refused.conflict else ActionRefused
            raise kind(refused.field, str(refused), refused.allowed) from None
        settings = self._settings
        async with self._audit(caller, "retry", run.id,
                               {"retried_run_id": str(pipeline_run_id), "mode": parsed.value,
                                "step_key": step_key}, enterprise_id=enterprise_id):
            await start_run_workflow(
                await self._temporal.get(), self._engine, run, task_queue=settings.task_queue,
                search_attributes=settings.search_attributes,
                stage_window=settings.stage_window,
                targets_task_queue=settings.targets_task_queue)
        row = await self._read(lambda s: reads.get_pipeline_run(s, enterprise_id, run.id))
        return Outcome(row, message=f"Created: run {row.run_number} retries run "
                       f"{run.retry_plan.get('from_run_number')} ({parsed.value})")

    async def set_pipeline_run_status(self, enterprise_id: UUID, pipeline_id: UUID | None,
                                      pipeline_run_id: UUID, status: str, *,
                                      caller: Caller | None = None) -> Outcome[PipelineRun]:
        """Cancel (cancelled), pause (waiting), resume or pass the manual gate (running). The
        caller's key is recorded with a pause (the run's `waiting_for` says who paused it) and
        with a gate pass (the stage run's `promoted_by`)."""
        deadline = answer_deadline()
        action = _action(RunKind.PIPELINE, status)
        read = self._reader(lambda s: reads.get_pipeline_run(
            s, enterprise_id, pipeline_run_id, pipeline_id))
        before = await asyncio.to_thread(read)
        if is_terminal(RunKind.PIPELINE, before.status):
            raise _refused(before.status, "pipeline run", f"set status {action}")
        async with self._audit(caller, _PIPELINE_ACTIONS.get(action, action), pipeline_run_id,
                               {"status": status}, enterprise_id=enterprise_id) as audit:
            outcome = await self._send_run_status(pipeline_run_id, action, before, read,
                                                  deadline, caller)
            audit.answered(outcome.answered)
            return outcome

    async def _send_run_status(self, pipeline_run_id: UUID, action: str, before: PipelineRun,
                               read: Callable[[], PipelineRun], deadline: float,
                               caller: Caller | None) -> Outcome[PipelineRun]:
        client = await self._temporal.get()
        cancel = action == PipelineRunStatus.CANCELLED
        try:
            sent = await send_update(
                client, pipeline_run_workflow_id(pipeline_run_id),
                PipelineRunWorkflow.set_run_status, RunStatusRequest(
                    status=action, by=str(caller.key_id) if caller else "",
                    by_name=caller.key_name if caller else ""),
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
                                   stage_run_id: UUID, status: str, *,
                                   caller: Caller | None = None
                                   ) -> Outcome[reads.StageRunRow]:
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
        async with self._audit(caller, _STAGE_ACTIONS.get(action, action),
                               before.stage_run.pipeline_run_id,
                               {"status": status}, enterprise_id=enterprise_id,
                               subject="stage_run", subject_id=stage_run_id) as audit:
            sent = await send_update(
                await self._temporal.get(), pipeline_run_workflow_id(pipeline_run_id),
                PipelineRunWorkflow.set_stage_status,
                StageStatusRequest(stage_run_id=str(stage_run_id), status=action,
                                   by=str(caller.key_id) if caller else ""),
                deadline=deadline, closed=lambda: _refused(current, "stage run", verb))
            # A promoted stage run records queued as its own workflow starts, a moment later.
            row = await settle(read, lambda r: not sent.answered
                               or r.stage_run.status != StageRunStatus.PENDING, deadline)
            audit.answered(sent.answered)
            return Outcome(row) if sent.answered else _still_applying(row)

    # ---- target runs ---------------------------------------------------------------------
    async def add_device(self, enterprise_id: UUID, stage_run_id: UUID, device_id: UUID, *,
                         device_name: str = "", device_alias: str = "",
                         caller: Caller | None = None) -> Outcome[list[TargetRun]]:
        """One target run per operation of the stage for the device (its existing ones if it is
        in the stage run already)."""

        def check(session: Session) -> tuple[str, UUID]:
            stage_run = reads.get_stage_run(session, enterprise_id, stage_run_id)
            try:
                devices.get_device(session, enterprise_id, device_id)
            except NotFound:
                raise ActionRefused("target_id", f"no device {device_id}") from None
            return stage_run.status, stage_run.pipeline_run_id

        deadline = answer_deadline()
        status, pipeline_run_id = await self._read(check)
        verb = "add a device to it"
        if is_terminal(RunKind.STAGE, status):
            raise _refused(status, "stage run", verb)
        body = {"target_id": device_id, "device_name": device_name, "device_alias": device_alias}
        async with self._audit(caller, "add_target", pipeline_run_id, body,
                               enterprise_id=enterprise_id, subject="stage_run",
                               subject_id=stage_run_id) as audit:
            added = await self._add_device(enterprise_id, stage_run_id, device_id, device_name,
                                           device_alias, status, deadline)
            audit.answered(added.answered)
            return added

    async def _add_device(self, enterprise_id: UUID, stage_run_id: UUID, device_id: UUID,
                          device_name: str, device_alias: str, status: str,
                          deadline: float) -> Outcome[list[TargetRun]]:
        verb = "add a device to it"
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
                                device_name: str | None,
                                caller: Caller | None = None) -> Outcome[TargetRun]:
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
        async with self._audit(caller, "cancel_target", before.pipeline_run_id,
                               {"status": status}, enterprise_id=enterprise_id,
                               subject="target_run", subject_id=target_run_id) as audit:
            sent = await send_update(
                await self._temporal.get(), stage_run_workflow_id(stage_run_id),
                StageRunWorkflow.cancel_target,
                TargetCancelRequest(target_run_id=str(target_run_id)), deadline=deadline,
                closed=lambda: _refused(before.status, "target run's stage run",
                                        f"set {action}"))
            row = await settle(read, lambda r: not sent.answered
                               or not target_run_cancellable(r.status), deadline)
            audit.answered(sent.answered)
            return Outcome(row) if sent.answered else _still_applying(row)

    async def send_target_run_again(
        self, enterprise_id: UUID, stage_run_id: UUID, target_run_id: UUID, *,
        caller: Caller | None = None,
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
        async with self._audit(caller, "send_again", old.pipeline_run_id, {},
                               enterprise_id=enterprise_id, subject="target_run",
                               subject_id=target_run_id) as audit:
            again = await self._send_again(enterprise_id, stage_run_id, target_run_id, old,
                                           stage_status, deadline)
            audit.answered(again.answered)
            return again

    async def _send_again(self, enterprise_id: UUID, stage_run_id: UUID, target_run_id: UUID,
                          old: TargetRun, stage_status: str,
                          deadline: float) -> Outcome[TargetRun | CommandState]:
        verb = "send a target run of it again"
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
                             command_id: UUID, request_status: str, *,
                             caller: Caller | None = None) -> Outcome[CommandState]:
        """Ask the gateway to cancel the command; its target run then ends failure once the
        command reports cancelled."""
        deadline = answer_deadline()
        _action(RunKind.COMMAND, request_status, field="request_status")

        def check(session: Session) -> tuple[str, UUID]:
            target_run = reads.get_target_run(session, enterprise_id, target_run_id,
                                                stage_run_id)
            command = commands.get_command(session, enterprise_id, command_id)
            if command.target_run_id != target_run.id:
                raise NotFound("command", command_id)
            return command.status, target_run.pipeline_run_id

        status, pipeline_run_id = await self._read(check)
        if not command_cancellable(status):
            raise _refused(status, "command", "cancel it")
        async with self._audit(caller, "cancel_command", pipeline_run_id,
                               {"request_status": request_status},
                               enterprise_id=enterprise_id, subject="command",
                               subject_id=command_id) as audit:
            sent = await send_update(
                await self._temporal.get(), target_run_workflow_id(target_run_id),
                TargetRunWorkflow.cancel_command,
                CommandCancelRequest(command_id=str(command_id)), deadline=deadline,
                closed=lambda: _refused(status, "command", "cancel it"), field="request_status")
            state = await settle(self._reader(lambda s: current_command(
                s, enterprise_id, stage_run_id, target_run_id)), lambda c: not sent.answered
                                 or is_terminal(RunKind.COMMAND, c.command.status), deadline)
            audit.answered(sent.answered)
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
