"""Running the real workflows on the fake activities: the two workers, a run, and a hang guard.

The workers are worker.running_worker's two, with the fakes in place of RunActivities: pipeline
and stage runs on the task queue, target runs on its targets queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from domain.ids import pipeline_run_workflow_id, stage_run_workflow_id
from tests.workflows.fast.fake_activities import FakeRunStore, StageRow
from worker import RUN_WORKFLOWS, TARGET_WORKFLOWS
from workflows import names
from workflows.messages import PipelineRunInput, PipelineRunResult, StageRunResult, StageState

ENTERPRISE_ID = "00000000-0000-0000-0000-0000000000e1"
# Only against a hang: no test asserts how long anything took.
HANG_GUARD = 30.0


@asynccontextmanager
async def fast_workers(client: Client, task_queue: str,
                       store: FakeRunStore) -> AsyncIterator[None]:
    activities = store.activities()
    runs = Worker(client, task_queue=task_queue, workflows=RUN_WORKFLOWS, activities=activities)
    targets = Worker(client, task_queue=names.targets_task_queue(task_queue),
                     workflows=TARGET_WORKFLOWS, activities=activities)
    try:
        async with runs, targets:
            yield
    finally:
        await store.fleet.close()


async def start_run(client: Client, store: FakeRunStore, task_queue: str, *,
                    window: int = 200) -> WorkflowHandle[Any, PipelineRunResult]:
    return await client.start_workflow(
        names.PIPELINE_RUN_WORKFLOW,
        PipelineRunInput(pipeline_run_id=store.pipeline_run_id, enterprise_id=ENTERPRISE_ID,
                         search_attributes=False, stage_window=window),
        id=pipeline_run_workflow_id(store.pipeline_run_id), task_queue=task_queue,
        result_type=PipelineRunResult)


def stage_handle(client: Client, stage: StageRow) -> WorkflowHandle[Any, StageRunResult]:
    return client.get_workflow_handle(stage_run_workflow_id(stage.run_id),
                                      result_type=StageRunResult)


async def stage_state(client: Client, stage: StageRow) -> StageState:
    return await stage_handle(client, stage).query(names.QUERY_STAGE_STATE,
                                                   result_type=StageState)


async def result_of(handle: WorkflowHandle[Any, Any]) -> Any:
    return await asyncio.wait_for(handle.result(), HANG_GUARD)


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait for the fakes to show `predicate`; fail saying `what` if they never do."""
    deadline = time.monotonic() + HANG_GUARD
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)
