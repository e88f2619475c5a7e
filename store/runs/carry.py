"""A retry's stage runs that carry the retried run's results over (store.runs.retry_plans).

A carried target run is a row of the new stage run that says how the retried run's row ended
("carried over from run N") and points at it; it has no command and no workflow, and counts in
its stage run like any other. The others are made pending and run as usual. The stage run
works on the retried stage run's devices, in the same order (groups are not expanded again).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from sqlalchemy import case, func, insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from domain.ids import target_run_id as derive_target_run_id
from domain.records import StagePlan, StatusChange
from domain.statuses import RunKind, StageRunStatus, TargetRunStatus
from store.db import transaction
from store.runs.statuses import apply_status
from store.runs.tables import StageRun, StageRunOperation, StatusEvent, TargetRun

_BATCH = 1000
_STATUS_EVENTS = StatusEvent.__table__  # type: ignore[attr-defined]


def carried_reason(run_number: int) -> str:
    return f"carried over from run {run_number}"


def carried_count(session: Session, stage_run_id: UUID) -> int:
    return session.execute(
        select(func.count()).select_from(TargetRun)
        .where(TargetRun.stage_run_id == stage_run_id,
               col(TargetRun.carried_over_from).is_not(None))).scalar_one()


def copy_targets(session: Session, stage_run: StageRun, *, carry_all: bool,
                 at: datetime) -> StagePlan:
    """The stage run's operations and target runs, from the retried stage run: rows that
    succeeded there (every row with `carry_all`) carried over, the others pending."""
    assert stage_run.carried_from is not None
    old = session.get(StageRun, stage_run.carried_from)
    if old is None:
        raise LookupError(f"stage run {stage_run.carried_from} (carried over) not found")
    reason = carried_reason(old.run_number)
    old_ops = session.exec(select(StageRunOperation).where(
        StageRunOperation.stage_run_id == old.id).order_by(col(StageRunOperation.order))).all()
    new_ops = {op.id: StageRunOperation(
        id=uuid5(stage_run.id, f"operation:{op.order}"), stage_run_id=stage_run.id,
        operation_type=op.operation_type, args=op.args, order=op.order, name=op.name)
        for op in old_ops}
    session.add_all(new_ops.values())
    session.flush()
    carried = 0
    last_seq, last_order = -1, -1
    while True:
        # Keyset pages by (device_seq, operation_order): a big stage is never loaded whole.
        rows = session.exec(
            select(TargetRun).where(
                TargetRun.stage_run_id == old.id, col(TargetRun.superseded_by).is_(None),
                (col(TargetRun.device_seq) > last_seq)
                | ((col(TargetRun.device_seq) == last_seq)
                   & (col(TargetRun.operation_order) > last_order)))
            .order_by(col(TargetRun.device_seq), col(TargetRun.operation_order))
            .limit(_BATCH)).all()
        if not rows:
            break
        last_seq, last_order = rows[-1].device_seq, rows[-1].operation_order
        values, events = [], []
        for row in rows:
            new_id = derive_target_run_id(stage_run.id, row.target_id,
                                          new_ops[row.stage_run_operation_id].id)
            keep = carry_all or row.status == TargetRunStatus.SUCCESS
            values.append({
                "id": new_id, "stage_run_id": stage_run.id,
                "pipeline_run_id": stage_run.pipeline_run_id,
                "enterprise_id": stage_run.enterprise_id,
                "stage_run_operation_id": new_ops[row.stage_run_operation_id].id,
                "operation_order": row.operation_order, "device_seq": row.device_seq,
                "target_id": row.target_id, "device_name": row.device_name,
                "device_alias": row.device_alias,
                "status": row.status if keep else TargetRunStatus.PENDING.value,
                "status_reason": reason if keep else "",
                "carried_over_from": row.id if keep else None,
                "command_meta": {}, "created_at": at, "updated_at": at,
                "started_at": at if keep else None, "ended_at": at if keep else None,
            })
            if keep:
                carried += 1
                # One numbered event per carried row: it went from nothing to its end here.
                events.append({"pipeline_run_id": stage_run.pipeline_run_id,
                               "kind": RunKind.TARGET.value, "run_id": new_id,
                               "from_status": TargetRunStatus.PENDING.value,
                               "to_status": row.status, "reason": reason, "at": at})
        session.execute(insert(TargetRun), values)
        if events:
            session.execute(insert(_STATUS_EVENTS), events)
    stage_run.device_count = old.device_count
    session.add(stage_run)
    return StagePlan([str(op.id) for op in new_ops.values()], old.device_count,
                     carried=carried)


def carry_over_stage(engine: Engine, stage_run_id: UUID, at: datetime) -> str:
    """A stage carried over whole: its rows copied as they ended and the stage run ended as
    the retried one did (success), without a workflow. Returns its status; done once."""
    with transaction(engine) as session:
        stage_run = session.get(StageRun, stage_run_id)
        if stage_run is None:
            raise LookupError(f"stage run {stage_run_id} not found")
        if stage_run.status != StageRunStatus.PENDING:
            return stage_run.status
        old = session.get(StageRun, stage_run.carried_from) if stage_run.carried_from else None
        if old is None:
            raise LookupError(f"stage run {stage_run.carried_from} (carried over) not found")
        already = session.exec(select(StageRunOperation.id).where(
            StageRunOperation.stage_run_id == stage_run_id)).first()
        if already is None:
            copy_targets(session, stage_run, carry_all=True, at=at)
            session.flush()
        return apply_status(session, StatusChange(
            RunKind.STAGE, str(stage_run_id), old.status, at, carried_reason(old.run_number)))


def carried_page(session: Session, stage_run_id: UUID, after_seq: int,
                 limit: int) -> list[tuple[int, str, int]]:
    """A carrying stage run's next devices, by position: (device_seq, device_id, the first
    operation it runs, or -1 when all of its operations are carried over)."""
    first_open = func.min(case((col(TargetRun.carried_over_from).is_(None),
                                col(TargetRun.operation_order))))
    rows = session.execute(
        select(TargetRun.device_seq, TargetRun.target_id, first_open)
        .where(TargetRun.stage_run_id == stage_run_id, TargetRun.device_seq > after_seq,
               TargetRun.generation == 0)
        .group_by(col(TargetRun.device_seq), col(TargetRun.target_id))
        .order_by(col(TargetRun.device_seq)).limit(limit)).all()
    return [(seq, str(device_id), -1 if first is None else first)
            for seq, device_id, first in rows]
