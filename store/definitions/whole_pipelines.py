"""A pipeline as one whole: created in one request with its stages, their devices, groups and
operations (checked whole before the first write), and each stage shown with the target lists
and operation lists it links to."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlmodel import Field, Session, col, select

from domain.bounds import PipelineTimeout
from store.definitions.devices import check_devices, check_groups
from store.definitions.operation_lists import (
    Operation,
    OperationCreate,
    OperationList,
    check_operation,
)
from store.definitions.pipelines import Pipeline, PipelineBase, Stage, StageCreate, new_stage
from store.definitions.target_lists import (
    StageTargetList,
    TargetList,
    TargetListDevice,
    TargetListGroup,
)

MAX_STAGES = 100


class NestedStageCreate(StageCreate):
    """A stage with its targets and operations, for creating a whole pipeline at once."""

    device_ids: list[UUID] = Field(default_factory=list, max_length=100_000)
    device_group_ids: list[UUID] = Field(default_factory=list, max_length=10_000)
    operations: list[OperationCreate] = Field(default_factory=list, max_length=1000)


class PipelineCreate(PipelineBase):
    timeout_seconds: PipelineTimeout | None = Field(
        default=None,
        description="Bounds a whole run, waiting included (default 21 days, at most 3 years).",
    )
    stages: list[NestedStageCreate] | None = Field(
        default=None,
        max_length=MAX_STAGES,
        description="Optional: the whole pipeline in one request (stages with their devices, "
        "device groups and operations). Validated whole before anything is written.",
    )


def create_pipeline(session: Session, enterprise_id: UUID, data: PipelineCreate) -> Pipeline:
    """A pipeline, and with `stages` given the whole of it: every stage, its devices and groups
    (as target lists attached to it) and its operations, all checked before the first write."""
    stages = data.stages or []
    checked: list[tuple[NestedStageCreate, list[UUID], list[UUID], list[tuple[str, dict]]]] = []
    for index, given in enumerate(stages):
        field = f"stages.{index}"
        device_ids = check_devices(session, enterprise_id, given.device_ids,
                                   f"{field}.device_ids")
        group_ids = check_groups(session, enterprise_id, given.device_group_ids,
                                 f"{field}.device_group_ids")
        operations = [
            check_operation(op.operation_type, op.args, f"{field}.operations.{op_index}")
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
        stage = new_stage(pipeline.id, stage_in, order=order, first=index == 0)
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
    return pipeline


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


def stage_links(session: Session, stage_ids: Sequence[UUID]) -> dict[UUID, dict[str, list]]:
    """For each stage: its attached target list ids and its operation list ids (two queries)."""
    links: dict[UUID, dict[str, list]] = {
        stage_id: {"target_list_ids": [], "operation_list_ids": []} for stage_id in stage_ids
    }
    if not stage_ids:
        return links
    for stage_id, target_list_id in session.exec(
        select(StageTargetList.stage_id, StageTargetList.target_list_id).where(
            col(StageTargetList.stage_id).in_(list(stage_ids))
        )
    ).all():
        links[stage_id]["target_list_ids"].append(target_list_id)
    for stage_id, operation_list_id in session.exec(
        select(OperationList.stage_id, OperationList.id)
        .where(col(OperationList.stage_id).in_(list(stage_ids)))
        .order_by(col(OperationList.created_at), col(OperationList.id))
    ).all():
        links[stage_id]["operation_list_ids"].append(operation_list_id)
    return links
