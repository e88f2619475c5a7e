"""Writes of the definitions operators make: devices, groups, pipelines and everything in them.

The input shapes (`XCreate` / `XUpdate`) live here beside the writes that take them. Each write
checks everything first (ownership, references, operation arguments, rollout settings), then
writes in one transaction and commits: a rejected request changes nothing.
Errors: `store.queries.NotFound` for an object addressed by the path, `InvalidDefinition`
(naming the field) for a bad value or a reference in the body that does not resolve.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import field_validator
from sqlalchemy import delete, func
from sqlmodel import Field, Session, SQLModel, col, select

from domain.operations import InvalidOperation, validate_operation
from domain.schemas import RolloutConfig, StageTrigger
from store.definitions import (
    Device,
    DeviceGroup,
    DeviceGroupMember,
    Operation,
    OperationList,
    Pipeline,
    Stage,
    StageTargetList,
    TargetList,
    TargetListDevice,
    TargetListGroup,
)
from store.queries import (
    NotFound,
    get_device,
    get_device_group,
    get_operation,
    get_operation_list,
    get_pipeline,
    get_stage,
    get_target_group,
    get_target_list,
)
from store.types import utcnow

TARGET_LIST_TYPES = ("DEVICES", "GROUPS")
NAME = Field(min_length=1, max_length=255)
DESCRIPTION_MAX = 10_000


class InvalidDefinition(ValueError):
    """A value the definition cannot take; `field` names it (dotted for nested input)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _lower_trigger(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


# ---- input shapes ----------------------------------------------------------------------------


class DeviceCreate(SQLModel):
    name: str = NAME
    alias: str = Field(default="", max_length=255)
    attributes: dict[str, str] = Field(
        default_factory=dict,
        description="Free-form labels. The simulated fleet reads sim_behavior "
        "(succeed | fail | offline) and sim_latency_ms.",
    )


class DeviceUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    alias: str | None = Field(default=None, max_length=255)
    attributes: dict[str, str] | None = None


class DeviceGroupCreate(SQLModel):
    name: str = NAME
    device_ids: list[UUID] = Field(default_factory=list, max_length=100_000)


class DeviceGroupUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    device_ids: list[UUID] | None = Field(
        default=None, max_length=100_000, description="Replaces the group's members when given."
    )


class OperationCreate(SQLModel):
    operation_type: str = Field(
        description="INSTALL, UNINSTALL, REBOOT, UPDATE_DEVICE_CONFIG, SET_APP_STATE or WIPE "
        "(any case)."
    )
    args: dict[str, Any] = Field(default_factory=dict)
    order: int | None = Field(default=None, ge=0, description="Default: after the last one.")


class OperationUpdate(SQLModel):
    operation_type: str | None = None
    args: dict[str, Any] | None = None
    order: int | None = Field(default=None, ge=0)


class StageFields(SQLModel):
    name: str = NAME
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    order: int | None = Field(default=None, ge=0, description="Default: after the last stage.")
    trigger: Literal["manual", "automatic"] | None = Field(
        default=None,
        description="manual (waits for a promotion) or automatic. Default: the first stage "
        "automatic, later stages manual.",
    )
    timeout_seconds: int | None = Field(
        default=None, ge=1, description="Bounds the stage run and each target run (default 7 days)."
    )
    rollout: RolloutConfig | None = Field(
        default=None, description="Rate, abort, retry and success-threshold controls."
    )

    _trigger_case = field_validator("trigger", mode="before")(_lower_trigger)


class StageCreate(StageFields):
    pass


class StageUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    order: int | None = Field(default=None, ge=0)
    trigger: Literal["manual", "automatic"] | None = None
    timeout_seconds: int | None = Field(default=None, ge=1)
    rollout: RolloutConfig | None = None

    _trigger_case = field_validator("trigger", mode="before")(_lower_trigger)


class NestedStageCreate(StageFields):
    """A stage with its targets and operations, for creating a whole pipeline at once."""

    device_ids: list[UUID] = Field(default_factory=list, max_length=100_000)
    device_group_ids: list[UUID] = Field(default_factory=list, max_length=10_000)
    operations: list[OperationCreate] = Field(default_factory=list, max_length=1000)


class PipelineCreate(SQLModel):
    name: str = NAME
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    timeout_seconds: int | None = Field(
        default=None, ge=1, description="Bounds a whole run, waiting included (default 21 days)."
    )
    stages: list[NestedStageCreate] | None = Field(
        default=None,
        max_length=100,
        description="Optional: the whole pipeline in one request (stages with their devices, "
        "device groups and operations). Validated whole before anything is written.",
    )


class PipelineUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    timeout_seconds: int | None = Field(default=None, ge=1)


class TargetListCreate(SQLModel):
    name: str = NAME
    target_list_type: Literal["DEVICES", "GROUPS"] = Field(
        default="DEVICES", description="DEVICES (holds devices) or GROUPS (holds device groups)."
    )

    _type_case = field_validator("target_list_type", mode="before")(_upper)


class TargetListUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)


