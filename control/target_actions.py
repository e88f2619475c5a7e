"""RunControl's actions on target runs and their commands: adding a device to a running stage,
cancelling or sending a target run again (its StageRunWorkflow), cancelling a command (its
TargetRunWorkflow), and the reports devices send (through the command-event relay)."""

from __future__ import annotations

import asyncio
from typing import TypeVar
from uuid import UUID

from sqlmodel import Session
from temporalio.service import RPCError

from control.action_base import (
    ActionBase,
    CommandState,
    Outcome,
    current_command,
    refused,
    requested_action,
    still_applying,
)
from control.errors import ActionRefused, RunsUnavailable
from control.relay import CommandEventRelay
from control.reports import report_on_target_run
from control.updates import answer_deadline, send_update, settle
from domain.actions import (
    CANCELLABLE_TARGET_RUN,
    command_cancellable,
    stage_run_takes_targets,
    target_run_cancellable,
)
from domain.commands import CommandEvent
from domain.ids import stage_run_workflow_id, target_run_workflow_id
from domain.ids import target_run_id as derive_target_run_id
from domain.statuses import RunKind, is_terminal
from domain.update_run import DeviceReport
from store.definitions import devices
from store.definitions.tenants import Caller
from store.runs import commands, reads, retries
from store.runs.commands import UnknownCommand
from store.runs.events import RecordedEvents
from store.runs.tables import TargetRun
from store.runs.update_run import UpdateRunView, read_update_run
from store.tenancy import NotFound
from workflows.messages import (
    AddTargetRequest,
    CommandCancelRequest,
    TargetCancelRequest,
    TargetRetryRequest,
)
from workflows.stage_run import StageRunWorkflow
from workflows.target_run import TargetRunWorkflow

T = TypeVar("T")


class TargetActions(ActionBase):
    """Actions on target runs and commands (RunControl inherits them)."""

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
            raise refused(status, "stage run", verb)
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
            deadline=deadline, closed=lambda: refused(status, "stage run", verb),
            field="stage_run")
        if sent.result is not None:
            ids = [UUID(i) for i in sent.result.target_run_ids]
        else:  # still being applied: the ids are derived, show whichever rows exist already
            operations = await self._read(lambda s: reads.list_stage_run_operations(
                s, enterprise_id, stage_run_id, limit=1000, offset=0).items)
            ids = [derive_target_run_id(stage_run_id, device_id, op.id) for op in operations]
        rows = await self._read(lambda s: reads.get_target_runs(s, ids))
        return Outcome(rows, message="Created") if sent.answered else still_applying(rows)

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
        action = requested_action(RunKind.TARGET, status)
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
                closed=lambda: refused(before.status, "target run's stage run",
                                        f"set {action}"))
            row = await settle(read, lambda r: not sent.answered
                               or not target_run_cancellable(r.status), deadline)
            audit.answered(sent.answered)
            return Outcome(row) if sent.answered else still_applying(row)

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
            raise refused(stage_status, "stage run", verb)
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
            deadline=deadline, closed=lambda: refused(stage_status, "stage run", verb),
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
            return still_applying(row if row is not None else old)
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
        requested_action(RunKind.COMMAND, request_status, field="request_status")

        def check(session: Session) -> tuple[str, UUID]:
            target_run = reads.get_target_run(session, enterprise_id, target_run_id,
                                                stage_run_id)
            command = commands.get_command(session, enterprise_id, command_id)
            if command.target_run_id != target_run.id:
                raise NotFound("command", command_id)
            return command.status, target_run.pipeline_run_id

        status, pipeline_run_id = await self._read(check)
        if not command_cancellable(status):
            raise refused(status, "command", "cancel it")
        async with self._audit(caller, "cancel_command", pipeline_run_id,
                               {"request_status": request_status},
                               enterprise_id=enterprise_id, subject="command",
                               subject_id=command_id) as audit:
            sent = await send_update(
                await self._temporal.get(), target_run_workflow_id(target_run_id),
                TargetRunWorkflow.cancel_command,
                CommandCancelRequest(command_id=str(command_id)), deadline=deadline,
                closed=lambda: refused(status, "command", "cancel it"), field="request_status")
            state = await settle(self._reader(lambda s: current_command(
                s, enterprise_id, stage_run_id, target_run_id)), lambda c: not sent.answered
                                 or is_terminal(RunKind.COMMAND, c.command.status), deadline)
            audit.answered(sent.answered)
            return Outcome(state) if sent.answered else still_applying(state)

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
