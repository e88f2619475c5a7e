"""A target run's device command (reference document 000), and the device-event endpoint a
gateway reports command progress to (passed on to the run through run control)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api import present
from api.deps import CallerDep, ControlDep, EnterpriseDep, SessionDep
from api.envelope import (
    COMMON_ERRORS,
    Envelope,
    action_responses,
    error_responses,
    respond,
)
from api.filters import parse_status_field
from api.outcomes import respond_outcome
from api.schemas import CommandRequest, CommandUpdate, DeviceEventIn, DeviceEventResult
from control.service import CommandState, current_command
from domain.commands import CommandEvent
from domain.statuses import RunKind
from store.runs.commands import CommandPublic
from store.runs.tables import TargetRun, TargetRunPublic

router = APIRouter(tags=["Target Runs"], responses=error_responses(*COMMON_ERRORS))
COMMAND = "/stageruns/{stage_run_id}/targetruns/{target_run_id}/command"


def _command(state: CommandState) -> dict:
    return present.command(state.command, state.events)


def _command_or_target_run(state: CommandState | TargetRun) -> dict:
    return _command(state) if isinstance(state, CommandState) else present.target_run(state)


@router.get(COMMAND, name="get_target_run_command",
            summary="Get status of the command running for Target run",
            response_model=Envelope[CommandPublic])
def get_target_run_command(stage_run_id: UUID, target_run_id: UUID, session: SessionDep,
                           enterprise_id: EnterpriseDep) -> JSONResponse:
    """The target run's current command: its status (`request_status`), what the device
    reported, and every event in arrival order."""
    return respond(_command(current_command(session, enterprise_id, stage_run_id,
                                            target_run_id)))


@router.post(COMMAND, name="create_target_run_command",
             summary="Create an command processor request for Target Run",
             response_model=Envelope[CommandPublic | TargetRunPublic],
             responses=action_responses(Envelope[TargetRunPublic]))
async def create_target_run_command(
    stage_run_id: UUID,
    target_run_id: UUID,
    enterprise_id: EnterpriseDep,
    caller: CallerDep,
    control: ControlDep,
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
    outcome = await control.send_target_run_again(enterprise_id, stage_run_id, target_run_id,
                                                  caller=caller)
    return respond_outcome(outcome, _command_or_target_run)


@router.put(COMMAND + "/{command_id}", name="update_target_run_command",
            summary="Update target run command information.",
            response_model=Envelope[CommandPublic],
            responses=action_responses(Envelope[CommandPublic]))
async def update_target_run_command(
    stage_run_id: UUID,
    target_run_id: UUID,
    command_id: UUID,
    body: CommandUpdate,
    enterprise_id: EnterpriseDep,
    caller: CallerDep,
    control: ControlDep,
) -> JSONResponse:
    """`request_status: cancelled` asks the gateway to cancel the command; its target run then
    ends `failure` once the command reports `cancelled`."""
    outcome = await control.cancel_command(enterprise_id, stage_run_id, target_run_id,
                                           command_id, body.request_status, caller=caller)
    return respond_outcome(outcome, _command)


@router.post("/commands/{command_id}/events", name="post_command_event",
             summary="Report a device command event", tags=["Device events"],
             response_model=Envelope[DeviceEventResult], responses=error_responses(503))
async def post_command_event(
    command_id: UUID,
    body: DeviceEventIn,
    enterprise_id: EnterpriseDep,
    control: ControlDep,
) -> JSONResponse:
    """How a gateway reports a command's progress: `{status, reason?, output?, sequence?,
    error?, output_attachment_ids?, run_message_history?}`. Duplicates and out-of-order events
    are recorded but change nothing (a status never moves backwards), so a gateway may safely
    resend. An event at the command's current status adds its data (output merged, the lists
    appended to the target run's) and moves nothing."""
    event = CommandEvent(command_id=str(command_id),
                         status=parse_status_field(RunKind.COMMAND, body.status),
                         reason=body.reason, output=dict(body.output), sequence=body.sequence,
                         error=list(body.error),
                         output_attachment_ids=list(body.output_attachment_ids),
                         run_message_history=[dict(m) for m in body.run_message_history])
    recorded = await control.report_command_event(enterprise_id, command_id, event)
    return respond({"command_id": str(command_id), "status": recorded.status,
                    "applied": 1 if recorded.applied or recorded.added else 0, "received": 1})
