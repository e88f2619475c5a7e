"""Reads for the API: one object scoped to its enterprise, or a filtered, ordered page of them.

Every function takes the caller's enterprise id and treats another enterprise's object exactly
like a missing one (`NotFound`), so the API answers 404 and never tells them apart.
Lists are served from the read model the workflows record (never from Temporal), with a
stable order (every ordering ends on the id) so pages never skip or repeat a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import Row, case, delete, func
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from domain.statuses import STATUSES, RunKind, is_terminal
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
from store.runs import (
    Command,
    CommandEvent,
    PipelineRun,
    StageRun,
    StageRunOperation,
    StatusEvent,
    TargetRun,
)

T = TypeVar("T")


class NotFound(LookupError):
    """No such object in the caller's enterprise (missing, or another enterprise's)."""

    def __init__(self, kind: str, object_id: UUID | str) -> None:
        super().__init__(f"{kind} {object_id} not found")
        self.kind = kind
        self.object_id = str(object_id)


class InvalidQuery(ValueError):
    """A filter or ordering the list does not support; names the parameter and allowed values."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class RunNotTerminal(ValueError):
    """A pipeline run that may not be deleted yet: it has not reached a terminal status."""

    def __init__(self, run_id: UUID, status: str) -> None:
        super().__init__(
            f"pipeline run {run_id} is {status}; only a finished run (success, failure, "
            "cancelled, invalid or timeout) can be deleted"
        )
        self.status = status


@dataclass
class Page(Generic[T]):
    count: int
    items: list[T]


@dataclass
class StageRunRow:
    """A stage run with the per-status counts of its target runs."""

    stage_run: StageRun
    target_run_counts: dict[str, int]


# ---- helpers ---------------------------------------------------------------------------------


def _page(session: Session, stmt: Any, order_by: Sequence[Any], limit: int, offset: int,
          *, plain_rows: bool = False) -> Page:
    """One page and the total count. `plain_rows`: a select of table columns run on the
    connection, skipping the ORM's result machinery (Rows, not instances)."""
    count = session.exec(select(func.count()).select_from(stmt.order_by(None).subquery())).one()
    paged = stmt.order_by(*order_by).limit(limit).offset(offset)
    result: Any
    if plain_rows:
        result = session.connection().execute(paged)
    else:
        result = session.exec(paged)
    return Page(count=count, items=list(result.all()))


def _status_rank(column: Any, kind: RunKind) -> ColumnElement[int]:
    """A status's position along its lifecycle, so `ordering=status` reads pending -> timeout."""
    return case({status: index for index, status in enumerate(STATUSES[kind])}, value=column,
                else_=len(STATUSES[kind]))


def _ordering(
    ordering: str | None,
    columns: dict[str, Any],
    default: Sequence[Any],
    tiebreak: Any,
    then: Sequence[Any] = (),
) -> list[Any]:
    """ORDER BY terms for an `ordering` value (`field` or `-field`); NULLs always last. Ties
    fall back to `then` and finally the unique `tiebreak`, in the same direction."""
    if not ordering:
        return [*default, tiebreak]
    name = ordering.strip()
    descending = name.startswith("-")
    key = name.lstrip("-")
    if key not in columns:
        allowed = ", ".join(f"{n}, -{n}" for n in columns)
        raise InvalidQuery(
            "ordering", f"ordering {ordering!r} is not supported; allowed: {allowed}"
        )
    column = columns[key]
    term = column.desc() if descending else column.asc()
    # NULL started_at / ended_at (not yet started or ended) sort last in both directions.
    rest = [*then, tiebreak]
    return [term.nulls_last(), *(c.desc() if descending else c.asc() for c in rest)]


# ---- definitions -------------------------------------------------------------------------------


def get_device(session: Session, enterprise_id: UUID, device_id: UUID) -> Device:
    device = session.get(Device, device_id)
    if device is None or device.enterprise_id != enterprise_id:
        raise NotFound("device", device_id)
    return device


def list_devices(
    session: Session, enterprise_id: UUID, *, name: str | None = None, limit: int, offset: int
) -> Page[Device]:
    stmt = select(Device).where(Device.enterprise_id == enterprise_id)
    if name:
        stmt = stmt.where(Device.name == name)
    return _page(session, stmt, [col(Device.name), col(Device.id)], limit, offset)


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


def get_device_group(session: Session, enterprise_id: UUID, group_id: UUID) -> DeviceGroup:
    group = session.get(DeviceGroup, group_id)
    if group is None or group.enterprise_id != enterprise_id:
        raise NotFound("device group", group_id)
    return group


