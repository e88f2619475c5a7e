"""Target runs (reference document 000): `/stageruns/{stage_run_id}/targetruns/...`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api import present
from api.deps import CallerDep, ControlDep, EnterpriseDep, PagingDep, SessionDep
from api.envelope import (
    COMMON_ERRORS,
    Envelope,
    ListContent,
    action_responses,
    error_responses,
    respond,
)
from api.filters import ordering_query, parse_filter, status_query
from api.outcomes import respond_outcome
from api.pagination import respond_page
from api.schemas import TargetRunAdd, TargetRunUpdate
from domain.statuses import RunKind
from store.runs import reads
from store.runs.tables import TargetRunPublic

router = APIRouter(tags=["Target Runs"], responses=error_responses(*COMMON_ERRORS))
LIST = "/stageruns/{stage_run_id}/targetruns"
ONE = LIST + "/{target_run_id}"


@router.get(LIST, name="list_target_runs", summary="Get all Target Runs for the Stage Run",
            response_model=Envelope[ListContent[TargetRunPublic]])
def list_target_runs(
    stage_run_id: UUID,
    request: Request,
    session: SessionDep,
    enterprise_id: EnterpriseDep,
    paging: PagingDep,
    status: Annotated[str | None, status_query(RunKind.TARGET)] = None,
    stage_run_operation_id: Annotated[UUID | None, Query(
        description="Stage run Operation Id to filter on")] = None,
    ordering: Annotated[str | None, ordering_query(
        reads.TARGET_RUN_ORDERINGS, "status orders along the lifecycle. Default: device "
        "order, then operation.")] = None,
) -> JSONResponse:
    page = reads.list_target_runs(
        session, enterprise_id, stage_run_id, status=parse_filter(RunKind.TARGET, status),
        stage_run_operation_id=stage_run_operation_id, ordering=ordering,
        limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count, present.target_runs(page.items), paging)


@router.post(LIST, name="create_target_runs", summary="Create a Target Runs for Stage Run",
             response_model=Envelope[list[TargetRunPublic]],
             responses=action_responses(Envelope[list[TargetRunPublic]]))
async def create_target_runs(
    stage_run_id: UUID,
    body: TargetRunAdd,
    enterprise_id: EnterpriseDep,
    caller: CallerDep,
    control: ControlDep,
) -> JSONResponse:
    """Adds a device (`target_id`) to a stage run that is still processing or running: one
    target run per operation of the stage, returned as a list. A device already in the stage
    run gets its existing target runs back."""
    outcome = await control.add_device(enterprise_id, stage_run_id, body.target_id,
                                       device_name=body.device_name or "",
                                       device_alias=body.device_alias or "", caller=caller)
    return respond_outcome(outcome, lambda rows: [present.target_run(r) for r in rows])


@router.get(ONE, name="get_target_run", summary="Get Target Run by Target Run ID",
            response_model=Envelope[TargetRunPublic])
def get_target_run(stage_run_id: UUID, target_run_id: UUID, session: SessionDep,
                   enterprise_id: EnterpriseDep) -> JSONResponse:
    row = reads.get_target_run(session, enterprise_id, target_run_id, stage_run_id)
    return respond(present.target_run(row))


@router.put(ONE, name="update_target_run", summary="Update a Target Run",
            response_model=Envelope[TargetRunPublic],
            responses=action_responses(Envelope[TargetRunPublic]))
async def update_target_run(
    stage_run_id: UUID,
    target_run_id: UUID,
    body: TargetRunUpdate,
    enterprise_id: EnterpriseDep,
    caller: CallerDep,
    control: ControlDep,
) -> JSONResponse:
    """`status`: `cancelled` (any case), only while the target run is pending, queued or
    processing (once dispatched, cancel its command instead). `device_name` is kept from the
    device at the time of the run: only its current value is accepted."""
    outcome = await control.update_target_run(enterprise_id, stage_run_id, target_run_id,
                                              status=body.status, device_name=body.device_name,
                                              caller=caller)
    return respond_outcome(outcome, present.target_run)
