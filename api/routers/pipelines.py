"""Pipelines: `/pipelines` (flat, or a whole pipeline in one POST) and `/pipelines/{id}`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api import present
from api.deps import EnterpriseDep, PagingDep, SessionDep
from api.envelope import COMMON_ERRORS, Envelope, ListContent, error_responses, respond
from api.filters import ordering_query
from api.pagination import respond_page
from store.definitions import pipelines, removal, whole_pipelines
from store.definitions.pipelines import PipelinePublic

router = APIRouter(prefix="/pipelines", tags=["Pipelines"],
                   responses=error_responses(*COMMON_ERRORS))


@router.get("", name="list_pipelines", summary="List pipelines",
            response_model=Envelope[ListContent[PipelinePublic]])
def list_pipelines(
    request: Request,
    session: SessionDep,
    enterprise_id: EnterpriseDep,
    paging: PagingDep,
    name: Annotated[str | None, Query(description="Exact pipeline name")] = None,
    ordering: Annotated[str | None, ordering_query(
        pipelines.PIPELINE_ORDERINGS, "Default: newest first (-created_at).")] = None,
) -> JSONResponse:
    page = pipelines.list_pipelines(session, enterprise_id, name=name, ordering=ordering,
                                  limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count, [present.pipeline(row) for row in page.items],
                        paging)


@router.post("", name="create_pipeline", summary="Create a pipeline", status_code=201,
             response_model=Envelope[PipelinePublic])
def create_pipeline(body: whole_pipelines.PipelineCreate, session: SessionDep,
                    enterprise_id: EnterpriseDep) -> JSONResponse:
    """`name` and `description`; optionally `stages`, each with `device_ids`,
    `device_group_ids` and `operations`, to create the whole pipeline at once. Everything is
    checked before anything is written."""
    row = whole_pipelines.create_pipeline(session, enterprise_id, body)
    return respond(present.pipeline_detail(session, row), 201)


@router.get("/{pipeline_id}", name="get_pipeline", summary="Get a pipeline with its stages",
            response_model=Envelope[PipelinePublic])
def get_pipeline(pipeline_id: UUID, session: SessionDep,
                 enterprise_id: EnterpriseDep) -> JSONResponse:
    row = pipelines.get_pipeline(session, enterprise_id, pipeline_id)
    return respond(present.pipeline_detail(session, row))


@router.put("/{pipeline_id}", name="update_pipeline", summary="Update a pipeline",
            response_model=Envelope[PipelinePublic])
def update_pipeline(pipeline_id: UUID, body: pipelines.PipelineUpdate, session: SessionDep,
                    enterprise_id: EnterpriseDep) -> JSONResponse:
    """Changes the fields given. Runs already started keep their snapshot."""
    row = pipelines.update_pipeline(session, enterprise_id, pipeline_id, body)
    return respond(present.pipeline_detail(session, row))


@router.delete("/{pipeline_id}", name="delete_pipeline", summary="Delete a pipeline",
               response_model=Envelope[PipelinePublic])
def delete_pipeline(pipeline_id: UUID, session: SessionDep,
                    enterprise_id: EnterpriseDep) -> JSONResponse:
    """The definition with its stages, target lists and operations. Its runs stay readable."""
    row = removal.delete_pipeline(session, enterprise_id, pipeline_id)
    return respond(present.pipeline(row))
