"""Stage runs and their operations (reference document 001): `/runs/{pipeline_run_id}/stageruns`
and `/stageruns/{stage_run_id}/operations`."""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api import present
from api.actions import (
    STAGE_RUN_ACTIONS,
    action_response,
    answer_deadline,
    parse_action,
    parse_filter,
    refused,
    send_update,
    settle,
)
from api.deps import EngineDep, EnterpriseDep, PagingDep, SessionDep, TemporalDep, reader
from api.envelope import Envelope, ListContent, error_responses, respond
from api.pagination import respond_page
from api.schemas import StatusAction
from domain.ids import pipeline_run_workflow_id
from domain.statuses import RunKind, StageRunStatus, is_terminal
from store.runs import reads
from store.runs.tables import StageRunOperationPublic, StageRunPublic
from workflows.messages import RunState, StageStatusRequest
from workflows.names import UPDATE_SET_STAGE_STATUS

router = APIRouter(tags=["Stage Runs"], responses=error_responses(400, 401, 404))
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
    status: Annotated[str | None, Query(
        description="pending, queued, processing, running, complete, success, failure, "
        "cancelled, invalid or timeout (any case)")] = None,
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
            response_model=Envelope[StageRunPublic])
async def update_stage_run(
    pipeline_run_id: UUID,
    stage_run_id: UUID,
    body: StatusAction,
    engine: EngineDep,
    enterprise_id: EnterpriseDep,
    temporal: TemporalDep,
) -> JSONResponse:
    """`status` is an action, in any case: `queued` promotes the stage run the pipeline run
    waits at (how a manual gate is passed); `cancelled` cancels it, and so its pipeline run.
    Anything else, or an action the run's state refuses, is a 400 naming what is allowed; the
    response shows the stage run after the action."""
    deadline = answer_deadline()
    action = parse_action(RunKind.STAGE, body.status, STAGE_RUN_ACTIONS, noun="stage run")
    read = reader(engine, lambda s: reads.get_stage_run_row(
        s, enterprise_id, stage_run_id, pipeline_run_id))
    before = await asyncio.to_thread(read)
    status = before.stage_run.status
    verb = "promote it" if action == StageRunStatus.QUEUED else "cancel it"
    if is_terminal(RunKind.STAGE, status):
        raise refused(status, "stage run", verb)
    sent = await send_update(
        temporal, pipeline_run_workflow_id(pipeline_run_id), UPDATE_SET_STAGE_STATUS,
        StageStatusRequest(stage_run_id=str(stage_run_id), status=action), result_type=RunState,
        deadline=deadline, closed=lambda: refused(status, "stage run", verb))
    # A promoted stage run records queued as its own workflow starts, a moment later.
    row = await settle(read, lambda r: not sent.answered
                       or r.stage_run.status != StageRunStatus.PENDING, deadline)
    return action_response(present.stage_run(row), sent)


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
