"""Stages: `/pipelines/{pipeline_id}/stages` and `/pipelines/{pipeline_id}/stages/{stage_id}`."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api import present
from api.deps import EnterpriseDep, PagingDep, SessionDep
from api.envelope import COMMON_ERRORS, Envelope, ListContent, error_responses, respond
from api.pagination import respond_page
from store.definitions import pipelines, removal
from store.definitions.pipelines import StagePublic

router = APIRouter(prefix="/pipelines/{pipeline_id}/stages", tags=["Stages"],
                   responses=error_responses(*COMMON_ERRORS))


@router.get("", name="list_stages", summary="List a pipeline's stages",
            response_model=Envelope[ListContent[StagePublic]])
def list_stages(pipeline_id: UUID, request: Request, session: SessionDep,
                enterprise_id: EnterpriseDep, paging: PagingDep) -> JSONResponse:
    """In run order."""
    page = pipelines.list_stages(session, enterprise_id, pipeline_id, limit=paging.limit,
                               offset=paging.offset)
    return respond_page(request, page.count, present.stages(session, page.items), paging)


@router.post("", name="create_stage", summary="Add a stage", status_code=201,
             response_model=Envelope[StagePublic])
def create_stage(pipeline_id: UUID, body: pipelines.StageCreate, session: SessionDep,
                 enterprise_id: EnterpriseDep) -> JSONResponse:
    """`name`, `description`, `order` (default: last), `trigger` (default: automatic for the
    first stage, manual after), `timeout_seconds` (default 7 days) and `rollout`."""
    row = pipelines.create_stage(session, enterprise_id, pipeline_id, body)
    return respond(present.stage(session, row), 201)


@router.get("/{stage_id}", name="get_stage", summary="Get a stage",
            response_model=Envelope[StagePublic])
def get_stage(pipeline_id: UUID, stage_id: UUID, session: SessionDep,
              enterprise_id: EnterpriseDep) -> JSONResponse:
    row = pipelines.get_stage(session, enterprise_id, stage_id, pipeline_id)
    return respond(present.stage(session, row))


@router.put("/{stage_id}", name="update_stage", summary="Update a stage",
            response_model=Envelope[StagePublic])
def update_stage(pipeline_id: UUID, stage_id: UUID, body: pipelines.StageUpdate,
                 session: SessionDep, enterprise_id: EnterpriseDep) -> JSONResponse:
    """Changes the fields given (`rollout` is replaced whole)."""
    row = pipelines.update_stage(session, enterprise_id, pipeline_id, stage_id, body)
    return respond(present.stage(session, row))


@router.delete("/{stage_id}", name="delete_stage", summary="Delete a stage",
               response_model=Envelope[StagePublic])
def delete_stage(pipeline_id: UUID, stage_id: UUID, session: SessionDep,
                 enterprise_id: EnterpriseDep) -> JSONResponse:
    """With its operation lists; its target lists stay in the pipeline."""
    row = removal.delete_stage(session, enterprise_id, pipeline_id, stage_id)
    return respond(present.stage(session, row))
