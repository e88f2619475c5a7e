"""Test-side builders: a fleet and pipelines written straight into the store, and run helpers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from domain.ids import pipeline_run_workflow_id
from store.db import transaction
from store.definitions.devices import Device
from store.definitions.operation_lists import Operation, OperationList
from store.definitions.pipelines import Pipeline, Stage
from store.definitions.target_lists import StageTargetList, TargetList, TargetListDevice
from store.definitions.tenants import ensure_enterprise
from store.runs.commands import Command
from store.runs.tables import PipelineRun, StageRun, TargetRun
from workflows.messages import PipelineRunResult

INSTALL = {"operation_type": "INSTALL",
           "args": {"package_name": "com.example.app", "app_version": "1.2.3"}}
REBOOT = {"operation_type": "REBOOT", "args": {}}


@dataclass
class StageSpec:
    name: str
    trigger: str = "automatic"
    devices: list[dict[str, str]] = field(default_factory=lambda: [{}])  # attributes per device
    operations: list[dict[str, Any]] = field(default_factory=lambda: [INSTALL])
    timeout_seconds: int | None = None
    rollout: dict[str, Any] = field(default_factory=dict)


def make_pipeline(engine: Engine, stages: list[StageSpec], *, enterprise: str = "acme",
                  name: str = "rollout", timeout_seconds: int | None = None) -> tuple[UUID, UUID]:
    """(enterprise id, pipeline id) of a new pipeline with fresh devices for each stage."""
    ent = ensure_enterprise(engine, enterprise)
    with transaction(engine) as session:
        pipeline = Pipeline(enterprise_id=ent.id, name=name)
        if timeout_seconds is not None:
            pipeline.timeout_seconds = timeout_seconds
        session.add(pipeline)
        session.flush()
        for order, spec in enumerate(stages):
            stage = Stage(pipeline_id=pipeline.id, name=spec.name, order=order,
                          trigger=spec.trigger, rollout=spec.rollout)
            if spec.timeout_seconds is not None:
                stage.timeout_seconds = spec.timeout_seconds
            session.add(stage)
            session.flush()
            target_list = TargetList(pipeline_id=pipeline.id, name=f"{spec.name}-targets")
            op_list = OperationList(pipeline_id=pipeline.id, stage_id=stage.id, name=spec.name)
            session.add_all([target_list, op_list])
            session.flush()
            session.add(StageTargetList(stage_id=stage.id, target_list_id=target_list.id))
            for index, attributes in enumerate(spec.devices):
                device = Device(enterprise_id=ent.id, name=f"{spec.name}-dev-{index}",
                                alias=f"d{index}", attributes=attributes)
                session.add(device)
                session.flush()
                session.add(TargetListDevice(target_list_id=target_list.id, device_id=device.id))
            for index, op in enumerate(spec.operations):
                session.add(Operation(operation_list_id=op_list.id, order=index, **op))
        return ent.id, pipeline.id


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
