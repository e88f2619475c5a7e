"""The steps view of a run: its stages in order, each with its key, what it depends on, its
status and times, its targets' counts and the gate decision that released it; and the run's
counts of steps per state. Served natively (snake_case, in the envelope) and by the
automation-runs view (camelCase, api.peers.automation_runs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from domain.run_views import decision_id, duration_seconds, stage_error, step_bucket
from domain.statuses import RunKind
from store.runs.steps import Step
from store.runs.tables import PipelineRun


class StepPublic(BaseModel):
    key: str = Field(description="The stage's key: its stage id in the run's snapshot, the "
                     "same in every run of that snapshot (a retry's step_key).")
    name: str
    stage_run_id: UUID = Field(description="The stage run (the step's action run).")
    depends_on: list[str] = Field(description="The keys of the stages before it.")
    status: str
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None = Field(description="Null until started; counting while "
                                           "running.")
    error: dict[str, Any] | None = Field(description="Null, or what failed: status, reason, "
                                         "counts of target runs that did not succeed.")
    result: dict[str, int] = Field(description="How many of its target runs are in each "
                                   "status.")
    result_truncated: bool = Field(description="Always false: every status is counted.")
    decision_id: str | None = Field(description="The gate decision that released it (its "
                                    "promote, or the retry it starts); null for an automatic "
                                    "stage or one not released yet.")
    promoted_by: str = Field(description="Who released its gate: an API key id, or empty.")


class RunStepsPublic(BaseModel):
    pipeline_run_id: UUID
    completed_count: int = Field(description="Steps that succeeded.")
    failed_count: int = Field(description="Steps that ended failure, timeout, invalid or "
                              "cancelled.")
    pending_count: int = Field(description="Steps pending or queued.")
    running_count: int = Field(description="Steps processing, running or complete.")
    steps: list[StepPublic]


def steps_view(run: PipelineRun, steps: list[Step], now: datetime) -> dict[str, Any]:
    shown = []
    buckets = {"completed": 0, "failed": 0, "pending": 0, "running": 0}
    for step in steps:
        row = step.stage_run
        status = row.status if row is not None else "pending"
        buckets[step_bucket(status)] += 1
        started = row.started_at if row is not None else None
        ended = row.ended_at if row is not None else None
        shown.append(StepPublic(
            key=step.key, name=step.name, stage_run_id=step.stage_run_id,
            depends_on=step.depends_on, status=status, started_at=started,
            completed_at=ended, duration_seconds=duration_seconds(started, ended, now),
            error=stage_error(RunKind.STAGE, status, row.status_reason if row else "",
                              step.counts),
            result=step.counts, result_truncated=False,
            decision_id=decision_id(step.stage_run_id, trigger=row.trigger if row else "",
                                    promoted_by=row.promoted_by if row else "",
                                    started=started is not None),
            promoted_by=row.promoted_by if row is not None else ""))
    return RunStepsPublic(
        pipeline_run_id=run.id, completed_count=buckets["completed"],
        failed_count=buckets["failed"], pending_count=buckets["pending"],
        running_count=buckets["running"], steps=shown).model_dump(mode="json")