def list_device_groups(
    session: Session, enterprise_id: UUID, *, limit: int, offset: int
) -> Page[DeviceGroup]:
    stmt = select(DeviceGroup).where(DeviceGroup.enterprise_id == enterprise_id)
    return _page(session, stmt, [col(DeviceGroup.name), col(DeviceGroup.id)], limit, offset)


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
    return _page(session, stmt, [col(Device.name), col(Device.id)], limit, offset)


def get_pipeline(session: Session, enterprise_id: UUID, pipeline_id: UUID) -> Pipeline:
    pipeline = session.get(Pipeline, pipeline_id)
    if pipeline is None or pipeline.enterprise_id != enterprise_id:
        raise NotFound("pipeline", pipeline_id)
    return pipeline


_PIPELINE_ORDERING = {
    "name": col(Pipeline.name),
    "created_at": col(Pipeline.created_at),
    "updated_at": col(Pipeline.updated_at),
}


def list_pipelines(
    session: Session,
    enterprise_id: UUID,
    *,
    name: str | None = None,
    ordering: str | None = None,
    limit: int,
    offset: int,
) -> Page[Pipeline]:
    stmt = select(Pipeline).where(Pipeline.enterprise_id == enterprise_id)
    if name:
        stmt = stmt.where(Pipeline.name == name)
    order = _ordering(ordering, _PIPELINE_ORDERING, [col(Pipeline.created_at).desc()],
                      col(Pipeline.id))
    return _page(session, stmt, order, limit, offset)


def get_stage(
    session: Session, enterprise_id: UUID, stage_id: UUID, pipeline_id: UUID | None = None
) -> Stage:
    stage = session.get(Stage, stage_id)
    if stage is None or (pipeline_id is not None and stage.pipeline_id != pipeline_id):
        raise NotFound("stage", stage_id)
    pipeline = session.get(Pipeline, stage.pipeline_id)
    if pipeline is None or pipeline.enterprise_id != enterprise_id:
        raise NotFound("stage", stage_id)
    return stage


def list_stages(
    session: Session, enterprise_id: UUID, pipeline_id: UUID, *, limit: int, offset: int
) -> Page[Stage]:
    get_pipeline(session, enterprise_id, pipeline_id)
    stmt = select(Stage).where(Stage.pipeline_id == pipeline_id)
    return _page(session, stmt, [col(Stage.order), col(Stage.created_at), col(Stage.id)],
                 limit, offset)


def stages_of(session: Session, pipeline_id: UUID) -> list[Stage]:
    return list(
        session.exec(
            select(Stage)
            .where(Stage.pipeline_id == pipeline_id)
            .order_by(col(Stage.order), col(Stage.created_at), col(Stage.id))
        ).all()
    )


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


def get_target_list(
    session: Session, enterprise_id: UUID, target_list_id: UUID, pipeline_id: UUID | None = None
) -> TargetList:
    target_list = session.get(TargetList, target_list_id)
    if target_list is None or (
        pipeline_id is not None and target_list.pipeline_id != pipeline_id
    ):
        raise NotFound("target list", target_list_id)
    pipeline = session.get(Pipeline, target_list.pipeline_id)
    if pipeline is None or pipeline.enterprise_id != enterprise_id:
        raise NotFound("target list", target_list_id)
    return target_list


def list_target_lists(
    session: Session, enterprise_id: UUID, pipeline_id: UUID, *, limit: int, offset: int
) -> Page[TargetList]:
    get_pipeline(session, enterprise_id, pipeline_id)
    stmt = select(TargetList).where(TargetList.pipeline_id == pipeline_id)
    return _page(session, stmt, [col(TargetList.created_at), col(TargetList.id)], limit, offset)


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
    return _page(session, stmt, [col(TargetList.created_at), col(TargetList.id)], limit, offset)


def list_target_devices(
    session: Session,
    enterprise_id: UUID,
    pipeline_id: UUID,
    target_list_id: UUID,
    *,
    limit: int,
    offset: int,
) -> Page[tuple[TargetListDevice, Device]]:
    get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    stmt = (
        select(TargetListDevice, Device)
        .join(Device, col(Device.id) == col(TargetListDevice.device_id))
        .where(TargetListDevice.target_list_id == target_list_id)
    )
    return _page(session, stmt, [col(TargetListDevice.created_at), col(TargetListDevice.id)],
                 limit, offset)


def get_target_device(
    session: Session, enterprise_id: UUID, pipeline_id: UUID, target_list_id: UUID,
    target_id: UUID,
) -> TargetListDevice:
    get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    target = session.get(TargetListDevice, target_id)
    if target is None or target.target_list_id != target_list_id:
        raise NotFound("target", target_id)
    return target


