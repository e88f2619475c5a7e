"""Target runs (reference document 000): `/stageruns/{stage_run_id}/targetruns/...`."""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session

from api import present
from api.actions import (
    TARGET_RUN_ACTIONS,
    Sent,
    action_response,
    answer_deadline,
    parse_action,
    parse_filter,
    refused,
    send_update,
    settle,
)
from api.deps import (
    EngineDep,
    EnterpriseDep,
    PagingDep,
    SessionDep,
    TemporalDep,
    in_session,
    reader,
)
from api.envelope import Envelope, ListContent, error_responses, respond
from api.errors import ApiError
from api.pagination import respond_page
from api.schemas import StatusAction, TargetRunAdd, TargetRunUpdate
from domain.ids import stage_run_workflow_id, target_run_id
from domain.statuses import RunKind, TargetRunStatus, is_terminal
from store.definitions import devices
from store.runs import reads
from store.runs.tables import TargetRunPublic
from store.tenancy import NotFound
from workflows.messages import AddTargetRequest, AddTargetResult, TargetCancelRequest
from workflows.names import UPDATE_ADD_TARGET, UPDATE_CANCEL_TARGET

router = APIRouter(tags=["Target Runs"], responses=error_responses(400, 401, 404))
LIST = "/stageruns/{stage_run_id}/targetruns"
ONE = LIST + "/{target_run_id}"
# A target run can be cancelled only before its command is dispatched (reference document 000).
CANCELLABLE = (TargetRunStatus.PENDING, TargetRunStatus.QUEUED, TargetRunStatus.PROCESSING)


@router.get(LIST, name="list_target_runs", summary="Get all Target Runs for the Stage Run",
            response_model=Envelope[ListContent[TargetRunPublic]])
def list_target_runs(
    stage_run_id: UUID,
    request: Request,
    session: SessionDep,
    enterprise_id: EnterpriseDep,
    paging: PagingDep,
    status: Annotated[str | None, Query(
        description="pending, queued, processing, dispatched, running, complete, success, "
        "failure, cancelled, invalid or timeout (any case)")] = None,
    stage_run_operation_id: Annotated[UUID | None, Query(
        description="Stage run Operation Id to filter on")] = None,
    ordering: Annotated[str | None, Query(
        description="status or -status (along the lifecycle); also created_at, started_at, "
        "ended_at, device_name and their - forms. Default: device order, then operation.")
    ] = None,
) -> JSONResponse:
    page = reads.list_target_runs(
        session, enterprise_id, stage_run_id, status=parse_filter(RunKind.TARGET, status),
        stage_run_operation_id=stage_run_operation_id, ordering=ordering,
        limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count, present.target_runs(page.items), paging)


@router.post(LIST, name="create_target_runs", summary="Create a Target Runs for Stage Run",
             response_model=Envelope[list[TargetRunPublic]])
async def create_target_runs(
    stage_run_id: UUID,
    body: TargetRunAdd,
    engine: EngineDep,
    enterprise_id: EnterpriseDep,
    temporal: TemporalDep,
) -> JSONResponse:
    """Adds a device (`target_id`) to a stage run that is still processing or running: one
    target run per operation of the stage, returned as a list. A device already in the stage
    run gets its existing target runs back."""

    def check(session: Session) -> str:
        stage_run = reads.get_stage_run(session, enterprise_id, stage_run_id)
        try:
            devices.get_device(session, enterprise_id, body.target_id)
        except NotFound:
            raise ApiError(400, f"target_id: no device {body.target_id}",
                           field="target_id") from None
        return stage_run.status

    deadline = answer_deadline()
    status = await in_session(engine, check)
    verb = "add a device to it"
    if is_terminal(RunKind.STAGE, status):
        raise refused(status, "stage run", verb)
    sent = await send_update(
        temporal, stage_run_workflow_id(stage_run_id), UPDATE_ADD_TARGET,
        AddTargetRequest(device_id=str(body.target_id), device_name=body.device_name or "",
                         device_alias=body.device_alias or ""),
        result_type=AddTargetResult, deadline=deadline,
        closed=lambda: refused(status, "stage run", verb), field="stage_run")
    if sent.result is not None:
        ids = [UUID(i) for i in sent.result.target_run_ids]
    else:  # still being applied: the ids are derived, show whichever rows exist already
        operations = await in_session(engine, lambda s: reads.list_stage_run_operations(
            s, enterprise_id, stage_run_id, limit=1000, offset=0).items)
        ids = [target_run_id(stage_run_id, body.target_id, op.id) for op in operations]
    rows = await in_session(engine, lambda s: reads.get_target_runs(s, ids))
    if not sent.answered:
        return action_response([present.target_run(r) for r in rows], sent)
    return respond([present.target_run(r) for r in rows], 200, "Created")


@router.get(ONE, name="get_target_run", summary="Get Target Run by Target Run ID",
            response_model=Envelope[TargetRunPublic])
def get_target_run(stage_run_id: UUID, target_run_id: UUID, session: SessionDep,
                   enterprise_id: EnterpriseDep) -> JSONResponse:
    row = reads.get_target_run(session, enterprise_id, target_run_id, stage_run_id)
    return respond(present.target_run(row))


@router.put(ONE, name="update_target_run", summary="Update a Target Run",
            response_model=Envelope[TargetRunPublic])
async def update_target_run(
    stage_run_id: UUID,
    target_run_id: UUID,
    body: TargetRunUpdate,
    engine: EngineDep,
    enterprise_id: EnterpriseDep,
    temporal: TemporalDep,
) -> JSONResponse:
    """`status`: `cancelled` (any case), only while the target run is pending, queued or
    processing (once dispatched, cancel its command instead). `device_name` is kept from the
    device at the time of the run: only its current value is accepted."""
    deadline = answer_deadline()
    read = reader(engine, lambda s: reads.get_target_run(s, enterprise_id, target_run_id,
                                                           stage_run_id))
    before = await asyncio.to_thread(read)
    if body.device_name is not None and body.device_name != before.device_name:
        raise ApiError(400, "device_name: a target run keeps the device's name from when it "
                       f"was created ({before.device_name!r}); rename the device instead",
                       field="device_name")
    if body.status is None:
        return respond(present.target_run(before))
    action = parse_action(RunKind.TARGET, StatusAction(status=body.status).status,
                          TARGET_RUN_ACTIONS, noun="target run")
    if before.status not in CANCELLABLE:
        raise ApiError(400, f"status: a target run can be cancelled only while pending, queued "
                       f"or processing; it is {before.status}"
                       + (" (cancel its command instead)" if before.command_id else ""),
                       field="status", allowed=[s.value for s in CANCELLABLE])
    sent: Sent[None] = await send_update(
        temporal, stage_run_workflow_id(stage_run_id), UPDATE_CANCEL_TARGET,
        TargetCancelRequest(target_run_id=str(target_run_id)), deadline=deadline,
        closed=lambda: refused(before.status, "target run's stage run", f"set {action}"))
    row = await settle(read, lambda r: not sent.answered or is_terminal(RunKind.TARGET, r.status)
                       or r.status not in CANCELLABLE, deadline)
    return action_response(present.target_run(row), sent)
