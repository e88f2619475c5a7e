"""Making a run: its number, its snapshot of the pipeline, and its stage runs.

Idempotent like every workflow write: stage runs have derived ids, made the first time only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from domain.inputs import alias, apply_to_snapshot
from domain.records import StageRunInfo
from domain.schemas import OperationSnapshot, PipelineSnapshot, RolloutConfig, StageSnapshot
from store.db import transaction
from store.definitions.operation_lists import Operation, OperationList
from store.definitions.pipelines import Pipeline, Stage
from store.definitions.target_lists import StageTargetList, TargetListDevice, TargetListGroup
from store.runs.retry_plans import retry_steps
from store.runs.tables import PipelineRun, StageRun


class PipelineNotFound(LookupError):
    pass


def snapshot_pipeline(session: Session, pipeline: Pipeline) -> PipelineSnapshot:
    """The pipeline as it is now: what a run works on, whatever edits come later."""
    stages = session.exec(
        select(Stage).where(Stage.pipeline_id == pipeline.id)
        .order_by(col(Stage.order), col(Stage.created_at))
    ).all()
    snapshots = []
    for stage in stages:
        list_ids = session.exec(
            select(StageTargetList.target_list_id).where(StageTargetList.stage_id == stage.id)
        ).all()
        device_ids = session.exec(
            select(TargetListDevice.device_id)
            .where(col(TargetListDevice.target_list_id).in_(list_ids))
            .order_by(col(TargetListDevice.created_at))
        ).all()
        group_ids = session.exec(
            select(TargetListGroup.device_group_id)
            .where(col(TargetListGroup.target_list_id).in_(list_ids))
            .order_by(col(TargetListGroup.created_at))
        ).all()
        operations = session.exec(
            select(Operation)
            .join(OperationList, col(Operation.operation_list_id) == OperationList.id)
            .where(OperationList.stage_id == stage.id)
            .order_by(
                col(OperationList.created_at), col(Operation.order), col(Operation.created_at)
            )
        ).all()
        snapshots.append(
            StageSnapshot(
                stage_id=stage.id,
                name=stage.name,
                description=stage.description,
                order=stage.order,
                trigger=stage.trigger,
                timeout_seconds=stage.timeout_seconds,
                rollout=RolloutConfig.model_validate(stage.rollout or {}),
                device_ids=list(dict.fromkeys(device_ids)),
                device_group_ids=list(dict.fromkeys(group_ids)),
                operations=[
                    OperationSnapshot(
                        operation_type=op.operation_type, args=op.args or {}, order=index,
                        name=op.operation_type,
                    )
                    for index, op in enumerate(operations)
                ],
            )
        )
    return PipelineSnapshot(
        pipeline_id=pipeline.id,
        name=pipeline.name,
        timeout_seconds=pipeline.timeout_seconds,
        stages=snapshots,
    )


def create_pipeline_run(
    engine: Engine,
    enterprise_id: UUID,
    pipeline_id: UUID,
    *,
    trigger_type: str = "manual",
    trigger_source: str = "",
    previous_run_id: UUID | None = None,
    concurrency_key: str | None = None,
    input_values: Mapping[str, Any] | None = None,
    sensitive_names: Sequence[str] = (),
    trigger_source_type: str = "",
) -> PipelineRun:
    """A pending run with the next run number and a snapshot of its pipeline, the plain
    inputs applied to its args (domain.inputs; the sensitive ones keep their references).

    The run number comes from next_run_number (one UPDATE of the counter). An input reference
    the run cannot fill raises domain.inputs.InvalidInput, and nothing is written.
    """
    plain = dict(input_values or {})
    with transaction(engine) as session:
        pipeline, number = next_run_number(session, enterprise_id, pipeline_id)
        snapshot = apply_to_snapshot(snapshot_pipeline(session, pipeline), plain,
                                     set(sensitive_names))
        run = PipelineRun(
            enterprise_id=enterprise_id,
            pipeline_id=pipeline_id,
            pipeline_name=pipeline.name,
            run_number=number,
            snapshot=snapshot.model_dump(mode="json"),
            previous_run_id=previous_run_id,
            trigger_type=trigger_type,
            trigger_source=trigger_source,
            concurrency_key=concurrency_key,
            input_values=plain,
            sensitive_input_aliases={name: alias(name) for name in sensitive_names},
            trigger_source_type=trigger_source_type,
            pipeline_version=pipeline.version,
        )
        session.add(run)
    return run


def next_run_number(session: Session, enterprise_id: UUID,
                    pipeline_id: UUID) -> tuple[Pipeline, int]:
    """The pipeline and the run number it hands out next. The counter is bumped by one UPDATE,
    so concurrent starts get distinct numbers on SQLite (one writer at a time) and PostgreSQL
    (the row lock) alike."""
    bumped = session.execute(
        update(Pipeline)
        .where(col(Pipeline.id) == pipeline_id, col(Pipeline.enterprise_id) == enterprise_id)
        .values(run_counter=Pipeline.run_counter + 1)
        .returning(col(Pipeline.run_counter))
    ).first()
    if bumped is None:
        raise PipelineNotFound(str(pipeline_id))
    pipeline = session.get(Pipeline, pipeline_id)
    assert pipeline is not None
    return pipeline, bumped[0]


def discard_pipeline_run(engine: Engine, pipeline_run_id: UUID) -> None:
    """Remove a run whose workflow never started (so a failed start leaves nothing behind)."""
    with transaction(engine) as session:
        run = session.get(PipelineRun, pipeline_run_id)
        if run is not None:
            session.delete(run)


def load_snapshot(session: Session, pipeline_run_id: UUID) -> PipelineSnapshot:
    run = session.get(PipelineRun, pipeline_run_id)
    if run is None:
        raise LookupError(f"pipeline run {pipeline_run_id} not found")
    return PipelineSnapshot.model_validate(run.snapshot)


def prepare_stage_runs(engine: Engine, pipeline_run_id: UUID) -> list[StageRunInfo]:
    """The run's stage runs, created pending from its snapshot the first time."""
    with transaction(engine) as session:
        snapshot = load_snapshot(session, pipeline_run_id)
        run = session.get(PipelineRun, pipeline_run_id)
        assert run is not None
        steps = retry_steps(run)
        for index, stage in enumerate(snapshot.stages):
            stage_run_id = uuid5(pipeline_run_id, f"stage:{index}:{stage.stage_id}")
            if session.get(StageRun, stage_run_id) is None:
                session.add(StageRun(
                    id=stage_run_id, pipeline_run_id=pipeline_run_id,
                    enterprise_id=run.enterprise_id, stage_id=stage.stage_id,
                    stage_name=stage.name, order=index + 1, run_number=run.run_number,
                    trigger=stage.trigger, timeout_seconds=stage.timeout_seconds,
                    **steps[index].stage_run_fields(stage.trigger) if steps else {},
                ))
        session.flush()
        rows = session.exec(
            select(StageRun).where(StageRun.pipeline_run_id == pipeline_run_id)
            .order_by(col(StageRun.order))
        ).all()
        return [
            StageRunInfo(
                stage_run_id=str(row.id), order=row.order, name=row.stage_name,
                trigger=row.trigger, timeout_seconds=row.timeout_seconds,
                rollout=snapshot.stages[row.order - 1].rollout.model_dump(mode="json"),
                status=row.status, carry=row.carry,
                released=bool(steps) and steps[row.order - 1].released,
            )
            for row in rows
        ]


def pipeline_timeout_seconds(engine: Engine, pipeline_run_id: UUID) -> int:
    with transaction(engine) as session:
        return load_snapshot(session, pipeline_run_id).timeout_seconds
