"""A run's steps (its stage runs, in order, each with its key, what it depends on and its
targets' counts) and, for a page of runs, the stage each failed at: the reads behind the steps
view and the automation-run view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID, uuid5

from sqlmodel import Session, col, select

from domain.schemas import PipelineSnapshot
from domain.statuses import RunKind, StageRunStatus, is_terminal
from store.runs.reads import get_pipeline_run, target_run_counts
from store.runs.tables import PipelineRun, StageRun


@dataclass
class Step:
    """A stage of a run: its stage run (None before the run made it) and what the view shows."""

    key: str  # the stage's id in the run's snapshot: the same in every run of that snapshot
    name: str
    order: int
    stage_run_id: UUID  # derived, so known before the row exists
    stage_run: StageRun | None
    depends_on: list[str]
    counts: dict[str, int]


def run_steps(session: Session, enterprise_id: UUID, run_id: UUID,
              pipeline_id: UUID | None = None) -> tuple[PipelineRun, list[Step]]:
    run = get_pipeline_run(session, enterprise_id, run_id, pipeline_id)
    snapshot = PipelineSnapshot.model_validate(run.snapshot)
    rows = {row.order: row for row in session.exec(
        select(StageRun).where(StageRun.pipeline_run_id == run.id))}
    counts = target_run_counts(session, [row.id for row in rows.values()])
    steps: list[Step] = []
    for index, stage in enumerate(snapshot.stages):
        row = rows.get(index + 1)
        # The id the run gives (or gave) this stage's run: store.runs.creation derives it so.
        stage_run_id = row.id if row is not None else uuid5(run.id,
                                                            f"stage:{index}:{stage.stage_id}")
        steps.append(Step(key=str(stage.stage_id), name=stage.name, order=index + 1,
                          stage_run_id=stage_run_id, stage_run=row,
                          depends_on=[step.key for step in steps],
                          counts=counts.get(stage_run_id, {})))
    return run, steps


def failed_stages(session: Session,
                  runs: Sequence[PipelineRun]) -> dict[UUID, tuple[StageRun, dict[str, int]]]:
    """For each run that ended other than success, the first of its stage runs that did too,
    with its targets' counts."""
    ended = [run.id for run in runs if is_terminal(RunKind.PIPELINE, run.status)
             and run.status != "success"]
    if not ended:
        return {}
    rows = session.exec(
        select(StageRun).where(col(StageRun.pipeline_run_id).in_(ended),
                               col(StageRun.status).in_([
                                   StageRunStatus.FAILURE, StageRunStatus.TIMEOUT,
                                   StageRunStatus.INVALID, StageRunStatus.CANCELLED]))
        .order_by(col(StageRun.pipeline_run_id), col(StageRun.order))).all()
    first: dict[UUID, StageRun] = {}
    for row in rows:
        first.setdefault(row.pipeline_run_id, row)
    counts = target_run_counts(session, [row.id for row in first.values()])
    return {run_id: (row, counts[row.id]) for run_id, row in first.items()}
