"""Run rows written straight into the read model, for read tests that need no workflow: the
shapes the workflows record (pipeline runs, stage runs, operations, target runs, a command)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy.engine import Engine

from domain.ids import target_run_id
from store.db import transaction
from store.runs.commands import Command, CommandEvent
from store.runs.tables import PipelineRun, StageRun, StageRunOperation, TargetRun

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Seeded:
    runs: list[PipelineRun] = field(default_factory=list)
    stage_runs: list[StageRun] = field(default_factory=list)
    operations: list[StageRunOperation] = field(default_factory=list)
    target_runs: list[TargetRun] = field(default_factory=list)
    command: Command | None = None


def seed_runs(engine: Engine, enterprise_id: UUID) -> Seeded:
    """Two pipelines ("alpha" with three runs, "beta" with one); alpha's first run has two stage
    runs, the first with two operations over three devices (six target runs)."""
    seeded = Seeded()
    alpha, beta = uuid4(), uuid4()
    plan = [  # pipeline, name, run_number, status, started offset (min), ended offset
        (alpha, "alpha", 1, "success", 1, 30),
        (alpha, "alpha", 2, "waiting", 5, None),
        (alpha, "alpha", 3, "pending", None, None),
        (beta, "beta", 1, "failure", 2, 10),
    ]
    with transaction(engine) as session:
        for index, (pipeline_id, name, number, status, started, ended) in enumerate(plan):
            run = PipelineRun(
                enterprise_id=enterprise_id, pipeline_id=pipeline_id, pipeline_name=name,
                run_number=number, status=status, created_at=T0 + timedelta(minutes=index),
                started_at=T0 + timedelta(minutes=started) if started is not None else None,
                ended_at=T0 + timedelta(minutes=ended) if ended is not None else None)
            session.add(run)
            seeded.runs.append(run)
        session.flush()
        first = seeded.runs[0]
        for order, (name, status) in enumerate([("canary", "success"), ("fleet", "running")]):
            stage_run = StageRun(
                pipeline_run_id=first.id, enterprise_id=enterprise_id, stage_id=uuid4(),
                stage_name=name, order=order, run_number=1, timeout_seconds=600, status=status,
                device_count=3 if order == 0 else 0)
            session.add(stage_run)
            seeded.stage_runs.append(stage_run)
        session.flush()
        canary = seeded.stage_runs[0]
        for order, op_type in enumerate(["INSTALL", "REBOOT"]):
            operation = StageRunOperation(stage_run_id=canary.id, operation_type=op_type,
                                          order=order, name=op_type)
            session.add(operation)
            seeded.operations.append(operation)
        session.flush()
        statuses = [["success", "failure", "running"], ["success", "cancelled", "pending"]]
        for op_index, operation in enumerate(seeded.operations):
            for seq in range(3):
                device_id = uuid4()
                target = TargetRun(
                    id=target_run_id(canary.id, device_id, operation.id),
                    stage_run_id=canary.id, pipeline_run_id=first.id,
                    enterprise_id=enterprise_id, stage_run_operation_id=operation.id,
                    operation_order=op_index, device_seq=seq, target_id=device_id,
                    device_name=f"dev-{seq}", device_alias=f"a{seq}",
                    status=statuses[op_index][seq])
                session.add(target)
                seeded.target_runs.append(target)
        session.flush()
        running = seeded.target_runs[2]
        command = Command(id=uuid4(), target_run_id=running.id, enterprise_id=enterprise_id,
                          device_id=running.target_id, operation_type="INSTALL",
                          status="inprogress", gateway="simulated")
        session.add(command)
        running.command_id = command.id
        running.command_status = "inprogress"
        running.command_meta = {"progress": 50}
        session.add(running)
        session.add(CommandEvent(command_id=command.id, status="queued", sequence=1))
        session.add(CommandEvent(command_id=command.id, status="inprogress", sequence=2))
        seeded.command = command
    return seeded
