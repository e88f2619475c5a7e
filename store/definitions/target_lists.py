"""Target lists of a pipeline: DEVICES lists hold devices, GROUPS lists hold device groups,
and a stage runs on the lists attached to it. Families, reads and writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import field_validator
from sqlalchemy import UniqueConstraint, delete, func
from sqlmodel import Field, Session, SQLModel, col, select

from store.definitions.devices import (
    Device,
    DeviceGroup,
    check_devices,
    check_groups,
    list_group_devices,
)
from store.definitions.fields import InvalidDefinition, apply_changes, name_field, touch, upper
from store.definitions.pipelines import get_pipeline, get_stage
from store.paging import Page, page
from store.shapes import Public, one_of, stamp
from store.tenancy import NotFound, owned, owner_key, scoped

# ---- target lists ------------------------------------------------------------------------------

TARGET_LIST_TYPES = ("DEVICES", "GROUPS")


class TargetListBase(SQLModel):
    name: str = name_field()


class TargetListCreate(TargetListBase):
    target_list_type: Literal["DEVICES", "GROUPS"] = Field(
        default="DEVICES", description="DEVICES (holds devices) or GROUPS (holds device groups)."
    )

    _type_case = field_validator("target_list_type", mode="before")(upper)


class TargetListUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)


class TargetList(TargetListBase, table=True):
    __tablename__ = "target_list"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    pipeline_id: UUID = owner_key("pipeline.id", index=True)
    target_list_type: str = "DEVICES"  # DEVICES or GROUPS
    created_at: datetime = stamp()
    updated_at: datetime = stamp()


class _ListKeys(SQLModel):
    id: UUID
    pipeline_id: UUID


class TargetListPublic(TargetListBase, _ListKeys, Public):
    target_list_type: str = one_of(TARGET_LIST_TYPES, "DEVICES or GROUPS")
    size: int = Field(default=0, description="Devices (DEVICES) or groups (GROUPS) it holds.")
    created_at: datetime
    updated_at: datetime


class StageTargetList(SQLModel, table=True):
    __tablename__ = "stage_target_list"
    stage_id: UUID = Field(foreign_key="stage.id", primary_key=True)
    target_list_id: UUID = Field(foreign_key="target_list.id", primary_key=True)


class StageTargetListAttach(SQLModel):
    target_list_id: UUID


# ---- what a list holds -------------------------------------------------------------------------


class _MemberKeys(SQLModel):
    id: UUID
    target_list_id: UUID


class TargetBase(SQLModel):
    device_id: UUID = Field(foreign_key="device.id")


class TargetCreate(TargetBase):
    pass


class TargetListDevice(TargetBase, table=True):
    __tablename__ = "target_list_device"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    target_list_id: UUID = owner_key("target_list.id", index=True)
    created_at: datetime = stamp()
    __table_args__ = (UniqueConstraint("target_list_id", "device_id"),)


class TargetPublic(TargetBase, _MemberKeys, Public):
    device_name: str = ""
    device_alias: str = ""
    created_at: datetime


class TargetGroupBase(SQLModel):
    device_group_id: UUID = Field(foreign_key="device_group.id")


class TargetGroupCreate(TargetGroupBase):
    pass


class TargetListGroup(TargetGroupBase, table=True):
    __tablename__ = "target_list_group"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    target_list_id: UUID = owner_key("target_list.id", index=True)
    created_at: datetime = stamp()
    __table_args__ = (UniqueConstraint("target_list_id", "device_group_id"),)


class TargetGroupPublic(TargetGroupBase, _MemberKeys, Public):
    name: str = ""
    created_at: datetime


# ---- reads -------------------------------------------------------------------------------------


def get_target_list(
    session: Session, enterprise_id: UUID, target_list_id: UUID, pipeline_id: UUID | None = None
) -> TargetList:
    return owned(session, TargetList, target_list_id, enterprise_id, "target list",
                 pipeline_id=pipeline_id)


def list_target_lists(
    session: Session, enterprise_id: UUID, pipeline_id: UUID, *, limit: int, offset: int
) -> Page[TargetList]:
    get_pipeline(session, enterprise_id, pipeline_id)
    stmt = select(TargetList).where(TargetList.pipeline_id == pipeline_id)
    return page(session, stmt, [col(TargetList.created_at), col(TargetList.id)], limit, offset)


def target_list_sizes(session: Session, target_list_ids: Sequence[UUID]) -> dict[UUID, int]:
    """How many devices (DEVICES lists) or groups (GROUPS lists) each list holds."""
    sizes: dict[UUID, int] = {list_id: 0 for list_id in target_list_ids}
    if not target_list_ids:
        return sizes
    for table in (TargetListDevice, TargetListGroup):
        rows = session.exec(
            select(table.target_list_id, func.count())  # type: ignore[attr-defined]
            .where(col(table.target_list_id).in_(list(target_list_ids)))  # type: ignore[attr-defined]
            .group_by(col(table.target_list_id))  # type: ignore[attr-defined]
        ).all()
        for list_id, count in rows:
            sizes[list_id] += count
    return sizes


def list_stage_target_lists(
    session: Session, enterprise_id: UUID, stage_id: UUID, *, limit: int, offset: int
) -> Page[TargetList]:
    get_stage(session, enterprise_id, stage_id)
    stmt = (
        select(TargetList)
        .join(StageTargetList, col(StageTargetList.target_list_id) == col(TargetList.id))
        .where(StageTargetList.stage_id == stage_id)
    )
    return page(session, stmt, [col(TargetList.created_at), col(TargetList.id)], limit, offset)


def list_target_devices(
    session: Session, enterprise_id: UUID, pipeline_id: UUID, target_list_id: UUID, *,
    limit: int, offset: int,
) -> Page[tuple[TargetListDevice, Device]]:
    get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    stmt = (
        select(TargetListDevice, Device)
        .join(Device, col(Device.id) == col(TargetListDevice.device_id))
        .where(TargetListDevice.target_list_id == target_list_id)
    )
    return page(session, stmt, [col(TargetListDevice.created_at), col(TargetListDevice.id)],
                limit, offset)


def list_target_groups(
    session: Session, enterprise_id: UUID, pipeline_id: UUID, target_list_id: UUID, *,
    limit: int, offset: int,
) -> Page[tuple[TargetListGroup, DeviceGroup]]:
    get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    stmt = (
        select(TargetListGroup, DeviceGroup)
        .join(DeviceGroup, col(DeviceGroup.id) == col(TargetListGroup.device_group_id))
        .where(TargetListGroup.target_list_id == target_list_id)
    )
    return page(session, stmt, [col(TargetListGroup.created_at), col(TargetListGroup.id)],
                limit, offset)


def get_target_group(
    session: Session, enterprise_id: UUID, pipeline_id: UUID, target_list_id: UUID,
    device_group_id: UUID,
) -> TargetListGroup:
    """A group in a target list, by the group's id (as in the Esper paths)."""
    get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    link = session.exec(scoped(TargetListGroup, enterprise_id).where(
        TargetListGroup.target_list_id == target_list_id,
        TargetListGroup.device_group_id == device_group_id,
    )).first()
    if link is None:
        raise NotFound("device group", device_group_id)
    return link


