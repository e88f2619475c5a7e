"""Device groups: `/devicegroups` (name, device_ids) and a group's devices, paginated."""
from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api import present
from api.deps import EnterpriseDep, PagingDep, SessionDep
from api.envelope import COMMON_ERRORS, Envelope, ListContent, error_responses, respond
from api.pagination import respond_page
from store.definitions import devices, removal
from store.definitions.devices import DeviceGroupPublic, DevicePublic

router = APIRouter(prefix="/devicegroups", tags=["Device groups"],
                   responses=error_responses(*COMMON_ERRORS))


@router.get("", name="list_device_groups", summary="List device groups",
            response_model=Envelope[ListContent[DeviceGroupPublic]])
def list_device_groups(request: Request, session: SessionDep, enterprise_id: EnterpriseDep,
                       paging: PagingDep) -> JSONResponse:
    """The enterprise's groups with their sizes (members: GET one group, or its /devices)."""
    page = devices.list_device_groups(session, enterprise_id, limit=paging.limit,
                                      offset=paging.offset)
    return respond_page(request, page.count, present.device_groups(session, page.items), paging)


@router.post("", name="create_device_group", summary="Create a device group", status_code=201,
             response_model=Envelope[DeviceGroupPublic])
def create_device_group(body: devices.DeviceGroupCreate, session: SessionDep,
                        enterprise_id: EnterpriseDep) -> JSONResponse:
    """Every device id must be one of the enterprise's devices (else 400, nothing written)."""
    row = devices.create_device_group(session, enterprise_id, body)
    return respond(present.device_group_detail(session, row), 201)


@router.get("/{device_group_id}", name="get_device_group", summary="Get a device group",
            response_model=Envelope[DeviceGroupPublic])
def get_device_group(device_group_id: UUID, session: SessionDep,
                     enterprise_id: EnterpriseDep) -> JSONResponse:
    row = devices.get_device_group(session, enterprise_id, device_group_id)
    return respond(present.device_group_detail(session, row))


@router.put("/{device_group_id}", name="update_device_group", summary="Update a device group",
            response_model=Envelope[DeviceGroupPublic])
def update_device_group(device_group_id: UUID, body: devices.DeviceGroupUpdate,
                        session: SessionDep, enterprise_id: EnterpriseDep) -> JSONResponse:
    """Renames it and/or replaces its members (`device_ids`)."""
    row = devices.update_device_group(session, enterprise_id, device_group_id, body)
    return respond(present.device_group_detail(session, row))


@router.delete("/{device_group_id}", name="delete_device_group", summary="Delete a device group",
               response_model=Envelope[DeviceGroupPublic])
def delete_device_group(device_group_id: UUID, session: SessionDep,
                        enterprise_id: EnterpriseDep) -> JSONResponse:
    """The devices stay; the group leaves every target list that held it."""
    row = removal.delete_device_group(session, enterprise_id, device_group_id)
    return respond(present.device_group(row, 0))


@router.get("/{device_group_id}/devices", name="list_device_group_devices",
            summary="List a group's devices", response_model=Envelope[ListContent[DevicePublic]])
def list_device_group_devices(device_group_id: UUID, request: Request, session: SessionDep,
                              enterprise_id: EnterpriseDep, paging: PagingDep) -> JSONResponse:
    page = devices.list_group_devices(session, enterprise_id, device_group_id,
                                      limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count, present.devices(session, page.items), paging)
