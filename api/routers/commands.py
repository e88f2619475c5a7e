"""A target run's device command (reference document 000), and the device-event endpoint a
gateway reports command progress to (DESIGN §4)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlmodel import Session
from temporalio.service import RPCError

from api import present
from api.actions import (
    COMMAND_ACTIONS,
    Sent,
    action_response,
    answer_deadline,
    parse_action,
    parse_filter,
    refused,
    send_update,
    settle,
)
from api.deps import EngineDep, EnterpriseDep, SessionDep, TemporalDep, in_session, reader
from api.envelope import Envelope, error_responses, respond
from api.errors import ApiError
from api.schemas import CommandRequest, CommandUpdate, DeviceEventIn, DeviceEventResult
from devices.events import CommandEventRelay
from domain.commands import CommandEvent
from domain.ids import stage_run_workflow_id, target_run_workflow_id
from domain.ids import target_run_id as target_run_id_of
from domain.statuses import RunKind, StageRunStatus, is_terminal
from store.runs import commands, reads, retries
from store.runs.commands import CommandPublic, UnknownCommand
from store.runs.tables import TargetRun
from store.tenancy import NotFound
from workflows.messages import (
    CommandCancelRequest,
    TargetRetryRequest,
    TargetRetryResult,
)
from workflows.names import UPDATE_CANCEL_COMMAND, UPDATE_RETRY_TARGET

router = APIRouter(tags=["Target Runs"], responses=error_responses(400, 401, 404))
COMMAND = "/stageruns/{stage_run_id}/targetruns/{target_run_id}/command"


def _command_of(session: Session, enterprise_id: UUID, stage_run_id: UUID,
                target_run_id: UUID) -> dict:
    target_run = reads.get_target_run(session, enterprise_id, target_run_id, stage_run_id)
    if target_run.command_id is None:
        raise ApiError(404, f"target run {target_run_id} has no command yet (it is "
                       f"{target_run.status})")
    command = commands.get_command(session, enterprise_id, target_run.command_id)
    return present.command(command, commands.command_events(session, command.id))


@router.get(COMMAND, name="get_target_run_command",
            summary="Get status of the command running for Target run",
            response_model=Envelope[CommandPublic])
def get_target_run_command(stage_run_id: UUID, target_run_id: UUID, session: SessionDep,
                           enterprise_id: EnterpriseDep) -> JSONResponse:
    """The target run's current command: its status (`request_status`), what the device
    reported, and every event in arrival order."""
    return respond(_command_of(session, enterprise_id, stage_run_id, target_run_id))


@router.post(COMMAND, name="create_target_run_command",
             summary="Create an command processor request for Target Run",
             response_model=Envelope[CommandPublic])
async def create_target_run_command(
    stage_run_id: UUID,
    target_run_id: UUID,
    engine: EngineDep,
    enterprise_id: EnterpriseDep,
    temporal: TemporalDep,
    body: CommandRequest | None = None,
) -> JSONResponse:
    """Sends the stage's operation again to a finished target run, while its stage run is
    running, as a **new target run** (a retry) for the same device and operation: a terminal
    status never changes, so the old target run keeps its status and its command history and
    gets `superseded_by` (the new id); the new one has `retry_of` (the old id). Stage-run counts
    and the stage's outcome count only current target runs; the target-run list shows both.

    Only a current target run that ended `failure`, `timeout` or `cancelled` can be sent again,
    once every earlier operation on its device succeeded. A later operation that ended because
    an earlier one failed is not sent by hand: it runs again by itself (as a retry of it) when
    the earlier one, sent again, succeeds.

    The answer is the new target run's command (`target_run_id` is the new target run) once it
    exists. The new target run waits its turn in the stage's window like any target: while it
    waits (the run is paused, a rate limit, a full window) the answer is 200 with the new target
    run itself and a message saying it is queued. The body (AndroidCommandRequest) is accepted
    and not used: a target run always sends its stage's operation."""
    deadline = answer_deadline()

    def check(session: Session) -> tuple[TargetRun, str]:
        target_run = reads.get_target_run(session, enterprise_id, target_run_id, stage_run_id)
        stage_run = reads.get_stage_run(session, enterprise_id, stage_run_id)
        status, command_status = target_run.status, target_run.command_status
        if target_run.command_id and command_status and not is_terminal(RunKind.COMMAND,
                                                                         command_status):
            raise ApiError(400, f"command: target run {target_run_id} already has an active "
                           f"command {target_run.command_id} ({command_status})", field="command")
        if not is_terminal(RunKind.TARGET, status):
            raise ApiError(400, f"command: target run {target_run_id} is {status}: its command "
                           "is being created by the run itself", field="command")
        refusal = retries.retry_refusal(session, target_run)
        if refusal is not None:
            raise ApiError(400, f"command: {refusal}", field="command", allowed=refusal.allowed)
        return target_run, stage_run.status

    old, stage_status = await in_session(engine, check)
    verb = "send a target run of it again"
    if stage_status != StageRunStatus.RUNNING:
        raise refused(stage_status, "stage run", verb)
    sent = await send_update(
        temporal, stage_run_workflow_id(stage_run_id), UPDATE_RETRY_TARGET,
        TargetRetryRequest(target_run_id=str(target_run_id), device_id=str(old.target_id),
                           operation_index=old.operation_order),
        result_type=TargetRetryResult, deadline=deadline,
        closed=lambda: refused(stage_status, "stage run", verb), field="command")
    # The retry row's id is derived, so it is known even before the run answers.
    new_id = target_run_id_of(stage_run_id, old.target_id, old.stage_run_operation_id,
                              old.generation + 1)

    def new_state(session: Session) -> tuple[TargetRun | None, dict | None]:
        rows = reads.get_target_runs(session, [new_id])
        if not rows or rows[0].command_id is None:
            return (rows[0] if rows else None), None
        command = commands.get_command(session, enterprise_id, rows[0].command_id)
        return rows[0], present.command(command, commands.command_events(session, command.id))

    read = reader(engine, new_state)
    waiting = sent.result.waiting if sent.result is not None else ""
    state = await settle(read, lambda st: not sent.answered or bool(waiting)
                         or st[1] is not None, deadline)
    row, command = state
    if not sent.answered:
        return action_response(present.target_run(row if row is not None else old), sent)
    if command is not None:
        return respond(command, 200, f"Sent again as target run {new_id}")
    assert row is not None  # the run answered: the row exists
    why = f" ({waiting})" if waiting else ""
    return respond(present.target_run(row), 200,
                   f"Queued: target run {new_id} replaces {target_run_id} and sends the "
                   f"command when its turn in the stage's window comes{why}; read "
                   f".../targetruns/{new_id}/command then")


