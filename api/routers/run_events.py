"""A run's live event stream (Server-Sent Events) and its audit trail of operator actions.

`/runs/{id}/events` streams every status change of the run, its stage runs and target runs,
every command event and every operator action, numbered by the run's log; `/runs/{id}/actions`
lists who did what to the run. Both are also served nested under their pipeline.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from sse_starlette import EventSourceResponse

from api.deps import EnterpriseDep, PagingDep, SessionDep, get_engine
from api.envelope import COMMON_ERRORS, Envelope, ListContent, error_responses
from api.errors import ApiError
from api.pagination import respond_page
from api.streams.run_events import BadLastEventId, parse_last_event_id, run_event_response
from store import audit
from store.audit import OperatorActionPublic
from store.runs import reads

router = APIRouter(tags=["Pipeline Runs"], responses=error_responses(*COMMON_ERRORS))

STREAM_DOC: dict[int | str, dict[str, Any]] = {200: {
    "description": "`text/event-stream`: events `status`, `command`, `action` and a final "
    "`end`, each with `id:` (its number in the run's log) and JSON `data:`; `: ping` comments "
    "while idle.", "content": {"text/event-stream": {}}}}
ActionFilter = Annotated[str | None, Query(description="Only this action (e.g. promote).")]


async def _stream(request: Request, enterprise_id: Any, pipeline_run_id: UUID,
                  header: str | None, query: int | None) -> EventSourceResponse:
    try:
        after = parse_last_event_id(header, query)
    except BadLastEventId as bad:
        raise ApiError(400, str(bad), field="Last-Event-ID") from None
    engine: Engine = get_engine(request)
    return await run_event_response(request, engine, enterprise_id, pipeline_run_id, after)


LastEventHeader = Annotated[str | None, Header(alias="Last-Event-ID", description=(
    "Resume after this event id (what a browser's EventSource sends on reconnect)."))]
LastEventQuery = Annotated[int | None, Query(ge=0, description=(
    "Resume after this event id (for clients that cannot set the header)."))]


@router.get("/runs/{pipeline_run_id}/events", name="stream_run_events",
            summary="Follow a Pipeline Run live (Server-Sent Events)", responses=STREAM_DOC,
            response_class=EventSourceResponse)
async def stream_run_events(pipeline_run_id: UUID, request: Request,
                            enterprise_id: EnterpriseDep,
                            last_event_id_header: LastEventHeader = None,
                            last_event_id: LastEventQuery = None) -> EventSourceResponse:
    """Replays the run's log from the start (or after `Last-Event-ID`), then follows it live;
    ends with an `end` event after the run's terminal status change."""
    return await _stream(request, enterprise_id, pipeline_run_id, last_event_id_header,
                         last_event_id)


@router.get("/pipelines/{pipeline_id}/runs/{pipeline_run_id}/events",
            name="stream_pipeline_run_events", responses=STREAM_DOC,
            summary="Follow a Pipeline Run live (Server-Sent Events)",
            response_class=EventSourceResponse)
async def stream_pipeline_run_events(pipeline_id: UUID, pipeline_run_id: UUID,
                                     request: Request, session: SessionDep,
                                     enterprise_id: EnterpriseDep,
                                     last_event_id_header: LastEventHeader = None,
                                     last_event_id: LastEventQuery = None
                                     ) -> EventSourceResponse:
    """The same stream as `/runs/{pipeline_run_id}/events`, under its pipeline."""
    reads.get_pipeline_run(session, enterprise_id, pipeline_run_id, pipeline_id)
    return await _stream(request, enterprise_id, pipeline_run_id, last_event_id_header,
                         last_event_id)


def _actions_page(request: Request, session: SessionDep, enterprise_id: Any,
                  paging: PagingDep, pipeline_run_id: UUID | None,
                  action: str | None) -> JSONResponse:
    page = audit.list_actions(session, enterprise_id, pipeline_run_id=pipeline_run_id,
                              action=action, limit=paging.limit, offset=paging.offset)
    results = [OperatorActionPublic.model_validate(row).model_dump(mode="json")
               for row in page.items]
    return respond_page(request, page.count, results, paging)


@router.get("/runs/{pipeline_run_id}/actions", name="list_run_actions",
            summary="Who did what to a Pipeline Run (its audit trail)",
            response_model=Envelope[ListContent[OperatorActionPublic]])
def list_run_actions(pipeline_run_id: UUID, request: Request, session: SessionDep,
                     enterprise_id: EnterpriseDep, paging: PagingDep,
                     action: ActionFilter = None) -> JSONResponse:
    """Every operator action on the run (start, pause, resume, cancel, promote, ...), oldest
    first: the API key that did it (`key_id`, `actor` its label), when, the request, and the
    outcome (`requested` while being applied, `done`, `accepted` (answered 202), `refused` or
    `failed`)."""
    reads.get_pipeline_run(session, enterprise_id, pipeline_run_id)
    return _actions_page(request, session, enterprise_id, paging, pipeline_run_id, action)


@router.get("/pipelines/{pipeline_id}/runs/{pipeline_run_id}/actions",
            name="list_pipeline_run_actions",
            summary="Who did what to a Pipeline Run (its audit trail)",
            response_model=Envelope[ListContent[OperatorActionPublic]])
def list_pipeline_run_actions(pipeline_id: UUID, pipeline_run_id: UUID, request: Request,
                              session: SessionDep, enterprise_id: EnterpriseDep,
                              paging: PagingDep, action: ActionFilter = None) -> JSONResponse:
    """The same list as `/runs/{pipeline_run_id}/actions`, under its pipeline."""
    reads.get_pipeline_run(session, enterprise_id, pipeline_run_id, pipeline_id)
    return _actions_page(request, session, enterprise_id, paging, pipeline_run_id, action)


@router.get("/actions", name="list_actions",
            summary="The enterprise's audit trail (runs and API tokens)",
            response_model=Envelope[ListContent[OperatorActionPublic]])
def list_actions(request: Request, session: SessionDep, enterprise_id: EnterpriseDep,
                 paging: PagingDep, action: ActionFilter = None) -> JSONResponse:
    """Every operator action of the enterprise, oldest first, token create/revoke included."""
    return _actions_page(request, session, enterprise_id, paging, None, action)
