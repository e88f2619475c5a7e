"""Writes to the run rows, made on behalf of the workflow that owns each row.

Every function is idempotent, so an activity retried or replayed after a crash writes nothing
twice: rows have derived ids, and a status only ever moves forward (domain.statuses), with each
step kept as a numbered StatusEvent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy import func, insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from domain.ids import command_id as derive_command_id
from domain.ids import target_run_id as derive_target_run_id
from domain.records import RetriedTarget, StagePlan, StageRunInfo, StatusChange
from domain.retries import EARLIER_OPERATION_FAILED, RETRYABLE
from domain.schemas import (
    OperationSnapshot,
    PipelineSnapshot,
    RolloutConfig,
    StageSnapshot,
)
from domain.statuses import (
    CommandStatus,
    RunKind,
    StageRunStatus,
    TargetRunStatus,
    is_terminal,
    transition_path,
)
from store.definitions import (
    Device,
    DeviceGroupMember,
    Operation,
    OperationList,
    Pipeline,
    Stage,
    StageTargetList,
    TargetListDevice,
    TargetListGroup,
)
from store.engine import session_scope
from store.runs import (
    Command,
    PipelineRun,
    StageRun,
    StageRunOperation,
    StatusEvent,
    TargetRun,
)
from store.types import utcnow

_ROW_TYPES: dict[RunKind, Any] = {
    RunKind.PIPELINE: PipelineRun,
    RunKind.STAGE: StageRun,
    RunKind.TARGET: TargetRun,
}
_STATUS_EVENTS = StatusEvent.__table__  # type: ignore[attr-defined]
_BATCH = 1000


class PipelineNotFound(LookupError):
    pass


class StageNotReady(LookupError):
    """A stage run asked to take a target before it made its own."""


# ---- creating a run ------------------------------------------------------------------------
def snapshot_pipeline(session: Session, pipeline: Pipeline) -> PipelineSnapshot:
    """The pipeline as it is now: what a run works on, whatever edits come later."""
    stages = session.exec(
        select(Stage).where(Stage.pipeline_id == pipeline.id)
        .order_by(col(Stage.order), col(Stage.created_at))
    ).all()
    snapshots = []
    for stage in stages:
        list_ids = session.exec(
            select(StageTargetList.target_list_id).where(StageTargetList.stage_id == stage.id)
        ).all()
        device_ids = session.exec(
            select(TargetListDevice.device_id)
            .where(col(TargetListDevice.target_list_id).in_(list_ids))
            .order_by(col(TargetListDevice.created_at))
        ).all()
        group_ids = session.exec(
            select(TargetListGroup.device_group_id)
            .where(col(TargetListGroup.target_list_id).in_(list_ids))
            .order_by(col(TargetListGroup.created_at))
        ).all()
        operations = session.exec(
            select(Operation)
            .join(OperationList, col(Operation.operation_list_id) == OperationList.id)
            .where(OperationList.stage_id == stage.id)
            .order_by(
                col(OperationList.created_at), col(Operation.order), col(Operation.created_at)
            )
        ).all()
        snapshots.append(
            StageSnapshot(
                stage_id=stage.id,
                name=stage.name,
                description=stage.description,
                order=stage.order,
                trigger=stage.trigger,
                timeout_seconds=stage.timeout_seconds,
                rollout=RolloutConfig.model_validate(stage.rollout or {}),
                device_ids=list(dict.fromkeys(device_ids)),
                device_group_ids=list(dict.fromkeys(group_ids)),
                operations=[
                    OperationSnapshot(
                        operation_type=op.operation_type, args=op.args or {}, order=index,
                        name=op.operation_type,
                    )
                    for index, op in enumerate(operations)
                ],
            )
        )
    return PipelineSnapshot(
        pipeline_id=pipeline.id,
        name=pipeline.name,
        timeout_seconds=pipeline.timeout_seconds,
        stages=snapshots,
    )


def create_pipeline_run(
    engine: Engine,
    enterprise_id: UUID,
    pipeline_id: UUID,
    *,
    trigger_type: str = "manual",
    trigger_source: str = "",
    previous_run_id: UUID | None = None,
) -> PipelineRun:
    """A pending run with the next run number and a snapshot of its pipeline.

    The counter is bumped by one UPDATE, so concurrent starts get distinct numbers on SQLite
    (one writer at a time) and PostgreSQL (the row lock) alike.
    """
    with session_scope(engine) as session:
        bumped = session.execute(
            update(Pipeline)
            .where(col(Pipeline.id) == pipeline_id, col(Pipeline.enterprise_id) == enterprise_id)
            .values(run_counter=Pipeline.run_counter + 1)
            .returning(col(Pipeline.run_counter))
        ).first()
        if bumped is None:
            raise PipelineNotFound(str(pipeline_id))
        pipeline = session.get(Pipeline, pipeline_id)
        assert pipeline is not None
        snapshot = snapshot_pipeline(session, pipeline)
        run = PipelineRun(
            enterprise_id=enterprise_id,
            pipeline_id=pipeline_id,
            pipeline_name=pipeline.name,
            run_number=bumped[0],
            snapshot=snapshot.model_dump(mode="json"),
            previous_run_id=previous_run_id,
            trigger_type=trigger_type,
            trigger_source=trigger_source,
        )
        session.add(run)
    return run


def discard_pipeline_run(engine: Engine, pipeline_run_id: UUID) -> None:
    """Remove a run whose workflow never started (so a failed start leaves nothing behind)."""
    with session_scope(engine) as session:
        run = session.get(PipelineRun, pipeline_run_id)
        if run is not None:
            session.delete(run)


def load_snapshot(session: Session, pipeline_run_id: UUID) -> PipelineSnapshot:
    run = session.get(PipelineRun, pipeline_run_id)
    if run is None:
        raise LookupError(f"pipeline run {pipeline_run_id} not found")
    return PipelineSnapshot.model_validate(run.snapshot)


# ---- status changes ------------------------------------------------------------------------
def apply_status(session: Session, change: StatusChange) -> str:
    """Move one run row forward to `change.status` (through any steps between); returns the
    row's status afterwards. A move that is not allowed (backwards, or out of a terminal
    status) changes nothing, which is what makes retries and replays harmless.

    Core statements, not ORM objects: every target run passes here four or five times, and
    loading and flushing instances was most of the cost (bench/fanout.py). A row already
    loaded as an object in the same session is not refreshed; no caller reads it afterwards.
    """
    kind = RunKind(change.kind)
    table = _ROW_TYPES[kind].__table__
    run_id = UUID(change.run_id)
    parent = table.c.id if kind == RunKind.PIPELINE else table.c.pipeline_run_id
    row = session.execute(select(table.c.status, table.c.started_at, parent)
                          .where(table.c.id == run_id)).first()
    if row is None:
        raise LookupError(f"{kind.value} {change.run_id} not found")
    current, started_at, pipeline_run_id = row
    if is_terminal(kind, current):
        return str(current)  # ended: neither its status nor its other fields change
    steps = transition_path(kind, current, change.status)
    values: dict[str, Any] = dict(change.fields)
    if steps:
        previous = current
        events = []
        for step in steps:
            events.append({"pipeline_run_id": pipeline_run_id, "kind": kind.value,
                           "run_id": run_id, "from_status": previous, "to_status": step,
                           "reason": change.reason, "at": change.at})
            previous = step
        session.execute(insert(_STATUS_EVENTS), events)
        if started_at is None and current == "pending":
            values["started_at"] = change.at
        values["status"] = change.status
        if change.reason:
            values["status_reason"] = change.reason
        if is_terminal(kind, change.status):
            values["ended_at"] = change.at
    if values:
        values["updated_at"] = change.at
        session.execute(update(table).where(table.c.id == run_id).values(**values))
    return str(change.status) if steps else str(current)


def record_statuses(engine: Engine, changes: Sequence[StatusChange]) -> list[str]:
    """Apply several status changes in one transaction (one round trip for a workflow)."""
    with session_scope(engine) as session:
        return [apply_status(session, change) for change in changes]


# ---- stage runs ----------------------------------------------------------------------------
def prepare_stage_runs(engine: Engine, pipeline_run_id: UUID) -> list[StageRunInfo]:
    """The run's stage runs, created pending from its snapshot the first time."""
    with session_scope(engine) as session:
        snapshot = load_snapshot(session, pipeline_run_id)
        run = session.get(PipelineRun, pipeline_run_id)
        assert run is not None
        for index, stage in enumerate(snapshot.stages):
            stage_run_id = uuid5(pipeline_run_id, f"stage:{index}:{stage.stage_id}")
            if session.get(StageRun, stage_run_id) is None:
                session.add(StageRun(
                    id=stage_run_id, pipeline_run_id=pipeline_run_id,
                    enterprise_id=run.enterprise_id, stage_id=stage.stage_id,
                    stage_name=stage.name, order=index + 1, run_number=run.run_number,
                    trigger=stage.trigger, timeout_seconds=stage.timeout_seconds,
                ))
        session.flush()
        rows = session.exec(
            select(StageRun).where(StageRun.pipeline_run_id == pipeline_run_id)
            .order_by(col(StageRun.order))
        ).all()
        return [
            StageRunInfo(
                stage_run_id=str(row.id), order=row.order, name=row.stage_name,
                trigger=row.trigger, timeout_seconds=row.timeout_seconds,
                rollout=snapshot.stages[row.order - 1].rollout.model_dump(mode="json"),
                status=row.status,
            )
            for row in rows
        ]


