"""Devices: `/devices` (name, alias, attributes)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api import present
from api.deps import EnterpriseDep, PagingDep, SessionDep
from api.envelope import COMMON_ERRORS, Envelope, ListContent, error_responses, respond
from api.pagination import respond_page
from store.definitions import devices, removal
from store.definitions.devices import DevicePublic

router = APIRouter(prefix="/devices", tags=["Devices"], responses=error_responses(*COMMON_ERRORS))


@router.get("", name="list_devices", summary="List devices",
            response_model=Envelope[ListContent[DevicePublic]])
def list_devices(request: Request, session: SessionDep, enterprise_id: EnterpriseDep,
                 paging: PagingDep,
                 name: Annotated[str | None, Query(description="Exact device name")] = None,
                 ) -> JSONResponse:
    """The enterprise's devices, by name."""
    page = devices.list_devices(session, enterprise_id, name=name, limit=paging.limit,
                                offset=paging.offset)
    return respond_page(request, page.count, present.devices(session, page.items), paging)


@router.post("", name="create_device", summary="Create a device", status_code=201,
             response_model=Envelope[DevicePublic])
def create_device(body: devices.DeviceCreate, session: SessionDep,
                  enterprise_id: EnterpriseDep) -> JSONResponse:
    return respond(present.device(devices.create_device(session, enterprise_id, body)), 201)


@router.get("/{device_id}", name="get_device", summary="Get a device",
            response_model=Envelope[DevicePublic])
def get_device(device_id: UUID, session: SessionDep, enterprise_id: EnterpriseDep) -> JSONResponse:
    row = devices.get_device(session, enterprise_id, device_id)
    return respond(present.devices(session, [row])[0])


@router.put("/{device_id}", name="update_device", summary="Update a device",
            response_model=Envelope[DevicePublic])
def update_device(device_id: UUID, body: devices.DeviceUpdate, session: SessionDep,
                  enterprise_id: EnterpriseDep) -> JSONResponse:
    """Changes the fields given; `attributes` is replaced whole."""
    row = devices.update_device(session, enterprise_id, device_id, body)
    return respond(present.devices(session, [row])[0])


@router.delete("/{device_id}", name="delete_device", summary="Delete a device",
               response_model=Envelope[DevicePublic])
def delete_device(device_id: UUID, session: SessionDep, enterprise_id: EnterpriseDep
                  ) -> JSONResponse:
    """Also removes it from its groups and target lists; runs keep their own record of it."""
    return respond(present.device(removal.delete_device(session, enterprise_id, device_id)))