def list_target_group_devices(
    session: Session, enterprise_id: UUID, pipeline_id: UUID, target_list_id: UUID,
    device_group_id: UUID, *, limit: int, offset: int,
) -> Page[Device]:
    get_target_group(session, enterprise_id, pipeline_id, target_list_id, device_group_id)
    return list_group_devices(session, enterprise_id, device_group_id, limit=limit, offset=offset)


# ---- writes ------------------------------------------------------------------------------------


def create_target_list(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                       data: TargetListCreate) -> TargetList:
    get_pipeline(session, enterprise_id, pipeline_id)
    target_list = TargetList(pipeline_id=pipeline_id, **data.model_dump())
    session.add(target_list)
    return target_list


def update_target_list(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                       target_list_id: UUID, data: TargetListUpdate) -> TargetList:
    target_list = get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    apply_changes(target_list, data.model_dump(exclude_unset=True, exclude_none=True))
    session.add(target_list)
    return target_list


def delete_target_list(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                       target_list_id: UUID) -> TargetList:
    target_list = get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    empty_lists(session, [target_list_id])
    session.delete(target_list)
    return target_list


def empty_lists(session: Session, list_ids: Any) -> None:
    """Take out everything in these target lists (ids, or a select of them), and detach
    them from their stages."""
    for table in (StageTargetList, TargetListDevice, TargetListGroup):
        session.execute(delete(table).where(
            col(table.target_list_id).in_(list_ids)))  # type: ignore[attr-defined]


