"""Operation lists and their operations: `/stages/{stage_id}/operationlists` and
`/operationlists/{id}/operations/...`."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api import present
from api.deps import EnterpriseDep, PagingDep, SessionDep
from api.envelope import COMMON_ERRORS, Envelope, ListContent, error_responses, respond
from api.pagination import respond_page
from store.definitions import operation_lists
from store.definitions.operation_lists import OperationListPublic, OperationPublic

router = APIRouter(tags=["Operations"], responses=error_responses(*COMMON_ERRORS))
OPS = "/operationlists/{operation_list_id}/operations"


@router.get("/stages/{stage_id}/operationlists", name="list_operation_lists",
            summary="List a stage's operation lists",
            response_model=Envelope[ListContent[OperationListPublic]])
def list_operation_lists(stage_id: UUID, request: Request, session: SessionDep,
                         enterprise_id: EnterpriseDep, paging: PagingDep) -> JSONResponse:
    page = operation_lists.list_stage_operation_lists(session, enterprise_id, stage_id,
                                              limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count, [present.operation_list(r) for r in page.items],
                        paging)


@router.post("/stages/{stage_id}/operationlists", name="create_operation_list",
             summary="Create an operation list for a stage", status_code=201,
             response_model=Envelope[OperationListPublic])
def create_operation_list(stage_id: UUID, body: operation_lists.OperationListCreate,
                          session: SessionDep, enterprise_id: EnterpriseDep) -> JSONResponse:
    """`name`, `description`, and optionally `pipeline_id` (must be the stage's)."""
    row = operation_lists.create_operation_list(session, enterprise_id, stage_id, body)
    return respond(present.operation_list(row), 201)


@router.get("/operationlists/{operation_list_id}", name="get_operation_list",
            summary="Get an operation list", response_model=Envelope[OperationListPublic])
def get_operation_list(operation_list_id: UUID, session: SessionDep,
                       enterprise_id: EnterpriseDep) -> JSONResponse:
    row = operation_lists.get_operation_list(session, enterprise_id, operation_list_id)
    return respond(present.operation_list(row))


@router.put("/operationlists/{operation_list_id}", name="update_operation_list",
            summary="Update an operation list", response_model=Envelope[OperationListPublic])
def update_operation_list(operation_list_id: UUID, body: operation_lists.OperationListUpdate,
                          session: SessionDep, enterprise_id: EnterpriseDep) -> JSONResponse:
    row = operation_lists.update_operation_list(session, enterprise_id, operation_list_id, body)
    return respond(present.operation_list(row))


@router.delete("/operationlists/{operation_list_id}", name="delete_operation_list",
               summary="Delete an operation list", response_model=Envelope[OperationListPublic])
def delete_operation_list(operation_list_id: UUID, session: SessionDep,
                          enterprise_id: EnterpriseDep) -> JSONResponse:
    """With its operations."""
    row = operation_lists.delete_operation_list(session, enterprise_id, operation_list_id)
    return respond(present.operation_list(row))


@router.get(OPS, name="list_operations", summary="List the operations of a list",
            response_model=Envelope[ListContent[OperationPublic]])
def list_operations(operation_list_id: UUID, request: Request, session: SessionDep,
                    enterprise_id: EnterpriseDep, paging: PagingDep) -> JSONResponse:
    """In the order they are sent to each device."""
    page = operation_lists.list_operations(session, enterprise_id, operation_list_id,
                                   limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count, [present.operation(r) for r in page.items], paging)


@router.post(OPS, name="create_operation", summary="Add an operation", status_code=201,
             response_model=Envelope[OperationPublic])
def create_operation(operation_list_id: UUID, body: operation_lists.OperationCreate,
                     session: SessionDep, enterprise_id: EnterpriseDep) -> JSONResponse:
    """`operation_type` (INSTALL, UNINSTALL, REBOOT, UPDATE_DEVICE_CONFIG, SET_APP_STATE, WIPE)
    and `args` (INSTALL needs package_name and app_version). Unknown types and missing
    arguments are a 400 naming what is allowed."""
    row = operation_lists.create_operation(session, enterprise_id, operation_list_id, body)
    return respond(present.operation(row), 201)


@router.get(OPS + "/{operation_id}", name="get_operation", summary="Get an operation",
            response_model=Envelope[OperationPublic])
def get_operation(operation_list_id: UUID, operation_id: UUID, session: SessionDep,
                  enterprise_id: EnterpriseDep) -> JSONResponse:
    row = operation_lists.get_operation(session, enterprise_id, operation_list_id, operation_id)
    return respond(present.operation(row))


@router.put(OPS + "/{operation_id}", name="update_operation", summary="Update an operation",
            response_model=Envelope[OperationPublic])
def update_operation(operation_list_id: UUID, operation_id: UUID,
                     body: operation_lists.OperationUpdate, session: SessionDep,
                     enterprise_id: EnterpriseDep) -> JSONResponse:
    row = operation_lists.update_operation(session, enterprise_id, operation_list_id,
                                           operation_id, body)
    return respond(present.operation(row))


@router.delete(OPS + "/{operation_id}", name="delete_operation", summary="Delete an operation",
               response_model=Envelope[OperationPublic])
def delete_operation(operation_list_id: UUID, operation_id: UUID, session: SessionDep,
                     enterprise_id: EnterpriseDep) -> JSONResponse:
    row = operation_lists.delete_operation(session, enterprise_id, operation_list_id, operation_id)
    return respond(present.operation(row))
