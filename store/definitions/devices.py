"""Devices and device groups: their families, reads and writes.

Deleting either also takes it out of target lists: see `store.definitions.removal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import Column, delete, func
from sqlmodel import Field, Session, SQLModel, col, select

from store.definitions.fields import InvalidDefinition, apply_changes, name_field, text_field
from store.paging import Page, page
from store.shapes import Public, stamp
from store.tenancy import owned, scoped
from store.types import JSONType

MAX_MEMBERS = 100_000


class _Keys(SQLModel):
    id: UUID


# ---- devices -----------------------------------------------------------------------------------


class DeviceBase(SQLModel):
    name: str = name_field(index=True)
    alias: str = text_field(255)
    attributes: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSONType),
        description="Free-form labels. The simulated fleet reads sim_behavior "
        "(succeed | fail | offline) and sim_latency_ms.",
    )


class DeviceCreate(DeviceBase):
    pass


class DeviceUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    alias: str | None = Field(default=None, max_length=255)
    attributes: dict[str, str] | None = None


class Device(DeviceBase, table=True):
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    enterprise_id: UUID = Field(foreign_key="enterprise.id", index=True)
    created_at: datetime = stamp()
    updated_at: datetime = stamp()


class DevicePublic(DeviceBase, _Keys, Public):
    group_ids: list[UUID] = Field(default_factory=list, description="The groups it belongs to.")
    created_at: datetime
    updated_at: datetime


def get_device(session: Session, enterprise_id: UUID, device_id: UUID) -> Device:
    return owned(session, Device, device_id, enterprise_id, "device")


def list_devices(
    session: Session, enterprise_id: UUID, *, name: str | None = None, limit: int, offset: int
) -> Page[Device]:
    stmt = scoped(Device, enterprise_id)
    if name:
        stmt = stmt.where(Device.name == name)
    return page(session, stmt, [col(Device.name), col(Device.id)], limit, offset)


def check_devices(session: Session, enterprise_id: UUID, device_ids: list[UUID],
                  field: str) -> list[UUID]:
    """Distinct device ids in first-seen order, every one the enterprise's."""
    unique = list(dict.fromkeys(device_ids))
    known: set[UUID] = set()
    for start in range(0, len(unique), 500):
        chunk = unique[start:start + 500]
        known.update(session.exec(
            scoped(Device, enterprise_id, Device.id).where(col(Device.id).in_(chunk))
        ).all())
    missing = [device_id for device_id in unique if device_id not in known]
    if missing:
        shown = ", ".join(str(device_id) for device_id in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InvalidDefinition(field, f"{field}: unknown device id(s) {shown}{more}")
    return unique


def create_device(session: Session, enterprise_id: UUID, data: DeviceCreate) -> Device:
    device = Device(enterprise_id=enterprise_id, **data.model_dump())
    session.add(device)
    return device


def update_device(session: Session, enterprise_id: UUID, device_id: UUID,
                  data: DeviceUpdate) -> Device:
    device = get_device(session, enterprise_id, device_id)
    apply_changes(device, data.model_dump(exclude_unset=True, exclude_none=True))
    session.add(device)
    return device


# ---- device groups -----------------------------------------------------------------------------


class DeviceGroupBase(SQLModel):
    name: str = name_field()


class DeviceGroupCreate(DeviceGroupBase):
    device_ids: list[UUID] = Field(default_factory=list, max_length=MAX_MEMBERS)


class DeviceGroupUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    device_ids: list[UUID] | None = Field(
        default=None, max_length=MAX_MEMBERS, description="Replaces the group's members when given."
    )


class DeviceGroup(DeviceGroupBase, table=True):
    __tablename__ = "device_group"
    id: UUID = Field(default_factory=uuid4, primary_key=True)
    enterprise_id: UUID = Field(foreign_key="enterprise.id", index=True)
    created_at: datetime = stamp()
    updated_at: datetime = stamp()


class DeviceGroupPublic(DeviceGroupBase, _Keys, Public):
    device_count: int = 0
    device_ids: list[UUID] | None = Field(
        default=None, description="The members (on a single group; lists show device_count).")
    created_at: datetime
    updated_at: datetime


class DeviceGroupMember(SQLModel, table=True):
    __tablename__ = "device_group_member"
    device_group_id: UUID = Field(foreign_key="device_group.id", primary_key=True)
    device_id: UUID = Field(foreign_key="device.id", primary_key=True, index=True)


def get_device_group(session: Session, enterprise_id: UUID, group_id: UUID) -> DeviceGroup:
    return owned(session, DeviceGroup, group_id, enterprise_id, "device group")


def list_device_groups(
    session: Session, enterprise_id: UUID, *, limit: int, offset: int
) -> Page[DeviceGroup]:
    stmt = scoped(DeviceGroup, enterprise_id)
    return page(session, stmt, [col(DeviceGroup.name), col(DeviceGroup.id)], limit, offset)


def device_group_ids(session: Session, device_ids: Sequence[UUID]) -> dict[UUID, list[UUID]]:
    """Each device's groups, for a page of devices (one query)."""
    found: dict[UUID, list[UUID]] = {device_id: [] for device_id in device_ids}
    if not device_ids:
        return found
    rows = session.exec(
        select(DeviceGroupMember.device_id, DeviceGroupMember.device_group_id).where(
            col(DeviceGroupMember.device_id).in_(list(device_ids))
        )
    ).all()
    for device_id, group_id in rows:
        found[device_id].append(group_id)
    return found


def group_member_counts(session: Session, group_ids: Sequence[UUID]) -> dict[UUID, int]:
    counts: dict[UUID, int] = {group_id: 0 for group_id in group_ids}
    if not group_ids:
        return counts
    rows = session.exec(
        select(DeviceGroupMember.device_group_id, func.count())
        .where(col(DeviceGroupMember.device_group_id).in_(list(group_ids)))
        .group_by(col(DeviceGroupMember.device_group_id))
    ).all()
    counts.update({group_id: count for group_id, count in rows})
    return counts


def group_member_ids(session: Session, group_id: UUID) -> list[UUID]:
    return list(
        session.exec(
            select(DeviceGroupMember.device_id)
            .where(DeviceGroupMember.device_group_id == group_id)
            .order_by(col(DeviceGroupMember.device_id))
        ).all()
    )


def list_group_devices(
    session: Session, enterprise_id: UUID, group_id: UUID, *, limit: int, offset: int
) -> Page[Device]:
    get_device_group(session, enterprise_id, group_id)
    stmt = (
        select(Device)
        .join(DeviceGroupMember, col(DeviceGroupMember.device_id) == col(Device.id))
        .where(DeviceGroupMember.device_group_id == group_id)
    )
    return page(session, stmt, [col(Device.name), col(Device.id)], limit, offset)


def check_groups(session: Session, enterprise_id: UUID, group_ids: list[UUID],
                 field: str) -> list[UUID]:
    """Distinct group ids in first-seen order, every one the enterprise's."""
    unique = list(dict.fromkeys(group_ids))
    known = set(session.exec(
        scoped(DeviceGroup, enterprise_id, DeviceGroup.id).where(col(DeviceGroup.id).in_(unique))
    ).all()) if unique else set()
    missing = [group_id for group_id in unique if group_id not in known]
    if missing:
        shown = ", ".join(str(group_id) for group_id in missing[:5])
        raise InvalidDefinition(field, f"{field}: unknown device group id(s) {shown}")
    return unique


def _members(group_id: UUID, device_ids: list[UUID]) -> list[DeviceGroupMember]:
    return [DeviceGroupMember(device_group_id=group_id, device_id=device_id)
            for device_id in device_ids]


def create_device_group(session: Session, enterprise_id: UUID,
                        data: DeviceGroupCreate) -> DeviceGroup:
    device_ids = check_devices(session, enterprise_id, data.device_ids, "device_ids")
    group = DeviceGroup(enterprise_id=enterprise_id, name=data.name)
    session.add(group)
    session.flush()
    session.add_all(_members(group.id, device_ids))
    return group


def update_device_group(session: Session, enterprise_id: UUID, group_id: UUID,
                        data: DeviceGroupUpdate) -> DeviceGroup:
    group = get_device_group(session, enterprise_id, group_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    device_ids = changes.pop("device_ids", None)
    if device_ids is not None:
        device_ids = check_devices(session, enterprise_id, device_ids, "device_ids")
        session.execute(
            delete(DeviceGroupMember).where(col(DeviceGroupMember.device_group_id) == group_id)
        )
        session.add_all(_members(group_id, device_ids))
    apply_changes(group, changes)
    session.add(group)
    return group