def _require_type(target_list: TargetList, wanted: str, field: str) -> None:
    if target_list.target_list_type != wanted:
        raise InvalidDefinition(
            field,
            f"target list {target_list.id} is of type {target_list.target_list_type}; "
            f"{field} can only be added to a {wanted} list",
        )


def add_target_device(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                      target_list_id: UUID, data: TargetCreate) -> TargetListDevice:
    target_list = get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    _require_type(target_list, "DEVICES", "device_id")
    check_devices(session, enterprise_id, [data.device_id], "device_id")
    existing = session.exec(select(TargetListDevice).where(
        TargetListDevice.target_list_id == target_list_id,
        TargetListDevice.device_id == data.device_id,
    )).first()
    if existing is not None:
        return existing  # adding a device twice is harmless: the list is a set
    target = TargetListDevice(target_list_id=target_list_id, device_id=data.device_id)
    session.add(target)
    touch(target_list)
    session.add(target_list)
    return target


def remove_target_device(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                         target_list_id: UUID, target_id: UUID) -> TargetListDevice:
    """By the target's id, or by the device's id (both identify one row of a DEVICES list)."""
    get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    target = session.get(TargetListDevice, target_id)
    if target is None or target.target_list_id != target_list_id:
        target = session.exec(select(TargetListDevice).where(
            TargetListDevice.target_list_id == target_list_id,
            TargetListDevice.device_id == target_id,
        )).first()
    if target is None:
        raise NotFound("target", target_id)
    session.delete(target)
    return target


def add_target_group(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                     target_list_id: UUID, data: TargetGroupCreate) -> TargetListGroup:
    target_list = get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    _require_type(target_list, "GROUPS", "device_group_id")
    check_groups(session, enterprise_id, [data.device_group_id], "device_group_id")
    existing = session.exec(select(TargetListGroup).where(
        TargetListGroup.target_list_id == target_list_id,
        TargetListGroup.device_group_id == data.device_group_id,
    )).first()
    if existing is not None:
        return existing
    link = TargetListGroup(target_list_id=target_list_id, device_group_id=data.device_group_id)
    session.add(link)
    touch(target_list)
    session.add(target_list)
    return link


def remove_target_group(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                        target_list_id: UUID, device_group_id: UUID) -> TargetListGroup:
    link = get_target_group(session, enterprise_id, pipeline_id, target_list_id, device_group_id)
    session.delete(link)
    return link


def attach_target_list(session: Session, enterprise_id: UUID, stage_id: UUID,
                       data: StageTargetListAttach) -> TargetList:
    stage = get_stage(session, enterprise_id, stage_id)
    target_list = session.get(TargetList, data.target_list_id)
    if target_list is None or target_list.pipeline_id != stage.pipeline_id:
        raise InvalidDefinition(
            "target_list_id",
            f"target_list_id: no target list {data.target_list_id} in this stage's pipeline",
        )
    existing = session.get(StageTargetList, (stage_id, target_list.id))
    if existing is None:
        session.add(StageTargetList(stage_id=stage_id, target_list_id=target_list.id))
        touch(stage)
        session.add(stage)
    return target_list


def detach_target_list(session: Session, enterprise_id: UUID, stage_id: UUID,
                       target_list_id: UUID) -> TargetList:
    get_stage(session, enterprise_id, stage_id)
    link = session.get(StageTargetList, (stage_id, target_list_id))
    if link is None:
        raise NotFound("target list", target_list_id)
    target_list = session.get(TargetList, target_list_id)
    session.delete(link)
    assert target_list is not None
    return target_list
