"""Deleting a definition that others point at: a device or group leaves the groups and target
lists it is in; a stage goes with its operation lists and its links to target lists; a
pipeline goes with everything in it. Runs keep their own copy (their snapshot and rows)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import delete
from sqlmodel import Session, col, select

from store.definitions.devices import (
    Device,
    DeviceGroup,
    DeviceGroupMember,
    get_device,
    get_device_group,
)
from store.definitions.operation_lists import OperationList, remove_operation_lists
from store.definitions.pipelines import Pipeline, Stage, get_pipeline, get_stage
from store.definitions.target_lists import (
    StageTargetList,
    TargetList,
    TargetListDevice,
    TargetListGroup,
    empty_lists,
)


def delete_device(session: Session, enterprise_id: UUID, device_id: UUID) -> Device:
    """Removes the device from its groups and target lists too; runs keep their own copy."""
    device = get_device(session, enterprise_id, device_id)
    session.execute(delete(DeviceGroupMember).where(col(DeviceGroupMember.device_id) == device_id))
    session.execute(delete(TargetListDevice).where(col(TargetListDevice.device_id) == device_id))
    session.delete(device)
    return device


def delete_device_group(session: Session, enterprise_id: UUID, group_id: UUID) -> DeviceGroup:
    group = get_device_group(session, enterprise_id, group_id)
    session.execute(
        delete(DeviceGroupMember).where(col(DeviceGroupMember.device_group_id) == group_id)
    )
    session.execute(
        delete(TargetListGroup).where(col(TargetListGroup.device_group_id) == group_id)
    )
    session.delete(group)
    return group


def delete_stage(session: Session, enterprise_id: UUID, pipeline_id: UUID,
                 stage_id: UUID) -> Stage:
    """The stage, its links to target lists (the lists stay) and its operation lists."""
    stage = get_stage(session, enterprise_id, stage_id, pipeline_id)
    remove_operation_lists(session, col(OperationList.stage_id) == stage_id)
    session.execute(delete(StageTargetList).where(col(StageTargetList.stage_id) == stage_id))
    session.delete(stage)
    return stage


def delete_pipeline(session: Session, enterprise_id: UUID, pipeline_id: UUID) -> Pipeline:
    """The definition and everything in it; its runs stay (they work on their own snapshot)."""
    pipeline = get_pipeline(session, enterprise_id, pipeline_id)
    stage_ids = select(Stage.id).where(Stage.pipeline_id == pipeline_id)
    remove_operation_lists(session, col(OperationList.pipeline_id) == pipeline_id)
    session.execute(delete(StageTargetList).where(col(StageTargetList.stage_id).in_(stage_ids)))
    empty_lists(session, select(TargetList.id).where(TargetList.pipeline_id == pipeline_id))
    session.execute(delete(TargetList).where(col(TargetList.pipeline_id) == pipeline_id))
    session.execute(delete(Stage).where(col(Stage.pipeline_id) == pipeline_id))
    session.delete(pipeline)
    return pipeline