class TargetCreate(SQLModel):
    device_id: UUID


class TargetGroupCreate(SQLModel):
    device_group_id: UUID


class StageTargetListAttach(SQLModel):
    target_list_id: UUID


class OperationListCreate(SQLModel):
    name: str = Field(default="", max_length=255)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    pipeline_id: UUID | None = Field(
        default=None, description="Optional; when given it must be the stage's pipeline."
    )


class OperationListUpdate(SQLModel):
    name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)


# ---- checks ------------------------------------------------------------------------------------


def _check_devices(session: Session, enterprise_id: UUID, device_ids: list[UUID],
                   field: str) -> list[UUID]:
    """Distinct device ids in first-seen order, every one the enterprise's."""
    unique = list(dict.fromkeys(device_ids))
    known: set[UUID] = set()
    for start in range(0, len(unique), 500):
        chunk = unique[start:start + 500]
        known.update(session.exec(
            select(Device.id).where(
                col(Device.id).in_(chunk), Device.enterprise_id == enterprise_id
            )
        ).all())
    missing = [device_id for device_id in unique if device_id not in known]
    if missing:
        shown = ", ".join(str(device_id) for device_id in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InvalidDefinition(field, f"{field}: unknown device id(s) {shown}{more}")
    return unique


def _check_groups(session: Session, enterprise_id: UUID, group_ids: list[UUID],
                  field: str) -> list[UUID]:
    unique = list(dict.fromkeys(group_ids))
    known = set(session.exec(
        select(DeviceGroup.id).where(
            col(DeviceGroup.id).in_(unique), DeviceGroup.enterprise_id == enterprise_id
        )
    ).all()) if unique else set()
    missing = [group_id for group_id in unique if group_id not in known]
    if missing:
        shown = ", ".join(str(group_id) for group_id in missing[:5])
        raise InvalidDefinition(field, f"{field}: unknown device group id(s) {shown}")
    return unique


def _check_operation(operation_type: str, args: dict[str, Any] | None,
                     field: str) -> tuple[str, dict]:
    try:
        return validate_operation(operation_type, args)
    except InvalidOperation as exc:
        full = f"{field}.{exc.field}" if field else exc.field
        message = str(exc) if str(exc).startswith(full) else f"{full}: {exc}"
        raise InvalidDefinition(full, message) from exc


def _rollout_dict(rollout: RolloutConfig | None) -> dict[str, Any]:
    return rollout.model_dump(mode="json") if rollout is not None else {}


def _touch(*rows: Any) -> None:
    now = utcnow()
    for row in rows:
        row.updated_at = now


def _apply(row: Any, changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        setattr(row, key, value)
    _touch(row)


# ---- devices and groups -------------------------------------------------------------------------


def create_device(session: Session, enterprise_id: UUID, data: DeviceCreate) -> Device:
    device = Device(enterprise_id=enterprise_id, **data.model_dump())
    session.add(device)
    session.commit()
    return device


def update_device(session: Session, enterprise_id: UUID, device_id: UUID,
                  data: DeviceUpdate) -> Device:
    device = get_device(session, enterprise_id, device_id)
    _apply(device, data.model_dump(exclude_unset=True, exclude_none=True))
    session.add(device)
    session.commit()
    return device


def delete_device(session: Session, enterprise_id: UUID, device_id: UUID) -> Device:
    """Removes the device from its groups and target lists too; runs keep their own copy."""
    device = get_device(session, enterprise_id, device_id)
    session.execute(delete(DeviceGroupMember).where(col(DeviceGroupMember.device_id) == device_id))
    session.execute(delete(TargetListDevice).where(col(TargetListDevice.device_id) == device_id))
    session.delete(device)
    session.commit()
    return device


def create_device_group(session: Session, enterprise_id: UUID,
                        data: DeviceGroupCreate) -> DeviceGroup:
    device_ids = _check_devices(session, enterprise_id, data.device_ids, "device_ids")
    group = DeviceGroup(enterprise_id=enterprise_id, name=data.name)
    session.add(group)
    session.flush()
    session.add_all(DeviceGroupMember(device_group_id=group.id, device_id=device_id)
                    for device_id in device_ids)
    session.commit()
    return group


def update_device_group(session: Session, enterprise_id: UUID, group_id: UUID,
                        data: DeviceGroupUpdate) -> DeviceGroup:
    group = get_device_group(session, enterprise_id, group_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    device_ids = changes.pop("device_ids", None)
    if device_ids is not None:
        device_ids = _check_devices(session, enterprise_id, device_ids, "device_ids")
        session.execute(
            delete(DeviceGroupMember).where(col(DeviceGroupMember.device_group_id) == group_id)
        )
        session.add_all(DeviceGroupMember(device_group_id=group_id, device_id=device_id)
                        for device_id in device_ids)
    _apply(group, changes)
    session.add(group)
    session.commit()
    return group


def delete_device_group(session: Session, enterprise_id: UUID, group_id: UUID) -> DeviceGroup:
    group = get_device_group(session, enterprise_id, group_id)
    session.execute(
        delete(DeviceGroupMember).where(col(DeviceGroupMember.device_group_id) == group_id)
    )
    session.execute(
        delete(TargetListGroup).where(col(TargetListGroup.device_group_id) == group_id)
    )
    session.delete(group)
    session.commit()
    return group


# ---- pipelines ---------------------------------------------------------------------------------


def create_pipeline(session: Session, enterprise_id: UUID, data: PipelineCreate) -> Pipeline:
    """A pipeline, and with `stages` given the whole of it: every stage, its devices and groups
    (as target lists attached to it) and its operations, all checked before the first write."""
    stages = data.stages or []
    checked: list[tuple[NestedStageCreate, list[UUID], list[UUID], list[tuple[str, dict]]]] = []
    for index, given in enumerate(stages):
        field = f"stages.{index}"
        device_ids = _check_devices(session, enterprise_id, given.device_ids,
                                    f"{field}.device_ids")
        group_ids = _check_groups(session, enterprise_id, given.device_group_ids,
                                  f"{field}.device_group_ids")
        operations = [
            _check_operation(op.operation_type, op.args, f"{field}.operations.{op_index}")
            for op_index, op in enumerate(given.operations)
        ]
        checked.append((given, device_ids, group_ids, operations))

    pipeline = Pipeline(enterprise_id=enterprise_id, name=data.name, description=data.description)
    if data.timeout_seconds is not None:
        pipeline.timeout_seconds = data.timeout_seconds
    session.add(pipeline)
    session.flush()
    for index, (stage_in, device_ids, group_ids, operations) in enumerate(checked):
        order = stage_in.order if stage_in.order is not None else index + 1
        stage = _new_stage(pipeline.id, stage_in, order=order, first=index == 0)
        session.add(stage)
        session.flush()
        if device_ids:
            _attach_new_list(session, pipeline.id, stage, "DEVICES", device_ids)
        if group_ids:
            _attach_new_list(session, pipeline.id, stage, "GROUPS", group_ids)
        if operations:
            operation_list = OperationList(pipeline_id=pipeline.id, stage_id=stage.id,
                                           name=f"{stage.name} operations")
            session.add(operation_list)
            session.flush()
            orders = [op.order if op.order is not None else op_index
                      for op_index, op in enumerate(stage_in.operations)]
            session.add_all(
                Operation(operation_list_id=operation_list.id, operation_type=op_type, args=args,
                          order=order)
                for (op_type, args), order in zip(operations, orders, strict=True)
            )
    session.commit()
    return pipeline


def _new_stage(pipeline_id: UUID, data: StageFields, *, order: int, first: bool) -> Stage:
    stage = Stage(
        pipeline_id=pipeline_id,
        name=data.name,
        description=data.description,
        order=order,
        trigger=data.trigger or (StageTrigger.AUTOMATIC if first else StageTrigger.MANUAL),
        rollout=_rollout_dict(data.rollout),
    )
    if data.timeout_seconds is not None:
        stage.timeout_seconds = data.timeout_seconds
    return stage


def _attach_new_list(session: Session, pipeline_id: UUID, stage: Stage, list_type: str,
                     member_ids: list[UUID]) -> None:
    target_list = TargetList(pipeline_id=pipeline_id, target_list_type=list_type,
                             name=f"{stage.name} {list_type.lower()}")
    session.add(target_list)
    session.flush()
    if list_type == "DEVICES":
        session.add_all(TargetListDevice(target_list_id=target_list.id, device_id=member_id)
                        for member_id in member_ids)
    else:
        session.add_all(TargetListGroup(target_list_id=target_list.id, device_group_id=member_id)
                        for member_id in member_ids)
    session.add(StageTargetList(stage_id=stage.id, target_list_id=target_list.id))


def update_pipeline(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                    data: PipelineUpdate) -> Pipeline:
    pipeline = get_pipeline(session, enterprise_id, pipeline_id)
    _apply(pipeline, data.model_dump(exclude_unset=True, exclude_none=True))
    session.add(pipeline)
    session.commit()
    return pipeline


def delete_pipeline(session: Session, enterprise_id: UUID, pipeline_id: UUID) -> Pipeline:
    """The definition and everything in it; its runs stay (they work on their own snapshot)."""
    pipeline = get_pipeline(session, enterprise_id, pipeline_id)
    stage_ids = select(Stage.id).where(Stage.pipeline_id == pipeline_id)
    list_ids = select(TargetList.id).where(TargetList.pipeline_id == pipeline_id)
    op_list_ids = select(OperationList.id).where(OperationList.pipeline_id == pipeline_id)
    session.execute(delete(Operation).where(col(Operation.operation_list_id).in_(op_list_ids)))
    session.execute(delete(OperationList).where(col(OperationList.pipeline_id) == pipeline_id))
    session.execute(delete(StageTargetList).where(col(StageTargetList.stage_id).in_(stage_ids)))
    session.execute(delete(StageTargetList).where(
        col(StageTargetList.target_list_id).in_(list_ids)))
    session.execute(delete(TargetListDevice).where(
        col(TargetListDevice.target_list_id).in_(list_ids)))
    session.execute(delete(TargetListGroup).where(
        col(TargetListGroup.target_list_id).in_(list_ids)))
    session.execute(delete(TargetList).where(col(TargetList.pipeline_id) == pipeline_id))
    session.execute(delete(Stage).where(col(Stage.pipeline_id) == pipeline_id))
    session.delete(pipeline)
    session.commit()
    return pipeline


# ---- stages ------------------------------------------------------------------------------------


def create_stage(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                 data: StageCreate) -> Stage:
    pipeline = get_pipeline(session, enterprise_id, pipeline_id)
    last, lowest = session.exec(
        select(func.max(Stage.order), func.min(Stage.order)).where(Stage.pipeline_id == pipeline_id)
    ).one()
    order = data.order if data.order is not None else (last + 1 if last is not None else 1)
    stage = _new_stage(pipeline_id, data, order=order, first=lowest is None or order < lowest)
    session.add(stage)
    _touch(pipeline)
    session.add(pipeline)
    session.commit()
    return stage


def update_stage(session: Session, enterprise_id: UUID, pipeline_id: UUID, stage_id: UUID,
                 data: StageUpdate) -> Stage:
    stage = get_stage(session, enterprise_id, stage_id, pipeline_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "rollout" in changes:
        changes["rollout"] = _rollout_dict(data.rollout)
    _apply(stage, changes)
    session.add(stage)
    session.commit()
    return stage


def delete_stage(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                 stage_id: UUID) -> Stage:
    """The stage, its links to target lists (the lists stay) and its operation lists."""
    stage = get_stage(session, enterprise_id, stage_id, pipeline_id)
    op_list_ids = select(OperationList.id).where(OperationList.stage_id == stage_id)
    session.execute(delete(Operation).where(col(Operation.operation_list_id).in_(op_list_ids)))
    session.execute(delete(OperationList).where(col(OperationList.stage_id) == stage_id))
    session.execute(delete(StageTargetList).where(col(StageTargetList.stage_id) == stage_id))
    session.delete(stage)
    session.commit()
    return stage


# ---- target lists ------------------------------------------------------------------------------


def create_target_list(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                       data: TargetListCreate) -> TargetList:
    get_pipeline(session, enterprise_id, pipeline_id)
    target_list = TargetList(pipeline_id=pipeline_id, **data.model_dump())
    session.add(target_list)
    session.commit()
    return target_list


def update_target_list(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                       target_list_id: UUID, data: TargetListUpdate) -> TargetList:
    target_list = get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    _apply(target_list, data.model_dump(exclude_unset=True, exclude_none=True))
    session.add(target_list)
    session.commit()
    return target_list


def delete_target_list(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                       target_list_id: UUID) -> TargetList:
    target_list = get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    session.execute(delete(StageTargetList).where(
        col(StageTargetList.target_list_id) == target_list_id))
    session.execute(delete(TargetListDevice).where(
        col(TargetListDevice.target_list_id) == target_list_id))
    session.execute(delete(TargetListGroup).where(
        col(TargetListGroup.target_list_id) == target_list_id))
    session.delete(target_list)
    session.commit()
    return target_list


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
    _check_devices(session, enterprise_id, [data.device_id], "device_id")
    existing = session.exec(select(TargetListDevice).where(
        TargetListDevice.target_list_id == target_list_id,
        TargetListDevice.device_id == data.device_id,
    )).first()
    if existing is not None:
        return existing  # adding a device twice is harmless: the list is a set
    target = TargetListDevice(target_list_id=target_list_id, device_id=data.device_id)
    session.add(target)
    _touch(target_list)
    session.add(target_list)
    session.commit()
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
    session.commit()
    return target


def add_target_group(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                     target_list_id: UUID, data: TargetGroupCreate) -> TargetListGroup:
    target_list = get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    _require_type(target_list, "GROUPS", "device_group_id")
    _check_groups(session, enterprise_id, [data.device_group_id], "device_group_id")
    existing = session.exec(select(TargetListGroup).where(
        TargetListGroup.target_list_id == target_list_id,
        TargetListGroup.device_group_id == data.device_group_id,
    )).first()
    if existing is not None:
        return existing
    link = TargetListGroup(target_list_id=target_list_id, device_group_id=data.device_group_id)
    session.add(link)
    _touch(target_list)
    session.add(target_list)
    session.commit()
    return link


def remove_target_group(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                        target_list_id: UUID, device_group_id: UUID) -> TargetListGroup:
    link = get_target_group(session, enterprise_id, pipeline_id, target_list_id, device_group_id)
    session.delete(link)
    session.commit()
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
        _touch(stage)
        session.add(stage)
        session.commit()
    return target_list


def detach_target_list(session: Session, enterprise_id: UUID, stage_id: UUID,
                       target_list_id: UUID) -> TargetList:
    get_stage(session, enterprise_id, stage_id)
    link = session.get(StageTargetList, (stage_id, target_list_id))
    if link is None:
        raise NotFound("target list", target_list_id)
    target_list = session.get(TargetList, target_list_id)
    session.delete(link)
    session.commit()
    assert target_list is not None
    return target_list


# ---- operation lists and operations ------------------------------------------------------------


def create_operation_list(session: Session, enterprise_id: UUID, stage_id: UUID,
                          data: OperationListCreate) -> OperationList:
    stage = get_stage(session, enterprise_id, stage_id)
    if data.pipeline_id is not None and data.pipeline_id != stage.pipeline_id:
        raise InvalidDefinition(
            "pipeline_id", f"pipeline_id {data.pipeline_id} is not the stage's pipeline "
            f"({stage.pipeline_id})",
        )
    operation_list = OperationList(pipeline_id=stage.pipeline_id, stage_id=stage_id,
                                   name=data.name, description=data.description)
    session.add(operation_list)
    session.commit()
    return operation_list


def update_operation_list(session: Session, enterprise_id: UUID, operation_list_id: UUID,
                          data: OperationListUpdate) -> OperationList:
    operation_list = get_operation_list(session, enterprise_id, operation_list_id)
    _apply(operation_list, data.model_dump(exclude_unset=True, exclude_none=True))
    session.add(operation_list)
    session.commit()
    return operation_list


def delete_operation_list(session: Session, enterprise_id: UUID,
                          operation_list_id: UUID) -> OperationList:
    operation_list = get_operation_list(session, enterprise_id, operation_list_id)
    session.execute(delete(Operation).where(
        col(Operation.operation_list_id) == operation_list_id))
    session.delete(operation_list)
    session.commit()
    return operation_list


def create_operation(session: Session, enterprise_id: UUID, operation_list_id: UUID,
                     data: OperationCreate) -> Operation:
    operation_list = get_operation_list(session, enterprise_id, operation_list_id)
    operation_type, args = _check_operation(data.operation_type, data.args, "")
    order = data.order
    if order is None:
        last = session.exec(select(func.max(Operation.order)).where(
            Operation.operation_list_id == operation_list_id)).one()
        order = last + 1 if last is not None else 0
    operation = Operation(operation_list_id=operation_list_id, operation_type=operation_type,
                          args=args, order=order)
    session.add(operation)
    _touch(operation_list)
    session.add(operation_list)
    session.commit()
    return operation


def update_operation(session: Session, enterprise_id: UUID, operation_list_id: UUID,
                     operation_id: UUID, data: OperationUpdate) -> Operation:
    operation = get_operation(session, enterprise_id, operation_list_id, operation_id)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    operation_type, args = _check_operation(
        changes.get("operation_type", operation.operation_type),
        changes.get("args", operation.args), "",
    )
    changes["operation_type"], changes["args"] = operation_type, args
    _apply(operation, changes)
    session.add(operation)
    session.commit()
    return operation


def delete_operation(session: Session, enterprise_id: UUID, operation_list_id: UUID,
                     operation_id: UUID) -> Operation:
    operation = get_operation(session, enterprise_id, operation_list_id, operation_id)
    session.delete(operation)
    session.commit()
    return operation


