"""Starting a pipeline run: the row (numbered, with its snapshot) and then its workflow.

Used by the API, the CLI and tests. If the workflow cannot be started, the row is removed
again, so a failed start leaves nothing half-made behind.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.common import TypedSearchAttributes

from domain.ids import pipeline_run_workflow_id
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
) -> PipelineRun:
    """Create the run row and start its PipelineRunWorkflow. Raises store.runs.creation.
    PipelineNotFound for an unknown pipeline (or one of another enterprise)."""
    run = await asyncio.to_thread(
        create_pipeline_run, engine, enterprise_id, pipeline_id, trigger_type=trigger_type,
        trigger_source=trigger_source, previous_run_id=previous_run_id)
    try:
        enterprise = await asyncio.to_thread(enterprise_name, engine, enterprise_id)
        named = run_labels(run, enterprise)
        await client.start_workflow(
            PipelineRunWorkflow.run,
            PipelineRunInput(pipeline_run_id=str(run.id), enterprise_id=str(enterprise_id),
                             search_attributes=search_attributes, stage_window=stage_window,
                             stage_history_budget=stage_history_budget,
                             targets_task_queue=targets_task_queue, labels=named),
            id=pipeline_run_workflow_id(run.id),
            task_queue=task_queue,
            search_attributes=(run_search_attributes(run, enterprise) if search_attributes
                               else None),
            static_summary=labels.summary(named),
            static_details=f"pipeline `{run.pipeline_id}`, run `{run.id}`",
        )
    except BaseException:
        await asyncio.to_thread(discard_pipeline_run, engine, run.id)
        raise
    return run
