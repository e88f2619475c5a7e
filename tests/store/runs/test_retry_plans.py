"""A retry's rows in the store, on SQLite and PostgreSQL: the plan made from the retried run,
stages carried over whole, target runs carried over, and the pages a carrying stage works
through."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from domain.records import StatusChange
from domain.retry_modes import RetryMode, RetryNotPossible
from store.db import transaction
from store.runs import carry, creation, retry_plans, statuses, targets
from store.runs.tables import PipelineRun, StageRun, StatusEvent, TargetRun
from tests.builders import INSTALL, StageSpec, make_pipeline

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _end(engine: Engine, kind: str, run_id: UUID, status: str) -> None:
    statuses.record_statuses(engine, [StatusChange(kind, str(run_id), status, NOW)])


def _finished_run(engine: Engine) -> tuple[UUID, PipelineRun, list[UUID]]:
    """A run whose first stage succeeded and whose second failed for one of its two devices
    (both operations); (enterprise, the run, the second stage's devices)."""
    enterprise_id, pipeline_id = make_pipeline(engine, [
        StageSpec("first", devices=[{}]),
        StageSpec("second", devices=[{}, {}], operations=[INSTALL, {"operation_type": "REBOOT"}]),
    ])
    run = creation.create_pipeline_run(engine, enterprise_id, pipeline_id)
    infos = creation.prepare_stage_runs(engine, run.id)
    for info in infos:
        targets.materialize_targets(engine, UUID(info.stage_run_id))
    with transaction(engine) as session:
        rows = session.exec(
            select(TargetRun).where(TargetRun.pipeline_run_id == run.id)
            .order_by(col(TargetRun.device_seq), col(TargetRun.operation_order))).all()
    second = UUID(infos[1].stage_run_id)
    devices = list(dict.fromkeys(r.target_id for r in rows if r.stage_run_id == second))
    for row in rows:
        failed = row.stage_run_id == second and row.target_id == devices[1]
        _end(engine, "target_run", row.id, "failure" if failed else "success")
    _end(engine, "stage_run", UUID(infos[0].stage_run_id), "success")
    _end(engine, "stage_run", second, "failure")
    _end(engine, "pipeline_run", run.id, "failure")
    return enterprise_id, run, devices


def test_from_failed_carries_the_successes_over(engine: Engine) -> None:
    enterprise_id, old, devices = _finished_run(engine)
    retry = retry_plans.create_retry_run(engine, enterprise_id, old.id, RetryMode.FROM_FAILED,
                                         None, requested_by="key-1")
    assert (retry.run_number, retry.previous_run_id, retry.snapshot) == (2, old.id, old.snapshot)
    infos = creation.prepare_stage_runs(engine, retry.id)
    assert [(i.carry, i.released) for i in infos] == [("stage", False), ("targets", True)]

    first, second = (UUID(i.stage_run_id) for i in infos)
    assert carry.carry_over_stage(engine, first, NOW) == "success"
    assert carry.carry_over_stage(engine, first, NOW) == "success"  # done once
    plan = targets.materialize_targets(engine, second)
    assert (plan.device_count, plan.carried, len(plan.operation_ids)) == (2, 2, 2)
    assert targets.materialize_targets(engine, second).carried == 2  # found again, same plan
    assert targets.next_carried_page(engine, second, -1, 10) == [
        (0, str(devices[0]), -1), (1, str(devices[1]), 0)]
    assert targets.next_carried_page(engine, second, 0, 10) == [(1, str(devices[1]), 0)]

    with transaction(engine) as session:
        rows = session.exec(select(TargetRun).where(TargetRun.pipeline_run_id == retry.id)).all()
        carried = [r for r in rows if r.carried_over_from is not None]
        assert len(rows) == 5 and len(carried) == 3  # first stage's one, second's device 0 x 2
        assert {r.status for r in carried} == {"success"}
        assert {r.status_reason for r in carried} == {"carried over from run 1"}
        assert all(r.command_id is None for r in rows)
        assert {r.status for r in rows if r.carried_over_from is None} == {"pending"}
        stage = session.get(StageRun, first)
        assert stage is not None and stage.status == "success" and stage.carried_from
        events = session.exec(select(StatusEvent).where(
            StatusEvent.pipeline_run_id == retry.id, StatusEvent.kind == "target_run")).all()
        assert len(events) == 3  # one per carried row
    with transaction(engine) as session:
        assert retry_plans.retries_of(session, [old.id]) == {old.id: [retry.id]}


def test_refusals_make_nothing(engine: Engine) -> None:
    enterprise_id, old, _ = _finished_run(engine)
    snapshot_keys = [s["stage_id"] for s in old.snapshot["stages"]]
    with pytest.raises(RetryNotPossible) as refused:
        retry_plans.create_retry_run(engine, enterprise_id, old.id, RetryMode.FROM_STEP,
                                     "nope", requested_by="")
    assert refused.value.field == "step_key" and refused.value.allowed == snapshot_keys
    fresh = creation.create_pipeline_run(engine, enterprise_id, old.pipeline_id)
    with pytest.raises(RetryNotPossible) as running:
        retry_plans.create_retry_run(engine, enterprise_id, fresh.id, RetryMode.FULL, None,
                                     requested_by="")
    assert running.value.conflict
    with transaction(engine) as session:
        numbers = session.exec(select(PipelineRun.run_number).where(
            PipelineRun.pipeline_id == old.pipeline_id)).all()
    assert sorted(numbers) == [1, 2]  # the refused retries took no number