def list_target_groups(
    session: Session,
    enterprise_id: UUID,
    pipeline_id: UUID,
    target_list_id: UUID,
    *,
    limit: int,
    offset: int,
) -> Page[tuple[TargetListGroup, DeviceGroup]]:
    get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    stmt = (
        select(TargetListGroup, DeviceGroup)
        .join(DeviceGroup, col(DeviceGroup.id) == col(TargetListGroup.device_group_id))
        .where(TargetListGroup.target_list_id == target_list_id)
    )
    return _page(session, stmt, [col(TargetListGroup.created_at), col(TargetListGroup.id)],
                 limit, offset)


def get_target_group(
    session: Session, enterprise_id: UUID, pipeline_id: UUID, target_list_id: UUID,
    device_group_id: UUID,
) -> TargetListGroup:
    """A group in a target list, by the group's id (as in the Esper paths)."""
    get_target_list(session, enterprise_id, target_list_id, pipeline_id)
    link = session.exec(
        select(TargetListGroup).where(
            TargetListGroup.target_list_id == target_list_id,
            TargetListGroup.device_group_id == device_group_id,
        )
    ).first()
    if link is None:
        raise NotFound("device group", device_group_id)
    return link


def list_target_group_devices(
    session: Session,
    enterprise_id: UUID,
    pipeline_id: UUID,
    target_list_id: UUID,
    device_group_id: UUID,
    *,
    limit: int,
    offset: int,
) -> Page[Device]:
    get_target_group(session, enterprise_id, pipeline_id, target_list_id, device_group_id)
    return list_group_devices(session, enterprise_id, device_group_id, limit=limit, offset=offset)


def get_operation_list(
    session: Session, enterprise_id: UUID, operation_list_id: UUID
) -> OperationList:
    operation_list = session.get(OperationList, operation_list_id)
    if operation_list is None:
        raise NotFound("operation list", operation_list_id)
    pipeline = session.get(Pipeline, operation_list.pipeline_id)
    if pipeline is None or pipeline.enterprise_id != enterprise_id:
        raise NotFound("operation list", operation_list_id)
    return operation_list


def list_stage_operation_lists(
    session: Session, enterprise_id: UUID, stage_id: UUID, *, limit: int, offset: int
) -> Page[OperationList]:
    get_stage(session, enterprise_id, stage_id)
    stmt = select(OperationList).where(OperationList.stage_id == stage_id)
    return _page(session, stmt, [col(OperationList.created_at), col(OperationList.id)],
                 limit, offset)


def get_operation(
    session: Session, enterprise_id: UUID, operation_list_id: UUID, operation_id: UUID
) -> Operation:
    get_operation_list(session, enterprise_id, operation_list_id)
    operation = session.get(Operation, operation_id)
    if operation is None or operation.operation_list_id != operation_list_id:
        raise NotFound("operation", operation_id)
    return operation


def list_operations(
    session: Session, enterprise_id: UUID, operation_list_id: UUID, *, limit: int, offset: int
) -> Page[Operation]:
    get_operation_list(session, enterprise_id, operation_list_id)
    stmt = select(Operation).where(Operation.operation_list_id == operation_list_id)
    return _page(session, stmt, [col(Operation.order), col(Operation.created_at),
                                 col(Operation.id)], limit, offset)


# ---- runs --------------------------------------------------------------------------------------

_RUN_ORDERING = {
    "run_number": col(PipelineRun.run_number),
    "status": _status_rank(col(PipelineRun.status), RunKind.PIPELINE),
    "pipeline__name": col(PipelineRun.pipeline_name),
    "started_at": col(PipelineRun.started_at),
    "ended_at": col(PipelineRun.ended_at),
    "created_at": col(PipelineRun.created_at),
}
# The per-pipeline list of the reference has no pipeline__name ordering (one pipeline).
_PIPELINE_RUN_ORDERING = {k: v for k, v in _RUN_ORDERING.items() if k != "pipeline__name"}


def list_pipeline_runs(
    session: Session,
    enterprise_id: UUID,
    *,
    pipeline_id: UUID | None = None,
    status: str | None = None,
    pipeline_name: str | None = None,
    ordering: str | None = None,
    limit: int,
    offset: int,
) -> Page[PipelineRun]:
    stmt = select(PipelineRun).where(PipelineRun.enterprise_id == enterprise_id)
    columns = _RUN_ORDERING
    if pipeline_id is not None:
        _require_pipeline_or_runs(session, enterprise_id, pipeline_id)
        stmt = stmt.where(PipelineRun.pipeline_id == pipeline_id)
        columns = _PIPELINE_RUN_ORDERING
    if status:
        stmt = stmt.where(PipelineRun.status == status)
    if pipeline_name:
        stmt = stmt.where(PipelineRun.pipeline_name == pipeline_name)
    order = _ordering(ordering, columns, [col(PipelineRun.created_at).desc()],
                      col(PipelineRun.id), then=[col(PipelineRun.created_at)])
    return _page(session, stmt, order, limit, offset)


