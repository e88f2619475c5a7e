"""A stage run's target runs (device x operation), made from the snapshot in chunks of devices,
each chunk its own transaction, so a stage of 100,000 devices x 3 operations never holds one
transaction (and, on SQLite, the one writer) for all 300,000 rows.

`begin` reads where the stage run stands; `write_chunk` writes the next devices' rows; the
chunk that writes the last device also sets `device_count`, which is the mark that the stage
run is complete: until then it is 0 and the stage run is still being made. A crash between
chunks loses nothing: the next `begin` expands the devices again, skips the ones that already
have rows and carries on at the next position, so a resumed stage has the same rows, ids
(derived: domain.ids) and positions as one made in one go, with no duplicates and no gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple
from uuid import UUID, uuid5

from sqlalchemy import func, insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from domain.ids import target_run_id as derive_target_run_id
from domain.records import StagePlan
from domain.retry_modes import Carry
from domain.schemas import StageSnapshot
from domain.statuses import TargetRunStatus
from store.db import transaction
from store.definitions.devices import Device, DeviceGroupMember
from store.runs import carry
from store.runs.creation import load_snapshot
from store.runs.tables import StageRun, StageRunOperation, TargetRun
from store.types import utcnow

# Devices per transaction: 5,000 x 3 operations is 15,000 rows, well under a second on either
# database here (docs/benchmarks.md, "Materialising a stage in chunks").
CHUNK_DEVICES = 5000
_READ_BATCH = 1000  # ids per IN (...) when reading devices
_TARGET_RUNS = TargetRun.__table__  # type: ignore[attr-defined]  # Core: no ORM bulk overhead


class StageMoved(RuntimeError):
    """Another attempt wrote chunks of this stage run since this one read it: begin again."""


class DeviceRow(NamedTuple):
    id: UUID
    name: str
    alias: str


class OperationRow(NamedTuple):
    id: UUID
    order: int
    operation_type: str


@dataclass(frozen=True)
class Materialization:
    """Where a stage run's materialisation stands: `plan` once there is nothing left to write
    (made, invalid or carried over), else the devices still without rows, in order, and the
    position the first of them takes."""

    stage_run_id: UUID
    plan: StagePlan | None = None
    operations: tuple[OperationRow, ...] = ()
    remaining: tuple[DeviceRow, ...] = ()
    next_seq: int = 0
    chunks: int = field(default=0, compare=False)  # written by this caller, for the logs


def materialize_targets(engine: Engine, stage_run_id: UUID,
                        chunk_devices: int | None = None) -> StagePlan:
    """Create the stage run's operations and its target runs, chunk by chunk, and return its
    plan. Done once: a second call finds them and returns the same plan; a call after a crash
    between chunks finishes the job."""
    state = begin(engine, stage_run_id)
    while state.plan is None:
        try:
            state = write_chunk(engine, state, chunk_devices)
        except StageMoved:
            state = begin(engine, stage_run_id)
    return state.plan


def begin(engine: Engine, stage_run_id: UUID) -> Materialization:
    """One transaction: the plan of a stage run already made (or invalid, or carried over: that
    copy stays one transaction, store.runs.carry); otherwise its operations, created the first
    time, and the devices still to write."""
    with transaction(engine) as session:
        stage_run = session.get(StageRun, stage_run_id)
        if stage_run is None:
            raise LookupError(f"stage run {stage_run_id} not found")
        existing = session.exec(
            select(StageRunOperation).where(StageRunOperation.stage_run_id == stage_run_id)
            .order_by(col(StageRunOperation.order))
        ).all()
        if stage_run.device_count or (existing and stage_run.carry):
            return Materialization(stage_run_id, _finished_plan(session, stage_run, existing))
        if stage_run.carry == Carry.TARGETS and stage_run.carried_from is not None:
            return Materialization(stage_run_id, carry.copy_targets(
                session, stage_run, carry_all=False, at=utcnow()))
        stage = load_snapshot(session, stage_run.pipeline_run_id).stages[stage_run.order - 1]
        operations = list(existing) or [
            StageRunOperation(
                id=uuid5(stage_run_id, f"operation:{op.order}"), stage_run_id=stage_run_id,
                operation_type=op.operation_type, args=op.args, order=op.order, name=op.name,
            )
            for op in stage.operations
        ]
        written = _written_devices(session, stage_run_id)
        remaining = tuple(device for device in expand_devices(session, stage_run, stage)
                          if device.id not in written)
        reason = _invalid_reason(operations, len(written) + len(remaining))
        if reason:
            return Materialization(stage_run_id, StagePlan([], 0, reason))
        if not existing:
            session.add_all(operations)
        state = Materialization(
            stage_run_id, operations=tuple(
                OperationRow(op.id, op.order, op.operation_type) for op in operations),
            remaining=remaining, next_seq=max(written.values(), default=-1) + 1)
        if not remaining:  # every device was written before (or left since): mark it made
            return replace(state, plan=_complete(stage_run, state, session))
        return state


def write_chunk(engine: Engine, state: Materialization,
                chunk_devices: int | None = None) -> Materialization:
    """One transaction: the target runs of the next `chunk_devices` devices; the last chunk
    also sets the stage run's device_count (`chunk_devices`: CHUNK_DEVICES by default). Raises
    StageMoved if another attempt wrote since `state` was read (its positions would clash)."""
    assert state.plan is None, "nothing left to write"
    chunk_devices = chunk_devices or CHUNK_DEVICES
    chunk, rest = state.remaining[:chunk_devices], state.remaining[chunk_devices:]
    with transaction(engine) as session:
        # The row lock makes two attempts on PostgreSQL write in turn; SQLite has one writer.
        stage_run = session.get(StageRun, state.stage_run_id, with_for_update=True)
        if stage_run is None:
            raise LookupError(f"stage run {state.stage_run_id} not found")
        if stage_run.device_count or _last_seq(session, state.stage_run_id) + 1 != state.next_seq:
            raise StageMoved(f"stage run {state.stage_run_id} was written by another attempt")
        now = utcnow()
        session.execute(insert(_TARGET_RUNS), [
            {
                "id": derive_target_run_id(state.stage_run_id, device.id, op.id),
                "stage_run_id": state.stage_run_id,
                "pipeline_run_id": stage_run.pipeline_run_id,
                "enterprise_id": stage_run.enterprise_id,
                "stage_run_operation_id": op.id,
                "operation_order": op.order,
                "device_seq": state.next_seq + offset,
                "target_id": device.id,
                "device_name": device.name,
                "device_alias": device.alias,
                "status": TargetRunStatus.PENDING.value,
                "command_meta": {},
                "created_at": now,
                "updated_at": now,
            }
            for offset, device in enumerate(chunk)
            for op in state.operations
        ])
        after = replace(state, remaining=rest, next_seq=state.next_seq + len(chunk),
                        chunks=state.chunks + 1)
        if rest:
            return after
        return replace(after, plan=_complete(stage_run, after, session))


def expand_devices(session: Session, stage_run: StageRun,
                   stage: StageSnapshot) -> list[DeviceRow]:
    """The stage's devices: listed ones first, then group members (by group, then device id);
    each once, still existing and of the run's enterprise (groups expand now, when the stage
    run is processed). The order depends only on the rows, so every attempt sees the same one.
    Members come in one join and listed devices by primary key: filtering by enterprise in
    SQL made SQLite walk the enterprise's index once per batch (quadratic at 100,000)."""
    listed: dict[UUID, DeviceRow] = {}
    for start in range(0, len(stage.device_ids), _READ_BATCH):
        batch = stage.device_ids[start:start + _READ_BATCH]
        for device_id, name, alias, enterprise_id in session.execute(
                select(Device.id, Device.name, Device.alias, Device.enterprise_id)
                .where(col(Device.id).in_(batch))).all():
            if enterprise_id == stage_run.enterprise_id:
                listed[device_id] = DeviceRow(device_id, name, alias)
    ordered = [listed[device_id] for device_id in stage.device_ids if device_id in listed]
    if stage.device_group_ids:
        ordered.extend(DeviceRow(*row) for row in session.execute(
            select(Device.id, Device.name, Device.alias)
            .join(DeviceGroupMember, col(DeviceGroupMember.device_id) == col(Device.id))
            .where(col(DeviceGroupMember.device_group_id).in_(stage.device_group_ids),
                   Device.enterprise_id == stage_run.enterprise_id)
            .order_by(col(DeviceGroupMember.device_group_id),
                      col(DeviceGroupMember.device_id))).all())
    first: dict[UUID, DeviceRow] = {}
    for device in ordered:
        first.setdefault(device.id, device)
    return list(first.values())


