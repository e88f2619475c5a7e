"""Run helpers for the workflow tests: a run's rows as the workflows recorded them, waiting for
a condition, and a run's result. Definitions are built with tests.builders."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from domain.ids import pipeline_run_workflow_id
from store.db import transaction
from store.runs.commands import Command
from store.runs.tables import PipelineRun, StageRun, TargetRun
from workflows.messages import PipelineRunResult


def run_row(engine: Engine, run_id: UUID) -> PipelineRun:
    with transaction(engine) as session:
        row = session.get(PipelineRun, run_id)
        assert row is not None
        return row


def stage_rows(engine: Engine, run_id: UUID) -> list[StageRun]:
    with transaction(engine) as session:
        return list(session.exec(select(StageRun).where(StageRun.pipeline_run_id == run_id)
                                 .order_by(col(StageRun.order))).all())


def target_rows(engine: Engine, stage_run_id: UUID) -> list[TargetRun]:
    with transaction(engine) as session:
        return list(session.exec(
            select(TargetRun).where(TargetRun.stage_run_id == stage_run_id)
            .order_by(col(TargetRun.device_seq), col(TargetRun.operation_order))).all())


def commands_of(engine: Engine, run_id: UUID) -> list[Command]:
    with transaction(engine) as session:
        return list(session.exec(
            select(Command).join(TargetRun, col(TargetRun.id) == Command.target_run_id)
            .where(TargetRun.pipeline_run_id == run_id)).all())


async def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1) -> None:  # noqa: ANN001
    """Poll until predicate() is true; fail with what it last saw otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate):
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


async def result_of(client: Any, run_id: UUID, timeout: float = 60.0) -> Any:
    workflow_id = pipeline_run_workflow_id(run_id)
    # The time-skipping server answers a run-less result poll with nothing: name the run.
    described = await client.get_workflow_handle(workflow_id).describe()
    handle = client.get_workflow_handle(workflow_id, run_id=described.run_id,
                                        result_type=PipelineRunResult)
    return await asyncio.wait_for(handle.result(), timeout)
