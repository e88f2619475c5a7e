"""A stage run's target runs (device x operation): made from the snapshot once, in batches,
paged to the stage workflow by device position, appended one device at a time, counted, and
closed while still pending."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy import func, insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from domain.ids import target_run_id as derive_target_run_id
from domain.records import StagePlan, StatusChange
from domain.retry_modes import Carry
from domain.schemas import StageSnapshot
from domain.statuses import RunKind, TargetRunStatus
from store.db import transaction
from store.definitions.devices import Device, DeviceGroupMember
from store.runs import carry
from store.runs.creation import load_snapshot
from store.runs.statuses import apply_status
from store.runs.tables import StageRun, StageRunOperation, TargetRun
from store.tenancy import scoped
from store.types import utcnow

_BATCH = 1000


class StageNotReady(LookupError):
    """A stage run asked to take a target before it made its own."""


def _stage_snapshot(session: Session, stage_run: StageRun) -> StageSnapshot:
    return load_snapshot(session, stage_run.pipeline_run_id).stages[stage_run.order - 1]


def _expand_devices(session: Session, stage_run: StageRun, stage: StageSnapshot) -> list[Device]:
    """The stage's devices: listed ones first, then group members; each once, still existing
    and of the run's enterprise (groups expand now, when the stage run is processed)."""
    ordered_ids: list[UUID] = list(stage.device_ids)
    if stage.device_group_ids:
        members = session.exec(
            select(DeviceGroupMember.device_id)
            .where(col(DeviceGroupMember.device_group_id).in_(stage.device_group_ids))
            .order_by(col(DeviceGroupMember.device_group_id), col(DeviceGroupMember.device_id))
        ).all()
        ordered_ids.extend(members)
    ordered_ids = list(dict.fromkeys(ordered_ids))
    found: dict[UUID, Device] = {}
    for start in range(0, len(ordered_ids), _BATCH):
        chunk = ordered_ids[start:start + _BATCH]
        for device in session.exec(scoped(Device, stage_run.enterprise_id)
                                   .where(col(Device.id).in_(chunk))).all():
            found[device.id] = device
    return [found[device_id] for device_id in ordered_ids if device_id in found]


