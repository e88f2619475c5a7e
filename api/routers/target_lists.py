"""Target lists of a pipeline, their devices and device groups, and attaching them to stages:
`/pipelines/{pipeline_id}/targetlists/...` and `/stages/{stage_id}/targetlists`."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api import present
from api.deps import EnterpriseDep, PagingDep, SessionDep
from api.envelope import COMMON_ERRORS, Envelope, ListContent, error_responses, respond
from api.pagination import respond_page
from store.definitions import devices, target_lists
from store.definitions.devices import DevicePublic
from store.definitions.target_lists import TargetGroupPublic, TargetListPublic, TargetPublic

router = APIRouter(tags=["Target lists"], responses=error_responses(*COMMON_ERRORS))
LISTS = "/pipelines/{pipeline_id}/targetlists"
ONE = LISTS + "/{target_list_id}"


@router.get(LISTS, name="list_target_lists", summary="List a pipeline's target lists",
            response_model=Envelope[ListContent[TargetListPublic]])
def list_target_lists(pipeline_id: UUID, request: Request, session: SessionDep,
                      enterprise_id: EnterpriseDep, paging: PagingDep) -> JSONResponse:
    page = target_lists.list_target_lists(session, enterprise_id, pipeline_id, limit=paging.limit,
                                     offset=paging.offset)
    return respond_page(request, page.count, present.target_lists(session, page.items), paging)


@router.post(LISTS, name="create_target_list", summary="Create a target list", status_code=201,
             response_model=Envelope[TargetListPublic])
def create_target_list(pipeline_id: UUID, body: target_lists.TargetListCreate, session: SessionDep,
                       enterprise_id: EnterpriseDep) -> JSONResponse:
    """`name` and `target_list_type`: DEVICES (holds devices) or GROUPS (holds device groups)."""
    row = target_lists.create_target_list(session, enterprise_id, pipeline_id, body)
    return respond(present.target_list(session, row), 201)


@router.get(ONE, name="get_target_list", summary="Get a target list",
            response_model=Envelope[TargetListPublic])
def get_target_list(pipeline_id: UUID, target_list_id: UUID, session: SessionDep,
                    enterprise_id: EnterpriseDep) -> JSONResponse:
    row = target_lists.get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    return respond(present.target_list(session, row))


@router.put(ONE, name="update_target_list", summary="Rename a target list",
            response_model=Envelope[TargetListPublic])
def update_target_list(pipeline_id: UUID, target_list_id: UUID, body: target_lists.TargetListUpdate,
                       session: SessionDep, enterprise_id: EnterpriseDep) -> JSONResponse:
    row = target_lists.update_target_list(session, enterprise_id, pipeline_id, target_list_id, body)
    return respond(present.target_list(session, row))


@router.delete(ONE, name="delete_target_list", summary="Delete a target list",
               response_model=Envelope[TargetListPublic])
def delete_target_list(pipeline_id: UUID, target_list_id: UUID, session: SessionDep,
                       enterprise_id: EnterpriseDep) -> JSONResponse:
    """Detaches it from its stages too; the devices and groups stay."""
    row = target_lists.delete_target_list(session, enterprise_id, pipeline_id, target_list_id)
    return respond(present.target_list(session, row))


@router.get(ONE + "/targets", name="list_targets", summary="List a DEVICES list's devices",
            response_model=Envelope[ListContent[TargetPublic]])
def list_targets(pipeline_id: UUID, target_list_id: UUID, request: Request,
                 session: SessionDep, enterprise_id: EnterpriseDep,
                 paging: PagingDep) -> JSONResponse:
    page = target_lists.list_target_devices(session, enterprise_id, pipeline_id, target_list_id,
                                       limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count,
                        [present.target(link, device) for link, device in page.items], paging)


@router.post(ONE + "/targets", name="add_target", summary="Add a device to a DEVICES list",
             status_code=201, response_model=Envelope[TargetPublic])
def add_target(pipeline_id: UUID, target_list_id: UUID, body: target_lists.TargetCreate,
               session: SessionDep, enterprise_id: EnterpriseDep) -> JSONResponse:
    """`device_id`: one of the enterprise's devices. Adding it again changes nothing."""
    link = target_lists.add_target_device(session, enterprise_id, pipeline_id, target_list_id, body)
    device = devices.get_device(session, enterprise_id, link.device_id)
    return respond(present.target(link, device), 201)


@router.delete(ONE + "/targets/{target_id}", name="remove_target",
               summary="Remove a device from a DEVICES list",
               response_model=Envelope[TargetPublic])
