"""A retry of a finished pipeline run: a new run of the same snapshot, numbered like any run,
pointing at the run it retries, with its plan (domain.retry_modes) kept on its row.

The plan is decided once, here, in the transaction that makes the row, so the run's workflow
and its activities only read it back: a replayed or retried activity finds the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from domain.retry_modes import Carry, PastStage, RetryMode, RetryNotPossible, plan_retry
from domain.schemas import PipelineSnapshot, StageTrigger
from domain.statuses import RunKind, TargetRunStatus, is_terminal
from store.db import transaction
from store.runs.tables import PipelineRun, StageRun, TargetRun
from store.tenancy import NotFound

RETRY_TRIGGER = "retry"


@dataclass(frozen=True)
class PlannedStage:
    """One stage of a retry as its stage run records it."""

    carry: str
    released: bool
    carried_from: UUID | None
    requested_by: str

    def stage_run_fields(self, trigger: str) -> dict[str, Any]:
        fields: dict[str, Any] = {"carry": self.carry, "carried_from": self.carried_from}
        if self.released and trigger == StageTrigger.MANUAL:
            # The retry request is the decision that releases the gate it starts at.
            fields["promoted_by"] = self.requested_by
        return fields


def retry_steps(run: PipelineRun) -> list[PlannedStage]:
    """The run's retry plan, one entry per stage of its snapshot ([] unless a retry)."""
    plan = run.retry_plan or {}
    by = str(plan.get("requested_by", ""))
    return [PlannedStage(carry=entry["carry"], released=entry["released"],
                         carried_from=UUID(entry["from"]) if entry.get("from") else None,
                         requested_by=by)
            for entry in plan.get("stages", [])]


def _past_stages(session: Session, old: PipelineRun,
                 snapshot: PipelineSnapshot) -> tuple[list[PastStage], list[StageRun | None]]:
    rows = {row.order: row for row in session.exec(
        select(StageRun).where(StageRun.pipeline_run_id == old.id))}
    not_succeeded: dict[UUID, int] = dict(session.execute(
        select(TargetRun.stage_run_id, func.count())
        .where(TargetRun.pipeline_run_id == old.id, col(TargetRun.superseded_by).is_(None),
               TargetRun.status != TargetRunStatus.SUCCESS)
        .group_by(col(TargetRun.stage_run_id))).all())
    past, matched = [], []
    for index, stage in enumerate(snapshot.stages):
        row = rows.get(index + 1)
        matched.append(row)
        made = row is not None and row.device_count > 0
        past.append(PastStage(
            key=str(stage.stage_id), name=stage.name,
            status=row.status if row is not None else "pending", made_targets=made,
            all_succeeded=made and row is not None and not not_succeeded.get(row.id, 0)))
    return past, matched


def create_retry_run(engine: Engine, enterprise_id: UUID, run_id: UUID, mode: RetryMode,
                     step_key: str | None, *, requested_by: str,
                     pipeline_id: UUID | None = None) -> PipelineRun:
    """Make the retry's row (pending, next run number), or refuse with RetryNotPossible
    (NotFound for a run of another enterprise). Nothing is written when it refuses."""
    from store.runs.creation import PipelineNotFound, next_run_number

    with transaction(engine) as session:
        old = session.get(PipelineRun, run_id)
        if old is None or old.enterprise_id != enterprise_id or (
                pipeline_id is not None and old.pipeline_id != pipeline_id):
            raise NotFound("pipeline run", run_id)
        if not is_terminal(RunKind.PIPELINE, old.status):
            raise RetryNotPossible("status", f"run {old.run_number} is {old.status}: only a "
                                   "finished run (success, failure, cancelled, invalid, "
                                   "timeout) can be retried", conflict=True)
        if old.sensitive_input_aliases:
            # Sensitive values are never stored, so a retry could only send their references.
            raise RetryNotPossible("sensitive_input_values", f"run {old.run_number} had "
                                   "sensitive inputs, which are never kept: start a new run "
                                   "and give them again", conflict=True)
        snapshot = PipelineSnapshot.model_validate(old.snapshot)
        past, matched = _past_stages(session, old, snapshot)
        steps = plan_retry(mode, past, step_key, old.run_number)
        try:
            _, number = next_run_number(session, enterprise_id, old.pipeline_id)
        except PipelineNotFound:
            raise RetryNotPossible("status", f"the pipeline of run {old.run_number} was "
                                   "deleted: a retry cannot be numbered among its runs",
                                   conflict=True) from None
        run = PipelineRun(
            enterprise_id=enterprise_id, pipeline_id=old.pipeline_id,
            pipeline_name=old.pipeline_name, run_number=number, snapshot=old.snapshot,
            pipeline_version=old.pipeline_version, previous_run_id=old.id,
            trigger_type=RETRY_TRIGGER, trigger_source_type="run", trigger_source=str(old.id),
            concurrency_key=old.concurrency_key, input_values=dict(old.input_values or {}),
            retry_mode=mode.value,
            retry_plan={
                "from_run_number": old.run_number, "requested_by": requested_by,
                "stages": [{"carry": step.carry.value, "released": step.released,
                            "from": str(row.id) if row is not None
                            and step.carry != Carry.NONE else None}
                           for step, row in zip(steps, matched, strict=True)],
            },
        )
        session.add(run)
    return run


def retries_of(session: Session, run_ids: list[UUID]) -> dict[UUID, list[UUID]]:
    """The runs that retry each of these runs, oldest first."""
    found: dict[UUID, list[UUID]] = {run_id: [] for run_id in run_ids}
    if not run_ids:
        return found
    rows = session.exec(
        select(PipelineRun.previous_run_id, PipelineRun.id)
        .where(col(PipelineRun.previous_run_id).in_(run_ids))
        .order_by(col(PipelineRun.created_at), col(PipelineRun.run_number))).all()
    for previous, run_id in rows:
        if previous is not None:
            found[previous].append(run_id)
    return found
