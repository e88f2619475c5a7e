"""Starting a pipeline run: the row (numbered, with its snapshot) and then its workflow.

Used by the API, the CLI and tests. If the workflow cannot be started, the row is removed
again, so a failed start leaves nothing half-made behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from uuid import UUID

from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.common import TypedSearchAttributes

from domain.concurrency import check_concurrency_key
from domain.ids import pipeline_run_workflow_id
from domain.inputs import SensitiveValues
from store.definitions.tenants import enterprise_name
from store.runs.creation import create_pipeline_run, discard_pipeline_run
from store.runs.tables import PipelineRun
from workflows import labels
from workflows.messages import PipelineRunInput, RunLabels
from workflows.pipeline_run import PipelineRunWorkflow


def run_labels(run: PipelineRun, enterprise: str) -> RunLabels:
    return RunLabels(enterprise_name=enterprise, enterprise_id=str(run.enterprise_id),
                     pipeline_name=run.pipeline_name, run_number=run.run_number)


def run_search_attributes(run: PipelineRun, enterprise: str = "") -> TypedSearchAttributes:
    return labels.search_attributes(labels.PIPELINE, run_labels(run, enterprise), run.status)


async def start_pipeline_run(
    client: Client,
    engine: Engine,
    *,
    enterprise_id: UUID,
    pipeline_id: UUID,
    task_queue: str,
    search_attributes: bool = True,
    stage_window: int = 200,
    stage_history_budget: int = 4_000,
    targets_task_queue: str = "",
    trigger_type: str = "manual",
    trigger_source: str = "",
    previous_run_id: UUID | None = None,
    concurrency_key: str | None = None,
    input_values: Mapping[str, Any] | None = None,
    sensitive: SensitiveValues | None = None,
    trigger_source_type: str = "",
    before_start: Callable[[PipelineRun], Awaitable[None]] | None = None,
) -> PipelineRun:
    """Create the run row and start its PipelineRunWorkflow. Raises store.runs.creation.
    PipelineNotFound for an unknown pipeline (or one of another enterprise), and domain.inputs.
    InvalidInput for an input reference the run cannot fill. Sensitive values go only into the
    workflow's input (encrypted by the codec); the row keeps their names. With a concurrency
    key the run waits `queued` for the enterprise's other runs with that key (ValueError for a
    key domain.concurrency refuses). `before_start` runs once the row exists and before its
    workflow can write anything (the audit trail's record of the start, first in the run's
    log)."""
    if concurrency_key is not None:
        check_concurrency_key(concurrency_key)
    run = await asyncio.to_thread(
        create_pipeline_run, engine, enterprise_id, pipeline_id, trigger_type=trigger_type,
        trigger_source=trigger_source, previous_run_id=previous_run_id,
        concurrency_key=concurrency_key, input_values=input_values,
        sensitive_names=sorted(sensitive.values) if sensitive else [],
        trigger_source_type=trigger_source_type)
    await start_run_workflow(client, engine, run, task_queue=task_queue,
                             search_attributes=search_attributes, stage_window=stage_window,
                             stage_history_budget=stage_history_budget,
                             targets_task_queue=targets_task_queue,
                             sensitive=sensitive, before_start=before_start)
    return run


async def start_run_workflow(
    client: Client,
    engine: Engine,
    run: PipelineRun,
    *,
    task_queue: str,
    search_attributes: bool = True,
    stage_window: int = 200,
    stage_history_budget: int = 4_000,
    targets_task_queue: str = "",
    sensitive: SensitiveValues | None = None,
    before_start: Callable[[PipelineRun], Awaitable[None]] | None = None,
) -> None:
    """Start the PipelineRunWorkflow of a run row just made (a new run or a retry); if it
    cannot be started, the row is removed again."""
    try:
        enterprise = await asyncio.to_thread(enterprise_name, engine, run.enterprise_id)
        named = run_labels(run, enterprise)
        if before_start is not None:
            await before_start(run)
        await client.start_workflow(
            PipelineRunWorkflow.run,
            PipelineRunInput(pipeline_run_id=str(run.id), enterprise_id=str(run.enterprise_id),
                             search_attributes=search_attributes, stage_window=stage_window,
                             stage_history_budget=stage_history_budget,
                             targets_task_queue=targets_task_queue,
                             concurrency_key=run.concurrency_key,
                             sensitive=sensitive if sensitive and sensitive.values else None,
                             labels=named),
            id=pipeline_run_workflow_id(run.id),
            task_queue=task_queue,
            search_attributes=(run_search_attributes(run, enterprise) if search_attributes
                               else None),
            static_summary=labels.summary(named)
            + (f" (retry of run `{run.previous_run_id}`)" if run.previous_run_id else ""),
            static_details=f"pipeline `{run.pipeline_id}`, run `{run.id}`",
        )
    except BaseException:
        await asyncio.to_thread(discard_pipeline_run, engine, run.id)
        raise
