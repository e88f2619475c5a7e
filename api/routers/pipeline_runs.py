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
from api.schemas import PipelineRunAction, PipelineRunCreate, RetryRequest
from api.steps_view import RunStepsPublic, steps_view
from domain.bounds import INT32_MAX
from domain.statuses import RunKind
from store.runs import reads
from store.runs.steps import run_steps
from store.runs.tables import PipelineRunPublic
from store.types import utcnow

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
    return respond_page(request, page.count, present.pipeline_runs(session, page.items), paging)


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
    run_number: Annotated[int | None, Query(
        ge=1, le=INT32_MAX,
        description="Only the run with this number (how `PIPELINE#N` is found)")] = None,
) -> JSONResponse:
    """A pipeline's runs stay listed after the pipeline itself is deleted."""
    page = reads.list_pipeline_runs(
        session, enterprise_id, pipeline_id=pipeline_id,
        status=parse_filter(RunKind.PIPELINE, status), ordering=ordering,
        run_number=run_number, limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count, present.pipeline_runs(session, page.items), paging)


@router.post("/pipelines/{pipeline_id}/runs", name="create_pipeline_run",
             summary="Create a Pipeline Run", response_model=Envelope[PipelineRunPublic],
             responses=action_responses(Envelope[PipelineRunPublic]))
async def create_pipeline_run(
    pipeline_id: UUID,
    caller: CallerDep,
    control: ControlDep,
    body: Annotated[PipelineRunCreate | None, Body()] = None,
) -> JSONResponse:
    """Starts a run of the pipeline as it is now (the run keeps that snapshot). The body is an
    empty object, or the run's options: `concurrency_key` (the run then waits `queued` while
    another active run of the enterprise has that key, and starts in creation order), and its
    `input_values` and `sensitive_input_values` (a reference to an input the run is not given,
    or a name given as both, is a 400 naming it). The run is numbered 1, 2, 3... per
    pipeline; its trigger_type is `api` and its trigger_source the id of the API key that
    started it."""
    given = body or PipelineRunCreate()
    started = await control.start_pipeline_run(
        caller.enterprise_id, pipeline_id, caller=caller, concurrency_key=given.concurrency_key,
        input_values=given.input_values, sensitive_input_values=given.sensitive_input_values)
    return respond_outcome(started, present.pipeline_run)


@router.get("/runs/{pipeline_run_id}", name="get_run", summary="Get a Pipeline Run by its id",
            response_model=Envelope[PipelineRunPublic])
def get_run(pipeline_run_id: UUID, session: SessionDep, enterprise_id: EnterpriseDep
            ) -> JSONResponse:
    """The same run as under its pipeline, found by the run id alone (what a client holding
    only a run id, such as the CLI, asks)."""
    row = reads.get_pipeline_run(session, enterprise_id, pipeline_run_id)
    return respond(present.pipeline_run(row))


@router.get(ONE, name="get_pipeline_run", summary="Get Pipeline run by pipeline run id",
            response_model=Envelope[PipelineRunPublic])
def get_pipeline_run(pipeline_id: UUID, pipeline_run_id: UUID, session: SessionDep,
                     enterprise_id: EnterpriseDep) -> JSONResponse:
    row = reads.get_pipeline_run(session, enterprise_id, pipeline_run_id, pipeline_id)
    return respond(present.pipeline_runs(session, [row])[0])


@router.put(ONE, name="update_pipeline_run", summary="Update a Pipeline Run",
            response_model=Envelope[PipelineRunPublic],
            responses=action_responses(Envelope[PipelineRunPublic]))
async def update_pipeline_run(
    pipeline_id: UUID,
    pipeline_run_id: UUID,
    body: PipelineRunAction,
    caller: CallerDep,
    control: ControlDep,
) -> JSONResponse:
    """`status` is an action, in any case: `cancelled` cancels the run; `waiting` pauses it
    (no new targets are dispatched; in-flight ones finish); `running` resumes it, or passes the
    manual gate it waits at. Any other value, or an action the run's state refuses, is a 400
    naming what is allowed; the response shows the run after the action, whose `waiting_for`
    says why it waits (the gate, or who paused it)."""
    outcome = await control.set_pipeline_run_status(caller.enterprise_id, pipeline_id,
                                                    pipeline_run_id, body.status, caller=caller)
    return respond_outcome(outcome, present.pipeline_run)


@router.delete(ONE, name="delete_pipeline_run", summary="Delete a Pipeline Run",
               response_model=Envelope[PipelineRunPublic])
def delete_pipeline_run(pipeline_id: UUID, pipeline_run_id: UUID, session: SessionDep,
                        enterprise_id: EnterpriseDep) -> JSONResponse:
    """Only a finished run (success, failure, cancelled, invalid or timeout): it is removed
    with its stage runs, target runs and commands. Otherwise a 400 naming its status."""
    row = reads.delete_pipeline_run(session, enterprise_id, pipeline_run_id, pipeline_id)
    return respond(present.pipeline_runs(session, [row])[0], 200, "Deleted")


@router.post(ONE + "/retry", name="retry_pipeline_run", summary="Retry a finished Pipeline Run",
             response_model=Envelope[PipelineRunPublic],
             responses={**action_responses(Envelope[PipelineRunPublic]),
                        **error_responses(409)})
async def retry_pipeline_run(
    pipeline_id: UUID,
    pipeline_run_id: UUID,
    caller: CallerDep,
    control: ControlDep,
    body: Annotated[RetryRequest | None, Body()] = None,
) -> JSONResponse:
    """A new run (its own run number) of the same snapshot as the finished run, pointing at it
    (`previous_run_id`; the retried run lists it in `retries`), with trigger_type `retry`.
    `mode`: `from_failed` (default) sends again only the target runs that failed, timed out or
    were cancelled, and runs the stages it did not reach; stages and target runs that
    succeeded are carried over (recorded as they ended, "carried over from run N", with no
    command sent). `from_step` runs from the stage whose key is `step_key` (the steps view
    lists the keys), carrying the earlier ones over. `full` runs everything again. The stage
    the retry starts at runs at once (the retry releases its gate); later manual stages wait
    as usual. A run that has not finished is a 409; a wrong mode or step_key a 400."""
    request = body or RetryRequest()
    outcome = await control.retry(caller.enterprise_id, pipeline_run_id, mode=request.mode,
                                  step_key=request.step_key, caller=caller,
                                  pipeline_id=pipeline_id)
    return respond_outcome(outcome, present.pipeline_run)


@router.get("/runs/{pipeline_run_id}/steps", name="get_run_steps", summary="Get the steps of a "
            "Pipeline Run", response_model=Envelope[RunStepsPublic])
def get_run_steps(pipeline_run_id: UUID, session: SessionDep,
                  enterprise_id: EnterpriseDep) -> JSONResponse:
    """Its stages in order: each with its key, the keys it depends on (the stages before it),
    its stage run, status, times, duration, per-status target counts, error, and the gate
    decision that released it; and how many steps are completed, failed, pending, running."""
    run, steps = run_steps(session, enterprise_id, pipeline_run_id)
    return respond(steps_view(run, steps, utcnow()))
