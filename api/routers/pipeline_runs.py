"""Pipeline runs (reference document 003): `/runs` and `/pipelines/{pipeline_id}/runs/...`.

Reads come from the store; starting a run and every status action go through run control.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Query, Request
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
from api.schemas import PipelineRunAction, PipelineRunCreate
from domain.statuses import RunKind
from store.runs import reads
from store.runs.tables import PipelineRunPublic

router = APIRouter(tags=["Pipeline Runs"], responses=error_responses(*COMMON_ERRORS))
ONE = "/pipelines/{pipeline_id}/runs/{pipeline_run_id}"

StatusFilter = Annotated[str | None, status_query(RunKind.PIPELINE)]
ORDERING_DOC = "Default: newest first (-created_at). status orders along the lifecycle."


@router.get("/runs", name="list_runs", summary="Get all Runs for the Pipelines in the Enterprise",
            response_model=Envelope[ListContent[PipelineRunPublic]])
def list_runs(
    request: Request,
    session: SessionDep,
    enterprise_id: EnterpriseDep,
    paging: PagingDep,
    status: StatusFilter = None,
    pipeline_name: Annotated[str | None, Query(description="Filter by pipeline name")] = None,
    ordering: Annotated[str | None, ordering_query(reads.RUN_ORDERINGS, ORDERING_DOC)] = None,
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
    ordering: Annotated[str | None, ordering_query(reads.PIPELINE_RUN_ORDERINGS,
                                                   ORDERING_DOC)] = None,
) -> JSONResponse:
    """A pipeline's runs stay listed after the pipeline itself is deleted."""
    page = reads.list_pipeline_runs(
        session, enterprise_id, pipeline_id=pipeline_id,
        status=parse_filter(RunKind.PIPELINE, status), ordering=ordering,
        limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count, [present.pipeline_run(r) for r in page.items], paging)


@router.post("/pipelines/{pipeline_id}/runs", name="create_pipeline_run",
             summary="Create a Pipeline Run", response_model=Envelope[PipelineRunPublic],
             responses=action_responses(Envelope[PipelineRunPublic]))
async def create_pipeline_run(
    pipeline_id: UUID,
    enterprise_id: EnterpriseDep,
    caller: CallerDep,
    control: ControlDep,
    body: Annotated[PipelineRunCreate | None, Body()] = None,
) -> JSONResponse:
    """Starts a run of the pipeline as it is now (the run keeps that snapshot). The body is an
    empty object. The run is numbered 1, 2, 3... per pipeline."""
    started = await control.start_pipeline_run(enterprise_id, pipeline_id, caller=caller)
    return respond_outcome(started, present.pipeline_run)


@router.get(ONE, name="get_pipeline_run", summary="Get Pipeline run by pipeline run id",
            response_model=Envelope[PipelineRunPublic])
def get_pipeline_run(pipeline_id: UUID, pipeline_run_id: UUID, session: SessionDep,
                     enterprise_id: EnterpriseDep) -> JSONResponse:
    row = reads.get_pipeline_run(session, enterprise_id, pipeline_run_id, pipeline_id)
    return respond(present.pipeline_run(row))


@router.put(ONE, name="update_pipeline_run", summary="Update a Pipeline Run",
            response_model=Envelope[PipelineRunPublic],
            responses=action_responses(Envelope[PipelineRunPublic]))
async def update_pipeline_run(
    pipeline_id: UUID,
    pipeline_run_id: UUID,
    body: PipelineRunAction,
    enterprise_id: EnterpriseDep,
    caller: CallerDep,
    control: ControlDep,
) -> JSONResponse:
    """`status` is an action, in any case: `cancelled` cancels the run; `waiting` pauses it
    (no new targets are dispatched; in-flight ones finish); `running` resumes it, or passes the
    manual gate it waits at. Any other value, or an action the run's state refuses, is a 400
    naming what is allowed; the response shows the run after the action."""
    outcome = await control.set_pipeline_run_status(enterprise_id, pipeline_id, pipeline_run_id,
                                                    body.status, caller=caller)
    return respond_outcome(outcome, present.pipeline_run)


@router.delete(ONE, name="delete_pipeline_run", summary="Delete a Pipeline Run",
               response_model=Envelope[PipelineRunPublic])
def delete_pipeline_run(pipeline_id: UUID, pipeline_run_id: UUID, session: SessionDep,
                        enterprise_id: EnterpriseDep) -> JSONResponse:
    """Only a finished run (success, failure, cancelled, invalid or timeout): it is removed
    with its stage runs, target runs and commands. Otherwise a 400 naming its status."""
    row = reads.delete_pipeline_run(session, enterprise_id, pipeline_run_id, pipeline_id)
    return respond(present.pipeline_run(row), 200, "Deleted")
