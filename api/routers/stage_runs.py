"""Stage runs and their operations (reference document 001): `/runs/{pipeline_run_id}/stageruns`
and `/stageruns/{stage_run_id}/operations`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Request
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
from api.filters import parse_filter, status_query
from api.outcomes import respond_outcome
from api.pagination import respond_page
from api.schemas import StageRunAction
from domain.statuses import RunKind
from store.runs import reads
from store.runs.tables import StageRunOperationPublic, StageRunPublic

router = APIRouter(tags=["Stage Runs"], responses=error_responses(*COMMON_ERRORS))
ONE = "/runs/{pipeline_run_id}/stageruns/{stage_run_id}"


@router.get("/runs/{pipeline_run_id}/stageruns", name="list_stage_runs",
            summary="Get all Stage Runs for the Pipeline Run",
            response_model=Envelope[ListContent[StageRunPublic]])
def list_stage_runs(
    pipeline_run_id: UUID,
    request: Request,
    session: SessionDep,
    enterprise_id: EnterpriseDep,
    paging: PagingDep,
    status: Annotated[str | None, status_query(RunKind.STAGE)] = None,
) -> JSONResponse:
    """In stage order, each with the per-status counts of its target runs."""
    page = reads.list_stage_runs(session, enterprise_id, pipeline_run_id,
                                   status=parse_filter(RunKind.STAGE, status),
                                   limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count, [present.stage_run(r) for r in page.items], paging)


@router.get(ONE, name="get_stage_run", summary="Get Pipeline Stage run by stage run Id",
            response_model=Envelope[StageRunPublic])
def get_stage_run(pipeline_run_id: UUID, stage_run_id: UUID, session: SessionDep,
                  enterprise_id: EnterpriseDep) -> JSONResponse:
    row = reads.get_stage_run_row(session, enterprise_id, stage_run_id, pipeline_run_id)
    return respond(present.stage_run(row))


@router.put(ONE, name="update_stage_run", summary="Update a Pipeline Stage Run",
            response_model=Envelope[StageRunPublic],
            responses=action_responses(Envelope[StageRunPublic]))
async def update_stage_run(
    pipeline_run_id: UUID,
    stage_run_id: UUID,
    body: StageRunAction,
    caller: CallerDep,
    control: ControlDep,
) -> JSONResponse:
    """`status` is an action, in any case: `queued` promotes the stage run the pipeline run
    waits at (how a manual gate is passed); `cancelled` cancels it, and so its pipeline run.
    Anything else, or an action the run's state refuses, is a 400 naming what is allowed; the
    response shows the stage run after the action."""
    outcome = await control.set_stage_run_status(caller.enterprise_id, pipeline_run_id,
                                                 stage_run_id, body.status, caller=caller)
    return respond_outcome(outcome, present.stage_run)


@router.get("/stageruns/{stage_run_id}/operations", name="list_stage_run_operations",
            summary="Get all Operations for the Stage Run",
            response_model=Envelope[ListContent[StageRunOperationPublic]])
def list_stage_run_operations(stage_run_id: UUID, request: Request, session: SessionDep,
                              enterprise_id: EnterpriseDep, paging: PagingDep) -> JSONResponse:
    """The operations the stage run sends to each device, in order (from the run's snapshot)."""
    page = reads.list_stage_run_operations(session, enterprise_id, stage_run_id,
                                             limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count, [present.stage_run_operation(r) for r in page.items],
                        paging)


@router.get("/stageruns/{stage_run_id}/operations/{stage_run_operation_id}",
            name="get_stage_run_operation", summary="Get single Operation for the Stage Run",
            response_model=Envelope[StageRunOperationPublic])
def get_stage_run_operation(stage_run_id: UUID, stage_run_operation_id: UUID,
                            session: SessionDep, enterprise_id: EnterpriseDep) -> JSONResponse:
    row = reads.get_stage_run_operation(session, enterprise_id, stage_run_id,
                                          stage_run_operation_id)
    return respond(present.stage_run_operation(row))
