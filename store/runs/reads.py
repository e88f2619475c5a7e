"""The API's reads of runs, served from the rows the workflows record (never from Temporal):
one run scoped to the caller's enterprise, or a filtered, ordered page; and deleting a run
that has finished."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import Row, delete, func
from sqlmodel import Session, col, select

from domain.statuses import STATUSES, RunKind, is_terminal
from store import paging
from store.definitions.pipelines import Pipeline
from store.paging import Page, page, status_rank
from store.runs.commands import Command, CommandEvent
from store.runs.tables import PipelineRun, StageRun, StageRunOperation, StatusEvent, TargetRun
from store.tenancy import NotFound, owned, scoped


class RunNotTerminal(ValueError):
    """A pipeline run that may not be deleted yet: it has not reached a terminal status."""

    def __init__(self, run_id: UUID, status: str) -> None:
        super().__init__(
            f"pipeline run {run_id} is {status}; only a finished run (success, failure, "
            "cancelled, invalid or timeout) can be deleted"
        )
        self.status = status


@dataclass
class StageRunRow:
    """A stage run with the per-status counts of its target runs."""

    stage_run: StageRun
    target_run_counts: dict[str, int]


# ---- pipeline runs -----------------------------------------------------------------------------

_RUN_ORDERING = {
    "run_number": col(PipelineRun.run_number),
    "status": status_rank(col(PipelineRun.status), RunKind.PIPELINE),
    "pipeline__name": col(PipelineRun.pipeline_name),
    "started_at": col(PipelineRun.started_at),
    "ended_at": col(PipelineRun.ended_at),
    "created_at": col(PipelineRun.created_at),
}
# The per-pipeline list of the reference has no pipeline__name ordering (one pipeline).
_PIPELINE_RUN_ORDERING = {k: v for k, v in _RUN_ORDERING.items() if k != "pipeline__name"}
RUN_ORDERINGS = paging.ordering_values(_RUN_ORDERING)
PIPELINE_RUN_ORDERINGS = paging.ordering_values(_PIPELINE_RUN_ORDERING)


def list_pipeline_runs(
    session: Session,
    enterprise_id: UUID,
    *,
    pipeline_id: UUID | None = None,
    status: str | None = None,
    pipeline_name: str | None = None,
    run_number: int | None = None,
    ordering: str | None = None,
    limit: int,
    offset: int,
) -> Page[PipelineRun]:
    stmt = scoped(PipelineRun, enterprise_id)
    columns = _RUN_ORDERING
    if pipeline_id is not None:
        _require_pipeline_or_runs(session, enterprise_id, pipeline_id)
        stmt = stmt.where(PipelineRun.pipeline_id == pipeline_id)
        columns = _PIPELINE_RUN_ORDERING
    if status:
        stmt = stmt.where(PipelineRun.status == status)
    if pipeline_name:
        stmt = stmt.where(PipelineRun.pipeline_name == pipeline_name)
    if run_number is not None:
        stmt = stmt.where(PipelineRun.run_number == run_number)
    order = paging.ordering(ordering, columns, [col(PipelineRun.created_at).desc()],
                            col(PipelineRun.id), then=[col(PipelineRun.created_at)])
    return page(session, stmt, order, limit, offset)


def _require_pipeline_or_runs(session: Session, enterprise_id: UUID, pipeline_id: UUID) -> None:
    """A pipeline's runs outlive its definition: known if either the pipeline or a run exists."""
    for model, column in ((Pipeline, Pipeline.id), (PipelineRun, PipelineRun.pipeline_id)):
        found = session.exec(scoped(model, enterprise_id, model.id)  # type: ignore[attr-defined]
                             .where(column == pipeline_id).limit(1)).first()
        if found is not None:
            return
    raise NotFound("pipeline", pipeline_id)


def get_pipeline_run(
    session: Session, enterprise_id: UUID, pipeline_run_id: UUID, pipeline_id: UUID | None = None
) -> PipelineRun:
    return owned(session, PipelineRun, pipeline_run_id, enterprise_id, "pipeline run",
                 pipeline_id=pipeline_id)


def delete_pipeline_run(session: Session, enterprise_id: UUID, pipeline_run_id: UUID,
                        pipeline_id: UUID | None = None) -> PipelineRun:
    """Delete a finished run and everything recorded under it (its workflows have all closed,
    so no writer can touch these rows again)."""
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
    return run


# ---- stage runs --------------------------------------------------------------------------------


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
    found = page(session, stmt, [col(StageRun.order), col(StageRun.id)], limit, offset)
    counts = target_run_counts(session, [row.id for row in found.items])
    return Page(count=found.count,
                items=[StageRunRow(row, counts[row.id]) for row in found.items])


def get_stage_run(
    session: Session, enterprise_id: UUID, stage_run_id: UUID, pipeline_run_id: UUID | None = None
) -> StageRun:
    return owned(session, StageRun, stage_run_id, enterprise_id, "stage run",
                 pipeline_run_id=pipeline_run_id)


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
    return page(session, stmt, [col(StageRunOperation.order), col(StageRunOperation.id)],
                limit, offset)


def get_stage_run_operation(
    session: Session, enterprise_id: UUID, stage_run_id: UUID, stage_run_operation_id: UUID
) -> StageRunOperation:
    get_stage_run(session, enterprise_id, stage_run_id)
    return owned(session, StageRunOperation, stage_run_operation_id, enterprise_id,
                 "stage run operation", stage_run_id=stage_run_id)


# ---- target runs -------------------------------------------------------------------------------

_TARGET_RUN_ORDERING = {
    "status": status_rank(col(TargetRun.status), RunKind.TARGET),
    "created_at": col(TargetRun.created_at),
    "started_at": col(TargetRun.started_at),
    "ended_at": col(TargetRun.ended_at),
    "device_name": col(TargetRun.device_name),
}
TARGET_RUN_ORDERINGS = paging.ordering_values(_TARGET_RUN_ORDERING)


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
    order = paging.ordering(ordering, _TARGET_RUN_ORDERING, default, col(TargetRun.id),
                            then=default)
    return page(session, stmt, order, limit, offset, plain_rows=True)


def get_target_run(
    session: Session, enterprise_id: UUID, target_run_id: UUID, stage_run_id: UUID | None = None
) -> TargetRun:
    return owned(session, TargetRun, target_run_id, enterprise_id, "target run",
                 stage_run_id=stage_run_id)


def get_target_runs(session: Session, target_run_ids: Sequence[UUID]) -> list[TargetRun]:
    if not target_run_ids:
        return []
    rows = session.exec(select(TargetRun).where(col(TargetRun.id).in_(list(target_run_ids))))
    by_id = {row.id: row for row in rows.all()}
    return [by_id[target_run_id] for target_run_id in target_run_ids if target_run_id in by_id]