def close_open_stage_runs(
    engine: Engine, pipeline_run_id: UUID, status: str, reason: str, at: datetime
) -> int:
    """End every stage run of the run that never started (pending) with `status`."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(StageRun.id).where(
                StageRun.pipeline_run_id == pipeline_run_id,
                StageRun.status == StageRunStatus.PENDING,
            )
        ).all()
        for stage_run_id in rows:
            apply_status(session, StatusChange(RunKind.STAGE, str(stage_run_id), status, at,
                                               reason))
        return len(rows)


# ---- target runs ---------------------------------------------------------------------------
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
        for device in session.exec(select(Device).where(
            col(Device.id).in_(chunk), Device.enterprise_id == stage_run.enterprise_id
        )).all():
            found[device.id] = device
    return [found[device_id] for device_id in ordered_ids if device_id in found]


def materialize_targets(engine: Engine, stage_run_id: UUID) -> StagePlan:
    """Create the stage run's operations and its target runs (device x operation), in batches.

    Done once: a second call finds them and returns the same plan.
    """
    with session_scope(engine) as session:
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
                             _invalid_reason(existing_ops, stage_run.device_count))
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
        return StagePlan([str(op.id) for op in operations], len(devices))


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
    with session_scope(engine) as session:
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
    with session_scope(engine) as session:
        rows = session.exec(
            select(TargetRun.device_seq, TargetRun.target_id).where(
                TargetRun.stage_run_id == stage_run_id,
                TargetRun.operation_order == 0,
                TargetRun.device_seq > after_seq,
                TargetRun.generation == 0,  # retry rows are queued by the stage run itself
                col(TargetRun.superseded_by).is_(None),
            ).order_by(col(TargetRun.device_seq)).limit(limit)
        ).all()
        return [(seq, str(device_id)) for seq, device_id in rows]


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
    with session_scope(engine) as session:
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
    with session_scope(engine) as session:
        rows = session.exec(
            select(TargetRun.status, func.count()).where(TargetRun.stage_run_id == stage_run_id)
            .where(col(TargetRun.superseded_by).is_(None))
            .group_by(TargetRun.status)
        ).all()
        return {status: count for status, count in rows}


# ---- sending a target run again (domain.retries) -------------------------------------------
class RetryRefused(ValueError):
    """A target run that cannot be sent again; the message says why and what to do."""

    def __init__(self, message: str, allowed: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.allowed = list(allowed) if allowed is not None else None


def _was_cascaded(row: TargetRun) -> bool:
    """Ended without running because an earlier operation on its device did not succeed."""
    return (row.status == TargetRunStatus.FAILURE and row.command_id is None
            and row.status_reason == EARLIER_OPERATION_FAILED)


def retry_refusal(session: Session, row: TargetRun) -> RetryRefused | None:
    """Why `row` cannot be sent again, or None. A target run can be sent again when it is
    current (not superseded), ended failure, timeout or cancelled, and every earlier operation
    on its device succeeded; one that ended only because an earlier operation failed runs again
    by itself once that one, sent again, succeeds."""
    if row.superseded_by is not None:
        return RetryRefused(f"target run {row.id} was already sent again: its retry is target "
                            f"run {row.superseded_by}")
    if row.status not in RETRYABLE:
        return RetryRefused(
            f"target run {row.id} is {row.status}: only a target run that ended "
            f"{', '.join(RETRYABLE)} can be sent again", RETRYABLE)
    earlier = session.exec(select(TargetRun).where(
        TargetRun.stage_run_id == row.stage_run_id, TargetRun.target_id == row.target_id,
        TargetRun.operation_order < row.operation_order,
        col(TargetRun.superseded_by).is_(None), TargetRun.status != TargetRunStatus.SUCCESS,
    ).order_by(col(TargetRun.operation_order))).first()
    if earlier is None:
        if _was_cascaded(row):
            return RetryRefused(
                f"target run {row.id} did not run because an earlier operation on its device "
                "failed; that operation succeeded since, so this one runs again by itself")
        return None
    blocker = (f"operation {earlier.operation_order + 1} on its device has not succeeded "
               f"(target run {earlier.id} is {earlier.status})")
    if not _was_cascaded(row):
        return RetryRefused(f"target run {row.id} runs after {blocker}: send it again once "
                            "that one succeeded")
    if earlier.status in RETRYABLE:
        return RetryRefused(f"target run {row.id} did not run: {blocker}. Send that one "
                            "again; this one then runs again by itself")
    return RetryRefused(f"target run {row.id} did not run: {blocker}; this one runs again by "
                        "itself once it succeeds")


def _next_target_run_id(row: TargetRun) -> UUID:
    return derive_target_run_id(row.stage_run_id, row.target_id, row.stage_run_operation_id,
                                row.generation + 1)


def _retried(row: TargetRun) -> RetriedTarget:
    """What replacing `row` made (or had made: the answer is the same every time)."""
    return RetriedTarget(
        target_run_id=str(_next_target_run_id(row)), device_id=str(row.target_id),
        operation_order=row.operation_order, generation=row.generation + 1,
        retry_of=str(row.id), replaced_status=row.status,
        replaced_command_status=row.command_status)


def _replace(session: Session, row: TargetRun) -> RetriedTarget:
    """A new pending row for the same device x operation; the old one keeps its status and
    command, and points at its successor."""
    at = utcnow()
    new_id = _next_target_run_id(row)
    session.add(TargetRun(
        id=new_id, stage_run_id=row.stage_run_id, pipeline_run_id=row.pipeline_run_id,
        enterprise_id=row.enterprise_id, stage_run_operation_id=row.stage_run_operation_id,
        operation_order=row.operation_order, device_seq=row.device_seq,
        target_id=row.target_id, device_name=row.device_name, device_alias=row.device_alias,
        retry_of=row.id, generation=row.generation + 1, created_at=at, updated_at=at,
    ))
    session.flush()
    row.superseded_by = new_id
    row.updated_at = at
    session.add(row)
    return _retried(row)


def _target_row(session: Session, stage_run_id: UUID, target_run_id: UUID) -> TargetRun:
    # Locked on PostgreSQL: two concurrent retries of one row make one successor.
    row = session.get(TargetRun, target_run_id, with_for_update=True)
    if row is None or row.stage_run_id != stage_run_id:
        raise LookupError(f"target run {target_run_id} not found")
    return row


def retry_target_run(engine: Engine, stage_run_id: UUID, target_run_id: UUID) -> RetriedTarget:
    """Send a finished target run again: a new pending row (generation + 1, `retry_of` the
    old one) and `superseded_by` on the old one, in one transaction. Raises RetryRefused
    (retry_refusal). Idempotent: a row already superseded by the row this call would create
    answers as the first call did (so a retried activity makes nothing twice)."""
    with session_scope(engine) as session:
        row = _target_row(session, stage_run_id, target_run_id)
        if row.superseded_by == _next_target_run_id(row):
            return _retried(row)
        refusal = retry_refusal(session, row)
        if refusal is not None:
            raise refusal
        return _replace(session, row)


def resume_target_runs(
    engine: Engine, stage_run_id: UUID, target_run_ids: Sequence[str]
) -> list[RetriedTarget]:
    """The later operations of devices whose earlier operation was sent again and succeeded:
    each one that ended only because that operation had failed gets a retry row; any other
    runs as it is (one still pending, for instance). Idempotent like retry_target_run."""
    with session_scope(engine) as session:
        resumed = []
        for target_run_id in target_run_ids:
            row = _target_row(session, stage_run_id, UUID(target_run_id))
            if row.superseded_by is not None:
                resumed.append(_retried(row))
            elif _was_cascaded(row):
                resumed.append(_replace(session, row))
            else:
                resumed.append(RetriedTarget(str(row.id), str(row.target_id),
                                             row.operation_order, row.generation))
        return resumed


# ---- commands ------------------------------------------------------------------------------
@dataclass
class CommandPlan:
    command_id: str
    device_id: str
    operation_type: str
    args: dict[str, Any]
    device_attributes: dict[str, str]
    already_sent: bool
    target_status: str


def prepare_command(engine: Engine, target_run_id: UUID, attempt: int, gateway: str,
                    at: datetime) -> CommandPlan:
    """The command of this attempt, created once (its id derives from the target run and the
    attempt), with the target run moved to processing and pointed at it."""
    with session_scope(engine) as session:
        target = session.get(TargetRun, target_run_id)
        if target is None:
            raise LookupError(f"target run {target_run_id} not found")
        if is_terminal(RunKind.TARGET, target.status):
            # Ended before it started (an operator cancelled it): no command for it.
            return CommandPlan("", str(target.target_id), "", {}, {}, False, target.status)
        operation = session.get(StageRunOperation, target.stage_run_operation_id)
        device = session.get(Device, target.target_id)
        assert operation is not None
        command_id = derive_command_id(target_run_id, attempt)
        command = session.get(Command, command_id)
        if command is None:
            command = Command(
                id=command_id, target_run_id=target_run_id, enterprise_id=target.enterprise_id,
                device_id=target.target_id, operation_type=operation.operation_type,
                args=operation.args, gateway=gateway,
            )
            session.add(command)
        status = apply_status(session, StatusChange(
            RunKind.TARGET, str(target_run_id), TargetRunStatus.PROCESSING, at,
            fields={"command_id": command_id, "command_status": command.status,
                    "attempt": attempt},
        ))
        return CommandPlan(
            command_id=str(command_id), device_id=str(target.target_id),
            operation_type=operation.operation_type, args=dict(operation.args or {}),
            device_attributes=dict(device.attributes or {}) if device else {},
            already_sent=command.sent_at is not None, target_status=status,
        )


def mark_dispatched(engine: Engine, target_run_id: UUID, command_id: UUID,
                    at: datetime) -> str:
    """The gateway queued the command: mark it sent and its target run dispatched, in one
    transaction. Returns the target run's status afterwards."""
    with session_scope(engine) as session:
        command = session.get(Command, command_id)
        if command is not None and command.sent_at is None:
            command.sent_at = at
            command.updated_at = at
            session.add(command)
        return apply_status(session, StatusChange(
            RunKind.TARGET, str(target_run_id), TargetRunStatus.DISPATCHED, at,
            fields={"command_status": CommandStatus.QUEUED.value}))


def mark_command_cancel_requested(engine: Engine, command_id: UUID, at: datetime) -> None:
    with session_scope(engine) as session:
        command = session.get(Command, command_id)
        if command is not None and command.cancel_requested_at is None:
            command.cancel_requested_at = at
            session.add(command)


def pipeline_timeout_seconds(engine: Engine, pipeline_run_id: UUID) -> int:
    with session_scope(engine) as session:
        return load_snapshot(session, pipeline_run_id).timeout_seconds
