"""The document's routes over pipeline runs. Reads come from the store; cancel and retry go
through run control, like every action on a run."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlmodel import Session
from sse_starlette import EventSourceResponse

from api.deps import ControlDep, SessionDep, get_engine
from api.errors import ApiError
from api.peers.automation_runs import PREFIX
from api.peers.automation_runs.auth import PeerCallerDep
from api.peers.automation_runs.errors import ACTION_RESPONSES, RESPONSES
from api.peers.automation_runs.shapes import (
    AutomationRun,
    AutomationRunList,
    AutomationRunRetry,
    AutomationRunSteps,
    run_view,
    steps_of,
)
from api.steps_view import steps_view
from api.streams.run_events import BadLastEventId, parse_last_event_id, run_event_response
from control.errors import ActionConflicts, ActionRefused
from domain.bounds import MAX_OFFSET
from domain.statuses import PipelineRunStatus
from store.runs import reads
from store.runs.steps import failed_stages, run_steps
from store.runs.tables import PipelineRun
from store.types import utcnow

router = APIRouter(prefix=PREFIX, tags=["Automation runs"], responses=RESPONSES)
TAG = {"name": "Automation runs", "description": "Reference document 002 as written, over "
       "pipeline runs (automation = pipeline, step = stage run)."}


def _runs(session: Session, rows: list[PipelineRun]) -> list[dict]:
    failed = failed_stages(session, rows)
    now = utcnow()
    return [run_view(row, failed.get(row.id), now) for row in rows]


@router.get("", name="list_automation_runs", summary="List All Runs",
            response_model=AutomationRunList)
def list_runs(
    session: SessionDep,
    caller: PeerCallerDep,
    status: PipelineRunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JSONResponse:
    """The tenant's runs, newest first."""
    page = reads.list_pipeline_runs(session, caller.enterprise_id,
                                    status=status.value if status else None,
                                    ordering="-created_at", limit=limit, offset=offset)
    return JSONResponse({"items": _runs(session, list(page.items)), "total": page.count})


@router.get("/{run_id}", name="get_automation_run", summary="Get Run",
            response_model=AutomationRun)
def get_run(run_id: UUID, session: SessionDep, caller: PeerCallerDep) -> JSONResponse:
    row = reads.get_pipeline_run(session, caller.enterprise_id, run_id)
    return JSONResponse(_runs(session, [row])[0])


@router.post("/{run_id}/cancel", name="cancel_automation_run", summary="Cancel Run",
             response_model=AutomationRun, responses=ACTION_RESPONSES)
async def cancel_run(run_id: UUID, session: SessionDep, caller: PeerCallerDep,
                     control: ControlDep) -> JSONResponse:
    """Cancels the run (its open stage and target runs with it); a finished run is a 409."""
    try:
        await control.set_pipeline_run_status(caller.enterprise_id, None, run_id,
                                              PipelineRunStatus.CANCELLED, caller=caller)
    except ActionRefused as refused:  # the run's state refuses it: the document's 409
        raise ApiError(409, refused.message) from None
    # Read once the action is done (the session opens its transaction on first use).
    row = reads.get_pipeline_run(session, caller.enterprise_id, run_id)
    return JSONResponse(_runs(session, [row])[0])


@router.post("/{run_id}/retry", name="retry_automation_run", summary="Retry Run",
             response_model=AutomationRun, responses=ACTION_RESPONSES)
async def retry_run(run_id: UUID, caller: PeerCallerDep, control: ControlDep,
                    body: Annotated[AutomationRunRetry | None, Body()] = None) -> JSONResponse:
    """A new run of the same snapshot, `triggerType` `retry`, pointing at this one:
    `from_failed` (default) sends again only the failed, timed-out and cancelled target runs
    and runs the stages not reached (what succeeded is carried over), `from_step` runs from
    the stage whose key is `stepKey` (the steps' `key`), `full` runs everything. A run that
    has not finished is a 409."""
    request = body or AutomationRunRetry()
    try:
        outcome = await control.retry(caller.enterprise_id, run_id, mode=request.mode.value,
                                      step_key=request.stepKey, caller=caller)
    except ActionConflicts as conflict:
        raise ApiError(409, conflict.message) from None
    return JSONResponse(run_view(outcome.content, None, utcnow()))


@router.get("/{run_id}/steps", name="get_automation_run_steps", summary="Get Run Steps",
            response_model=AutomationRunSteps)
def get_steps(run_id: UUID, session: SessionDep, caller: PeerCallerDep) -> JSONResponse:
    run, steps = run_steps(session, caller.enterprise_id, run_id)
    return JSONResponse(steps_of(steps_view(run, steps, utcnow())))


@router.get("/{run_id}/events", name="stream_automation_run_events",
            summary="Stream Run Events", response_class=EventSourceResponse,
            responses={200: {"description": "`text/event-stream`: every status change of the "
                             "run, its stage runs and target runs, every command event and "
                             "operator action, each with `id:`; a final `end` event after the "
                             "run's terminal one; `: ping` comments while idle.",
                             "content": {"text/event-stream": {}}}})
async def stream_events(
    run_id: UUID, request: Request, caller: PeerCallerDep,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """The same stream as the native `/runs/{id}/events`: from the run's start (or after
    `Last-Event-ID`), then live, until the run's terminal event."""
    try:
        after = parse_last_event_id(last_event_id_header, None)
    except BadLastEventId as bad:
        raise RequestValidationError([{"loc": ("header", "Last-Event-ID"), "msg": str(bad),
                                       "type": "value_error"}]) from None
    return await run_event_response(request, get_engine(request), caller.enterprise_id,
                                    run_id, after)