def _require_pipeline_or_runs(session: Session, enterprise_id: UUID, pipeline_id: UUID) -> None:
    """A pipeline's runs outlive its definition: known if either the pipeline or a run exists."""
    pipeline = session.get(Pipeline, pipeline_id)
    if pipeline is not None and pipeline.enterprise_id == enterprise_id:
        return
    run = session.exec(
        select(PipelineRun.id).where(
            PipelineRun.enterprise_id == enterprise_id, PipelineRun.pipeline_id == pipeline_id
        ).limit(1)
    ).first()
    if run is None:
        raise NotFound("pipeline", pipeline_id)


def get_pipeline_run(
    session: Session, enterprise_id: UUID, pipeline_run_id: UUID, pipeline_id: UUID | None = None
) -> PipelineRun:
    run = session.get(PipelineRun, pipeline_run_id)
    if (
        run is None
        or run.enterprise_id != enterprise_id
        or (pipeline_id is not None and run.pipeline_id != pipeline_id)
    ):
        raise NotFound("pipeline run", pipeline_run_id)
    return run


def target_run_counts(
    session: Session, stage_run_ids: Sequence[UUID]
) -> dict[UUID, dict[str, int]]:
    """Per-status counts of the current target runs of each stage run (superseded ones left
    out): one GROUP BY for a whole page."""
    zero = {status: 0 for status in STATUSES[RunKind.TARGET]}
    counts = {stage_run_id: dict(zero) for stage_run_id in stage_run_ids}
    if not stage_run_ids:
        return counts
    rows = session.exec(
        select(TargetRun.stage_run_id, TargetRun.status, func.count())
        .where(col(TargetRun.stage_run_id).in_(list(stage_run_ids)),
               col(TargetRun.superseded_by).is_(None))  # current rows: not sent again
        .group_by(col(TargetRun.stage_run_id), col(TargetRun.status))
    ).all()
    for stage_run_id, status, count in rows:
        counts[stage_run_id][status] = count
    return counts


def list_stage_runs(
    session: Session,
    enterprise_id: UUID,
    pipeline_run_id: UUID,
    *,
    status: str | None = None,
    limit: int,
    offset: int,
) -> Page[StageRunRow]:
    get_pipeline_run(session, enterprise_id, pipeline_run_id)
    stmt = select(StageRun).where(StageRun.pipeline_run_id == pipeline_run_id)
    if status:
        stmt = stmt.where(StageRun.status == status)
    page = _page(session, stmt, [col(StageRun.order), col(StageRun.id)], limit, offset)
    counts = target_run_counts(session, [row.id for row in page.items])
    return Page(count=page.count,
                items=[StageRunRow(row, counts[row.id]) for row in page.items])


def get_stage_run(
    session: Session, enterprise_id: UUID, stage_run_id: UUID, pipeline_run_id: UUID | None = None
) -> StageRun:
    stage_run = session.get(StageRun, stage_run_id)
    if (
        stage_run is None
        or stage_run.enterprise_id != enterprise_id
        or (pipeline_run_id is not None and stage_run.pipeline_run_id != pipeline_run_id)
    ):
        raise NotFound("stage run", stage_run_id)
    return stage_run


def get_stage_run_row(
    session: Session, enterprise_id: UUID, stage_run_id: UUID, pipeline_run_id: UUID | None = None
) -> StageRunRow:
    stage_run = get_stage_run(session, enterprise_id, stage_run_id, pipeline_run_id)
    return StageRunRow(stage_run, target_run_counts(session, [stage_run.id])[stage_run.id])


def list_stage_run_operations(
    session: Session, enterprise_id: UUID, stage_run_id: UUID, *, limit: int, offset: int
) -> Page[StageRunOperation]:
    get_stage_run(session, enterprise_id, stage_run_id)
    stmt = select(StageRunOperation).where(StageRunOperation.stage_run_id == stage_run_id)
    return _page(session, stmt, [col(StageRunOperation.order), col(StageRunOperation.id)],
                 limit, offset)