@router.put(COMMAND + "/{command_id}", name="update_target_run_command",
            summary="Update target run command information.",
            response_model=Envelope[CommandPublic])
async def update_target_run_command(
    stage_run_id: UUID,
    target_run_id: UUID,
    command_id: UUID,
    body: CommandUpdate,
    engine: EngineDep,
    enterprise_id: EnterpriseDep,
    temporal: TemporalDep,
) -> JSONResponse:
    """`request_status: cancelled` asks the gateway to cancel the command; its target run then
    ends `failure` once the command reports `cancelled`."""
    deadline = answer_deadline()
    parse_action(RunKind.COMMAND, body.request_status, COMMAND_ACTIONS, field="request_status",
                 noun="command")

    def check(session: Session) -> str:
        target_run = reads.get_target_run(session, enterprise_id, target_run_id, stage_run_id)
        command = commands.get_command(session, enterprise_id, command_id)
        if command.target_run_id != target_run.id:
            raise NotFound("command", command_id)
        return command.status

    status = await in_session(engine, check)
    if is_terminal(RunKind.COMMAND, status):
        raise refused(status, "command", "cancel it")
    sent: Sent[None] = await send_update(
        temporal, target_run_workflow_id(target_run_id), UPDATE_CANCEL_COMMAND,
        CommandCancelRequest(command_id=str(command_id)), deadline=deadline,
        closed=lambda: refused(status, "command", "cancel it"), field="request_status")
    read = reader(engine, lambda s: _command_of(s, enterprise_id, stage_run_id, target_run_id))
    content = await settle(read, lambda c: not sent.answered
                           or is_terminal(RunKind.COMMAND, c["status"]), deadline)
    return action_response(content, sent)


@router.post("/commands/{command_id}/events", name="post_command_event",
             summary="Report a device command event", tags=["Device events"],
             response_model=Envelope[DeviceEventResult])
async def post_command_event(
    command_id: UUID,
    body: DeviceEventIn,
    engine: EngineDep,
    enterprise_id: EnterpriseDep,
    temporal: TemporalDep,
) -> JSONResponse:
    """How a gateway reports a command's progress: `{status, reason?, output?, sequence?}`.
    Duplicates and out-of-order events are recorded but change nothing (a status never moves
    backwards), so a gateway may safely resend."""
    status = parse_filter(RunKind.COMMAND, body.status)
    assert status is not None
    await in_session(engine, lambda s: commands.get_command(s, enterprise_id, command_id))
    relay = CommandEventRelay(engine, await temporal.get())
    event = CommandEvent(command_id=str(command_id), status=status, reason=body.reason,
                         output=dict(body.output), sequence=body.sequence)
    try:
        recorded = await relay.record_and_signal(command_id, [event])
    except UnknownCommand:
        raise NotFound("command", command_id) from None
    except RPCError:
        raise ApiError(503, "the event is recorded; passing it to the run failed and will be "
                       "retried") from None
    return respond({"command_id": str(command_id), "status": recorded.status,
                    "applied": len(recorded.applied), "received": 1})

