"""The document's shapes, field by field, and how a pipeline run fills them.

- automationId: the pipeline; automationVersionId: the id of the pipeline version the run's
  snapshot was taken from, derived from the pipeline id and the version number
  (domain.run_views.pipeline_version_id), so every run of one version shows the same id;
- externalJobId: the run's Temporal workflow id; tenantId: the enterprise;
- error: null, or the stage it failed at with the counts of its target runs that did not
  succeed, and the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast, get_args

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from domain.ids import pipeline_run_workflow_id
from domain.retry_modes import RetryMode
from domain.run_views import duration_seconds, pipeline_version_id, stage_error
from domain.statuses import PipelineRunStatus, RunKind
from store.runs.tables import PipelineRun, StageRun

TriggerType = Literal["manual", "retry", "api"]
TriggerSourceType = Literal["user", "api_key", "run"]
TRIGGER_TYPES = get_args(TriggerType)


class AutomationRun(BaseModel):
    id: str
    automationId: str
    automationVersionId: str | None
    versionNumber: int | None
    status: PipelineRunStatus
    createdAt: datetime
    startedAt: datetime | None
    completedAt: datetime | None
    updatedAt: datetime
    durationSeconds: float | None
    error: dict[str, Any] | None
    externalJobId: str
    orchestratorType: Literal["temporal"]
    tenantId: str
    concurrencyKey: str | None
    triggerType: TriggerType
    triggerSourceType: TriggerSourceType | None
    triggerSourceId: str | None


class AutomationRunList(BaseModel):
    items: list[AutomationRun]
    total: int


class AutomationRunRetry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mode: RetryMode = RetryMode.FROM_FAILED
    stepKey: str | None = Field(default=None, max_length=255)


class AutomationRunStep(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    action_run_id: str
    completed_at: datetime | None
    decision_id: str | None
    depends_on: list[str]
    duration_seconds: float | None
    error: dict[str, Any] | None
    key: str
    name: str
    result: dict[str, int]
    result_truncated: bool
    started_at: datetime | None
    status: str


class AutomationRunSteps(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    automation_run_id: str
    completed_count: int
    failed_count: int
    pending_count: int
    running_count: int
    steps: list[AutomationRunStep]


def _error(run: PipelineRun, failed: tuple[StageRun, dict[str, int]] | None
           ) -> dict[str, Any] | None:
    error = stage_error(RunKind.PIPELINE, run.status, run.status_reason,
                        failed[1] if failed else {})
    if error is not None:
        stage_run = failed[0] if failed else None
        error["stage"] = None if stage_run is None else {
            "key": str(stage_run.stage_id), "name": stage_run.stage_name,
            "order": stage_run.order, "actionRunId": str(stage_run.id),
            "status": stage_run.status, "reason": stage_run.status_reason}
    return error


def run_view(run: PipelineRun, failed: tuple[StageRun, dict[str, int]] | None,
             now: datetime) -> dict[str, Any]:
    version = run.pipeline_version or None  # 0: a run from before pipelines had versions
    source_type = run.trigger_source_type or None
    return AutomationRun(
        id=str(run.id), automationId=str(run.pipeline_id),
        automationVersionId=str(pipeline_version_id(run.pipeline_id, version))
        if version else None,
        versionNumber=version, status=PipelineRunStatus(run.status),
        createdAt=run.created_at, startedAt=run.started_at, completedAt=run.ended_at,
        updatedAt=run.updated_at,
        durationSeconds=duration_seconds(run.started_at, run.ended_at, now),
        error=_error(run, failed), externalJobId=pipeline_run_workflow_id(run.id),
        orchestratorType="temporal", tenantId=str(run.enterprise_id),
        # The concurrency key's column comes with concurrency keys; until then there is none.
        concurrencyKey=getattr(run, "concurrency_key", None),
        triggerType=cast(TriggerType, run.trigger_type if run.trigger_type in TRIGGER_TYPES
                         else "manual"),
        triggerSourceType=cast(TriggerSourceType | None, source_type),
        triggerSourceId=(run.trigger_source or None) if source_type else None,
    ).model_dump(mode="json")


def steps_of(native: dict[str, Any]) -> dict[str, Any]:
    """The native steps view (api.steps_view) in the document's names."""
    return AutomationRunSteps(
        automation_run_id=native["pipeline_run_id"],
        completed_count=native["completed_count"], failed_count=native["failed_count"],
        pending_count=native["pending_count"], running_count=native["running_count"],
        steps=[AutomationRunStep(action_run_id=step["stage_run_id"], **{
            key: value for key, value in step.items()
            if key not in ("stage_run_id", "promoted_by")}) for step in native["steps"]],
    ).model_dump(mode="json", by_alias=True)
