"""Pipeline runs (reference document 003): `/runs` and `/pipelines/{pipeline_id}/runs/...`.

Reads come from the store; starting a run and every status action go to Temporal.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from api import present
from api.actions import (
    PIPELINE_RUN_ACTIONS,
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
    SettingsDep,
    TemporalDep,
    in_session,
    reader,
)
from api.envelope import Envelope, ListContent, error_responses, respond
from api.pagination import respond_page
from api.schemas import PipelineRunCreate, StatusAction
from domain.ids import pipeline_run_workflow_id
from domain.statuses import RunKind, is_terminal
from store.definitions import pipelines
from store.runs import reads
from store.runs.creation import PipelineNotFound
from store.runs.tables import PipelineRunPublic
from store.tenancy import NotFound
from workflows.launch import start_pipeline_run
from workflows.messages import RunState, RunStatusRequest
from workflows.names import UPDATE_SET_RUN_STATUS

router = APIRouter(tags=["Pipeline Runs"], responses=error_responses(400, 401, 404))
ONE = "/pipelines/{pipeline_id}/runs/{pipeline_run_id}"

StatusFilter = Annotated[str | None, Query(
    description="pending, queued, processing, running, waiting, complete, success, failure, "
    "cancelled, invalid or timeout (any case)")]
ORDERINGS = ("run_number", "status", "pipeline__name", "started_at", "ended_at", "created_at")


def _ordering_doc(names: tuple[str, ...]) -> str:
    return ("One of " + ", ".join(f"{n}, -{n}" for n in names)
            + ". Default: newest first (-created_at). status orders along the lifecycle.")


@router.get("/runs", name="list_runs", summary="Get all Runs for the Pipelines in the Enterprise",
            response_model=Envelope[ListContent[PipelineRunPublic]])
def list_runs(
    request: Request,
    session: SessionDep,
    enterprise_id: EnterpriseDep,
    paging: PagingDep,
    status: StatusFilter = None,
    pipeline_name: Annotated[str | None, Query(description="Filter by pipeline name")] = None,
    ordering: Annotated[str | None, Query(description=_ordering_doc(ORDERINGS))] = None,
) -> JSONResponse:
    page = reads.list_pipeline_runs(
        session, enterprise_id, status=parse_filter(RunKind.PIPELINE, status),
        pipeline_name=pipeline_name, ordering=ordering, limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count, [present.pipeline_run(r) for r in page.items], paging)


@router.get("/pipelines/{pipeline_id}/runs", name="list_pipeline_runs",
            summary="Get all Runs for the Pipeline",
            response_model=Envelope[ListContent[PipelineRunPublic]])
def list_pipeline_runs(
    pipeline_id: UUID,
    request: Request,
    session: SessionDep,
    enterprise_id: EnterpriseDep,
    paging: PagingDep,
    status: StatusFilter = None,
    ordering: Annotated[str | None, Query(description=_ordering_doc(
        tuple(n for n in ORDERINGS if n != "pipeline__name")))] = None,
) -> JSONResponse:
    """A pipeline's runs stay listed after the pipeline itself is deleted."""
    page = reads.list_pipeline_runs(
        session, enterprise_id, pipeline_id=pipeline_id,
        status=parse_filter(RunKind.PIPELINE, status), ordering=ordering,
        limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count, [present.pipeline_run(r) for r in page.items], paging)


@router.post("/pipelines/{pipeline_id}/runs", name="create_pipeline_run",
             summary="Create a Pipeline Run", response_model=Envelope[PipelineRunPublic])
async def create_pipeline_run(
    pipeline_id: UUID,
    engine: EngineDep,
    enterprise_id: EnterpriseDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    body: Annotated[PipelineRunCreate | None, Body()] = None,
) -> JSONResponse:
    """Starts a run of the pipeline as it is now (the run keeps that snapshot). The body is an
    empty object. The run is numbered 1, 2, 3... per pipeline."""
    await in_session(engine, lambda s: pipelines.get_pipeline(s, enterprise_id, pipeline_id))
    try:
        run = await start_pipeline_run(
            await temporal.get(), engine, enterprise_id=enterprise_id, pipeline_id=pipeline_id,
            task_queue=settings.task_queue, search_attributes=settings.search_attributes,
            stage_window=settings.stage_window, trigger_type="manual", trigger_source="api")
    except PipelineNotFound:
        raise NotFound("pipeline", pipeline_id) from None
    row = await in_session(engine, lambda s: reads.get_pipeline_run(s, enterprise_id, run.id))
    return respond(present.pipeline_run(row), 200, "Created")


@router.get(ONE, name="get_pipeline_run", summary="Get Pipeline run by pipeline run id",
            response_model=Envelope[PipelineRunPublic])
def get_pipeline_run(pipeline_id: UUID, pipeline_run_id: UUID, session: SessionDep,
                     enterprise_id: EnterpriseDep) -> JSONResponse:
    row = reads.get_pipeline_run(session, enterprise_id, pipeline_run_id, pipeline_id)
    return respond(present.pipeline_run(row))


@router.put(ONE, name="update_pipeline_run", summary="Update a Pipeline Run",
            response_model=Envelope[PipelineRunPublic])
async def update_pipeline_run(
    pipeline_id: UUID,
    pipeline_run_id: UUID,
    body: StatusAction,
    engine: EngineDep,
    enterprise_id: EnterpriseDep,
    temporal: TemporalDep,
) -> JSONResponse:
    """`status` is an action, in any case: `cancelled` cancels the run; `waiting` pauses it
    (no new targets are dispatched; in-flight ones finish); `running` resumes it, or passes the
    manual gate it waits at. Any other value, or an action the run's state refuses, is a 400
    naming what is allowed; the response shows the run after the action."""
    deadline = answer_deadline()
    action = parse_action(RunKind.PIPELINE, body.status, PIPELINE_RUN_ACTIONS,
                          noun="pipeline run")
    read = reader(engine, lambda s: reads.get_pipeline_run(
        s, enterprise_id, pipeline_run_id, pipeline_id))
    before = await asyncio.to_thread(read)
    if is_terminal(RunKind.PIPELINE, before.status):
        raise refused(before.status, "pipeline run", f"set status {action}")
    sent = await send_update(
        temporal, pipeline_run_workflow_id(pipeline_run_id), UPDATE_SET_RUN_STATUS,
        RunStatusRequest(status=action), result_type=RunState, deadline=deadline,
        closed=lambda: refused(before.status, "pipeline run", f"set status {action}"))
    # Cancel and pause answer once recorded; passing a gate is recorded a moment later.
    row = await settle(read, lambda r: not sent.answered or action != "running"
                       or r.status != before.status, deadline)
    return action_response(present.pipeline_run(row), sent)


@router.delete(ONE, name="delete_pipeline_run", summary="Delete a Pipeline Run",
               response_model=Envelope[PipelineRunPublic])
def delete_pipeline_run(pipeline_id: UUID, pipeline_run_id: UUID, session: SessionDep,
                        enterprise_id: EnterpriseDep) -> JSONResponse:
    """Only a finished run (success, failure, cancelled, invalid or timeout): it is removed
    with its stage runs, target runs and commands. Otherwise a 400 naming its status."""
    row = reads.delete_pipeline_run(session, enterprise_id, pipeline_run_id, pipeline_id)
    return respond(present.pipeline_run(row), 200, "Deleted")