def remove_target(pipeline_id: UUID, target_list_id: UUID, target_id: UUID,
                  session: SessionDep, enterprise_id: EnterpriseDep) -> JSONResponse:
    """`target_id`: the target's id, or the device's id."""
    link = target_lists.remove_target_device(session, enterprise_id, pipeline_id, target_list_id,
                                       target_id)
    return respond(present.target(link))


@router.get(ONE + "/devicegroups", name="list_target_groups",
            summary="List a GROUPS list's device groups",
            response_model=Envelope[ListContent[TargetGroupPublic]])
def list_target_groups(pipeline_id: UUID, target_list_id: UUID, request: Request,
                       session: SessionDep, enterprise_id: EnterpriseDep,
                       paging: PagingDep) -> JSONResponse:
    page = target_lists.list_target_groups(session, enterprise_id, pipeline_id, target_list_id,
                                      limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count,
                        [present.target_group(link, group) for link, group in page.items],
                        paging)


@router.post(ONE + "/devicegroups", name="add_target_group",
             summary="Add a device group to a GROUPS list", status_code=201,
             response_model=Envelope[TargetGroupPublic])
def add_target_group(pipeline_id: UUID, target_list_id: UUID, body: target_lists.TargetGroupCreate,
                     session: SessionDep, enterprise_id: EnterpriseDep) -> JSONResponse:
    """`device_group_id`: one of the enterprise's groups. It expands to its devices when a
    stage run starts."""
    link = target_lists.add_target_group(session, enterprise_id, pipeline_id, target_list_id, body)
    group = devices.get_device_group(session, enterprise_id, link.device_group_id)
    return respond(present.target_group(link, group), 201)


@router.delete(ONE + "/devicegroups/{device_group_id}", name="remove_target_group",
               summary="Remove a device group from a GROUPS list",
               response_model=Envelope[TargetGroupPublic])
def remove_target_group(pipeline_id: UUID, target_list_id: UUID, device_group_id: UUID,
                        session: SessionDep, enterprise_id: EnterpriseDep) -> JSONResponse:
    link = target_lists.remove_target_group(session, enterprise_id, pipeline_id, target_list_id,
                                      device_group_id)
    return respond(present.target_group(link))


@router.get(ONE + "/devicegroups/{device_group_id}/devices", name="list_target_group_devices",
            summary="List the devices of a group in a target list",
            response_model=Envelope[ListContent[DevicePublic]])
def list_target_group_devices(pipeline_id: UUID, target_list_id: UUID, device_group_id: UUID,
                              request: Request, session: SessionDep,
                              enterprise_id: EnterpriseDep, paging: PagingDep) -> JSONResponse:
    page = target_lists.list_target_group_devices(session, enterprise_id, pipeline_id,
                                             target_list_id, device_group_id,
                                             limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count, present.devices(session, page.items), paging)


@router.get("/stages/{stage_id}/targetlists", name="list_stage_target_lists",
            summary="List the target lists attached to a stage",
            response_model=Envelope[ListContent[TargetListPublic]])
def list_stage_target_lists(stage_id: UUID, request: Request, session: SessionDep,
                            enterprise_id: EnterpriseDep, paging: PagingDep) -> JSONResponse:
    page = target_lists.list_stage_target_lists(session, enterprise_id, stage_id,
                                           limit=paging.limit, offset=paging.offset)
    return respond_page(request, page.count, present.target_lists(session, page.items), paging)


@router.post("/stages/{stage_id}/targetlists", name="attach_target_list",
             summary="Attach a target list to a stage", status_code=201,
             response_model=Envelope[TargetListPublic])
def attach_target_list(stage_id: UUID, body: target_lists.StageTargetListAttach,
                       session: SessionDep, enterprise_id: EnterpriseDep) -> JSONResponse:
    """`target_list_id`: a list of the stage's pipeline. Attaching it again changes nothing."""
    row = target_lists.attach_target_list(session, enterprise_id, stage_id, body)
    return respond(present.target_list(session, row), 201)


@router.delete("/stages/{stage_id}/targetlists/{target_list_id}", name="detach_target_list",
               summary="Detach a target list from a stage",
               response_model=Envelope[TargetListPublic])
def detach_target_list(stage_id: UUID, target_list_id: UUID, session: SessionDep,
                       enterprise_id: EnterpriseDep) -> JSONResponse:
    """The list stays in the pipeline."""
    row = target_lists.detach_target_list(session, enterprise_id, stage_id, target_list_id)
    return respond(present.target_list(session, row))