def _written_devices(session: Session, stage_run_id: UUID) -> dict[UUID, int]:
    """Devices that already have rows (an earlier attempt's chunks), with their positions."""
    return {device_id: seq for device_id, seq in session.execute(
        select(TargetRun.target_id, TargetRun.device_seq).where(
            TargetRun.stage_run_id == stage_run_id, TargetRun.operation_order == 0,
            TargetRun.generation == 0)).all()}


def _last_seq(session: Session, stage_run_id: UUID) -> int:
    last = session.execute(select(func.max(TargetRun.device_seq)).where(
        TargetRun.stage_run_id == stage_run_id, TargetRun.operation_order == 0)).scalar_one()
    return -1 if last is None else int(last)


def _complete(stage_run: StageRun, state: Materialization, session: Session) -> StagePlan:
    """Mark the stage run made (device_count), in the caller's transaction."""
    stage_run.device_count = state.next_seq
    session.add(stage_run)
    return StagePlan([str(op.id) for op in state.operations], state.next_seq,
                     operation_types=[op.operation_type for op in state.operations])


def _finished_plan(session: Session, stage_run: StageRun,
                   operations: Sequence[StageRunOperation]) -> StagePlan:
    count = stage_run.device_count
    return StagePlan([str(op.id) for op in operations], count,
                     "" if operations and count else _invalid_reason(operations, count),
                     carried=carry.carried_count(session, stage_run.id) if stage_run.carry else 0,
                     operation_types=[op.operation_type for op in operations])


def _invalid_reason(operations: Sequence[Any], device_count: int) -> str:
    if not operations:
        return "the stage has no operations"
    if device_count == 0:
        return "the stage has no targets"
    return ""