def get_stage_run_operation(
    session: Session, enterprise_id: UUID, stage_run_id: UUID, stage_run_operation_id: UUID
) -> StageRunOperation:
    get_stage_run(session, enterprise_id, stage_run_id)
    operation = session.get(StageRunOperation, stage_run_operation_id)
    if operation is None or operation.stage_run_id != stage_run_id:
        raise NotFound("stage run operation", stage_run_operation_id)
    return operation


_TARGET_RUN_ORDERING = {
    "status": _status_rank(col(TargetRun.status), RunKind.TARGET),
    "created_at": col(TargetRun.created_at),
    "started_at": col(TargetRun.started_at),
    "ended_at": col(TargetRun.ended_at),
    "device_name": col(TargetRun.device_name),
}


def list_target_runs(
    session: Session,
    enterprise_id: UUID,
    stage_run_id: UUID,
    *,
    status: str | None = None,
    stage_run_operation_id: UUID | None = None,
    ordering: str | None = None,
    limit: int,
    offset: int,
) -> Page[Row]:
    get_stage_run(session, enterprise_id, stage_run_id)
    # Plain rows, not ORM objects: this is the operator's poll of a big stage, and loading
    # instances was half of its cost (bench/api_poll.py).
    stmt = select(*TargetRun.__table__.c).where(  # type: ignore[attr-defined]
        TargetRun.__table__.c.stage_run_id == stage_run_id)  # type: ignore[attr-defined]
    if status:
        stmt = stmt.where(TargetRun.status == status)
    if stage_run_operation_id is not None:
        stmt = stmt.where(TargetRun.stage_run_operation_id == stage_run_operation_id)
    default = [col(TargetRun.operation_order), col(TargetRun.device_seq)]
    order = _ordering(ordering, _TARGET_RUN_ORDERING, default, col(TargetRun.id),
                      then=default)
    return _page(session, stmt, order, limit, offset, plain_rows=True)


def get_target_run(
    session: Session, enterprise_id: UUID, target_run_id: UUID, stage_run_id: UUID | None = None
) -> TargetRun:
    target_run = session.get(TargetRun, target_run_id)
    if (
        target_run is None
        or target_run.enterprise_id != enterprise_id
        or (stage_run_id is not None and target_run.stage_run_id != stage_run_id)
    ):
        raise NotFound("target run", target_run_id)
    return target_run


def get_target_runs(session: Session, target_run_ids: Sequence[UUID]) -> list[TargetRun]:
    if not target_run_ids:
        return []
    rows = session.exec(select(TargetRun).where(col(TargetRun.id).in_(list(target_run_ids))))
    by_id = {row.id: row for row in rows.all()}
    return [by_id[target_run_id] for target_run_id in target_run_ids if target_run_id in by_id]


def get_command(session: Session, enterprise_id: UUID, command_id: UUID) -> Command:
    command = session.get(Command, command_id)
    if command is None or command.enterprise_id != enterprise_id:
        raise NotFound("command", command_id)
    return command


def command_events(session: Session, command_id: UUID, limit: int = 1000) -> list[CommandEvent]:
    """A command's message history, in arrival order."""
    return list(
        session.exec(
            select(CommandEvent)
            .where(CommandEvent.command_id == command_id)
            .order_by(col(CommandEvent.id))
            .limit(limit)
        ).all()
    )


def delete_pipeline_run(session: Session, enterprise_id: UUID, pipeline_run_id: UUID,
                        pipeline_id: UUID | None = None) -> PipelineRun:
    """Delete a finished run and everything recorded under it (its workflows have all closed,
    so no writer can touch these rows again). Commits."""
    run = get_pipeline_run(session, enterprise_id, pipeline_run_id, pipeline_id)
    if not is_terminal(RunKind.PIPELINE, run.status):
        raise RunNotTerminal(run.id, run.status)
    stage_run_ids = select(StageRun.id).where(StageRun.pipeline_run_id == run.id)
    target_run_ids = select(TargetRun.id).where(TargetRun.pipeline_run_id == run.id)
    command_ids = select(Command.id).where(col(Command.target_run_id).in_(target_run_ids))
    session.execute(delete(CommandEvent).where(col(CommandEvent.command_id).in_(command_ids)))
    session.execute(delete(Command).where(col(Command.target_run_id).in_(target_run_ids)))
    session.execute(delete(TargetRun).where(col(TargetRun.pipeline_run_id) == run.id))
    session.execute(
        delete(StageRunOperation).where(col(StageRunOperation.stage_run_id).in_(stage_run_ids))
    )
    session.execute(delete(StageRun).where(col(StageRun.pipeline_run_id) == run.id))
    session.execute(delete(StatusEvent).where(col(StatusEvent.pipeline_run_id) == run.id))
    session.delete(run)
    session.commit()
    return run
