"""A stage run's target runs (device x operation): made from the snapshot once, in chunks
(store.runs.materialize, re-exported here), paged to the stage workflow by device position,
appended one device at a time, counted, and closed while still pending."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from domain.ids import target_run_id as derive_target_run_id
from domain.records import StatusChange
from domain.statuses import RunKind, TargetRunStatus
from store.db import transaction
from store.definitions.devices import Device
from store.runs import carry
from store.runs.materialize import materialize_targets as materialize_targets  # its old path
from store.runs.statuses import apply_status
from store.runs.tables import StageRun, StageRunOperation, TargetRun

_BATCH = 1000


class StageNotReady(LookupError):
    """A stage run asked to take a target before it made its own."""


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
        if not operations or not stage_run.device_count:  # none yet, or still being made
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