def materialize_targets(engine: Engine, stage_run_id: UUID) -> StagePlan:
    """Create the stage run's operations and its target runs (device x operation), in batches.

    Done once: a second call finds them and returns the same plan.
    """
    with transaction(engine) as session:
        stage_run = session.get(StageRun, stage_run_id)
        if stage_run is None:
            raise LookupError(f"stage run {stage_run_id} not found")
        existing_ops = session.exec(
            select(StageRunOperation).where(StageRunOperation.stage_run_id == stage_run_id)
            .order_by(col(StageRunOperation.order))
        ).all()
        if existing_ops or stage_run.device_count:
            return StagePlan([str(op.id) for op in existing_ops], stage_run.device_count,
                             "" if existing_ops and stage_run.device_count else
                             _invalid_reason(existing_ops, stage_run.device_count),
                             carried=carry.carried_count(session, stage_run_id)
                             if stage_run.carry else 0,
                             operation_types=[op.operation_type for op in existing_ops])
        if stage_run.carry == Carry.TARGETS and stage_run.carried_from is not None:
            return carry.copy_targets(session, stage_run, carry_all=False, at=utcnow())
        stage = _stage_snapshot(session, stage_run)
        devices = _expand_devices(session, stage_run, stage)
        operations = [
            StageRunOperation(
                id=uuid5(stage_run_id, f"operation:{op.order}"), stage_run_id=stage_run_id,
                operation_type=op.operation_type, args=op.args, order=op.order, name=op.name,
            )
            for op in stage.operations
        ]
        reason = _invalid_reason(operations, len(devices))
        if reason:
            return StagePlan([], 0, reason)
        session.add_all(operations)
        session.flush()
        now = utcnow()
        for start in range(0, len(devices), _BATCH):
            rows = [
                {
                    "id": derive_target_run_id(stage_run_id, device.id, op.id),
                    "stage_run_id": stage_run_id,
                    "pipeline_run_id": stage_run.pipeline_run_id,
                    "enterprise_id": stage_run.enterprise_id,
                    "stage_run_operation_id": op.id,
                    "operation_order": op.order,
                    "device_seq": start + offset,
                    "target_id": device.id,
                    "device_name": device.name,
                    "device_alias": device.alias,
                    "status": TargetRunStatus.PENDING.value,
                    "command_meta": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for offset, device in enumerate(devices[start:start + _BATCH])
                for op in operations
            ]
            session.execute(insert(TargetRun), rows)
        stage_run.device_count = len(devices)
        session.add(stage_run)
        return StagePlan([str(op.id) for op in operations], len(devices),
                         operation_types=[op.operation_type for op in operations])


def _invalid_reason(operations: Sequence[Any], device_count: int) -> str:
    if not operations:
        return "the stage has no operations"
    if device_count == 0:
        return "the stage has no targets"
    return ""


def add_target_device(
    engine: Engine, stage_run_id: UUID, device_id: UUID, device_name: str = "",
    device_alias: str = "",
) -> tuple[int, list[str]]:
    """Append a device to an open stage run: its target runs (one per operation), pending.
    Returns (the device's seq, its target run ids); a device already there is returned as is."""
    with transaction(engine) as session:
        stage_run = session.get(StageRun, stage_run_id)
        device = session.get(Device, device_id)
        if stage_run is None or device is None or device.enterprise_id != stage_run.enterprise_id:
            raise LookupError(f"device {device_id} not found")
        operations = session.exec(
            select(StageRunOperation).where(StageRunOperation.stage_run_id == stage_run_id)
            .order_by(col(StageRunOperation.order))
        ).all()
        if not operations:
            raise StageNotReady(f"stage run {stage_run_id} has not created its targets yet")
        ids = [derive_target_run_id(stage_run_id, device_id, op.id) for op in operations]
        existing = session.get(TargetRun, ids[0])
        if existing is not None:
            return existing.device_seq, [str(i) for i in ids]
        seq = stage_run.device_count
        for target_id, op in zip(ids, operations, strict=True):
            session.add(TargetRun(
                id=target_id, stage_run_id=stage_run_id, pipeline_run_id=stage_run.pipeline_run_id,
                enterprise_id=stage_run.enterprise_id, stage_run_operation_id=op.id,
                operation_order=op.order, device_seq=seq, target_id=device_id,
                device_name=device_name or device.name, device_alias=device_alias or device.alias,
            ))
        stage_run.device_count = seq + 1
        session.add(stage_run)
        return seq, [str(i) for i in ids]


def next_target_page(
    engine: Engine, stage_run_id: UUID, after_seq: int, limit: int
) -> list[tuple[int, str]]:
    """The next devices to start, by position: [(device_seq, device_id)]. A device whose first
    operation an operator cancelled while pending is still returned: its target run ends at
    once, reporting so, and the stage then closes the device's later operations (they would
    otherwise stay pending). Retried rows are the stage's own business."""
    return [(seq, device) for seq, device, _ in
            next_named_target_page(engine, stage_run_id, after_seq, limit)]


def next_named_target_page(
    engine: Engine, stage_run_id: UUID, after_seq: int, limit: int
) -> list[tuple[int, str, str]]:
    """As next_target_page, with each device's name: [(device_seq, device_id, device_name)]."""
    with transaction(engine) as session:
        rows = session.exec(
            select(TargetRun.device_seq, TargetRun.target_id, TargetRun.device_name).where(
                TargetRun.stage_run_id == stage_run_id,
                TargetRun.operation_order == 0,
                TargetRun.device_seq > after_seq,
                TargetRun.generation == 0,  # retry rows are queued by the stage run itself
                col(TargetRun.superseded_by).is_(None),
            ).order_by(col(TargetRun.device_seq)).limit(limit)
        ).all()
        return [(seq, str(device_id), name) for seq, device_id, name in rows]


def close_pending_targets(
    engine: Engine,
    stage_run_id: UUID,
    status: str,
    reason: str,
    at: datetime,
    *,
    target_run_ids: Iterable[str] | None = None,
) -> int:
    """End target runs that never started (still pending) with `status`: all of the stage
    run's, or just the given ones. Returns how many ended."""
    ended = 0
    with transaction(engine) as session:
        query = select(TargetRun.id).where(
            TargetRun.stage_run_id == stage_run_id, TargetRun.status == TargetRunStatus.PENDING
        )
        if target_run_ids is not None:
            query = query.where(col(TargetRun.id).in_([UUID(i) for i in target_run_ids]))
        pending = session.exec(query).all()
        for start in range(0, len(pending), _BATCH):
            chunk = pending[start:start + _BATCH]
            for target_id in chunk:
                apply_status(session, StatusChange(RunKind.TARGET, str(target_id), status, at,
                                                   reason))
            session.flush()
            ended += len(chunk)
    return ended


def target_counts(engine: Engine, stage_run_id: UUID) -> dict[str, int]:
    """Per-status counts of the stage run's current target runs (superseded ones left out)."""
    with transaction(engine) as session:
        rows = session.exec(
            select(TargetRun.status, func.count()).where(TargetRun.stage_run_id == stage_run_id)
            .where(col(TargetRun.superseded_by).is_(None))
            .group_by(TargetRun.status)
        ).all()
        return {status: count for status, count in rows}


def next_carried_page(engine: Engine, stage_run_id: UUID, after_seq: int,
                      limit: int) -> list[tuple[int, str, int]]:
    """next_target_page for a stage run that carries target runs over: each device with the
    first operation it runs (-1: none, all carried over)."""
    with transaction(engine) as session:
        return carry.carried_page(session, stage_run_id, after_seq, limit)
