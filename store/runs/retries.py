"""Sending a finished target run again (domain.retries): a new row for the same device x
operation, the old one keeping its status and pointing at its successor; and resuming a
device's later operations once the retried one succeeded."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from domain.ids import target_run_id as derive_target_run_id
from domain.records import RetriedTarget
from domain.retries import EARLIER_OPERATION_FAILED, RETRYABLE
from domain.statuses import TargetRunStatus
from store.db import transaction
from store.runs.tables import TargetRun
from store.types import utcnow


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
        replaced_command_status=row.command_status, device_name=row.device_name)


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
    with transaction(engine) as session:
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
    with transaction(engine) as session:
        resumed = []
        for target_run_id in target_run_ids:
            row = _target_row(session, stage_run_id, UUID(target_run_id))
            if row.superseded_by is not None:
                resumed.append(_retried(row))
            elif _was_cascaded(row):
                resumed.append(_replace(session, row))
            else:
                resumed.append(RetriedTarget(str(row.id), str(row.target_id),
                                             row.operation_order, row.generation,
                                             device_name=row.device_name))
        return resumed


