"""A stage run made in chunks (store.runs.materialize) on SQLite and PostgreSQL: resumed after
a crash or a failed chunk it has the rows, ids and positions of a stage run made in one go,
and it is never taken as made (device_count) before its last chunk."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import delete, event
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from domain.ids import target_run_id
from store.db import transaction
from store.definitions.devices import Device, DeviceGroupMember
from store.runs import creation, materialize
from store.runs import targets as stage_targets
from store.runs.tables import StageRun, StageRunOperation, TargetRun
from tests.builders import (
    INSTALL,
    REBOOT,
    StageSpec,
    TargetListSpec,
    add_devices,
    add_group,
    build_pipeline,
    new_enterprise,
)


class InjectedFailure(RuntimeError):
    pass


def two_runs_of_a_grouped_stage(engine: Engine, listed: int = 2, grouped: int = 5
                                ) -> tuple[UUID, UUID, list[UUID], UUID]:
    """(stage run, stage run of a second run of the same pipeline, the devices in the order
    the stage takes them, the group): listed devices, then a group's members."""
    enterprise_id = new_enterprise(engine)
    listed_ids = add_devices(engine, enterprise_id, listed, prefix="listed")
    members = add_devices(engine, enterprise_id, grouped, prefix="member")
    group = add_group(engine, enterprise_id, members)
    built = build_pipeline(engine, enterprise_id, [StageSpec(
        "stage", [TargetListSpec(devices=listed_ids), TargetListSpec(groups=[group])],
        [INSTALL, REBOOT])])
    stage_runs = []
    for _ in range(2):
        run = creation.create_pipeline_run(engine, enterprise_id, built.pipeline_id)
        [stage] = creation.prepare_stage_runs(engine, run.id)
        stage_runs.append(UUID(stage.stage_run_id))
    return stage_runs[0], stage_runs[1], listed_ids + sorted(members), group


def layout(engine: Engine, stage_run_id: UUID) -> list[tuple[int, UUID, int, UUID]]:
    """(device_seq, device, operation order, target run id) of every row, by position."""
    with transaction(engine) as session:
        return [tuple(row) for row in session.execute(
            select(TargetRun.device_seq, TargetRun.target_id, TargetRun.operation_order,
                   TargetRun.id).where(TargetRun.stage_run_id == stage_run_id)
            .order_by(col(TargetRun.device_seq), col(TargetRun.operation_order))).all()]


def device_count(engine: Engine, stage_run_id: UUID) -> int:
    with transaction(engine) as session:
        found = session.get(StageRun, stage_run_id)
        assert found is not None
        return found.device_count


def expected_layout(engine: Engine, stage_run_id: UUID,
                    devices: list[UUID]) -> list[tuple[int, UUID, int, UUID]]:
    with transaction(engine) as session:
        ops = session.exec(select(StageRunOperation).where(
            StageRunOperation.stage_run_id == stage_run_id)
            .order_by(col(StageRunOperation.order))).all()
    return [(seq, device, op.order, target_run_id(stage_run_id, device, op.id))
            for seq, device in enumerate(devices) for op in ops]


def positions(rows: list[tuple[int, UUID, int, UUID]]) -> list[tuple[int, UUID, int]]:
    return [row[:3] for row in rows]


@contextmanager
def failing_target_run_inserts(engine: Engine) -> Iterator[None]:
    """The next INSERT INTO target_run fails, inside its chunk's transaction (a dropped
    connection, a killed database): the rest of the chunk must roll back with it."""
    failed: list[bool] = []

    def fail_once(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO TARGET_RUN") and not failed:
            failed.append(True)
            raise InjectedFailure("the database went away mid-chunk")

    event.listen(engine, "before_cursor_execute", fail_once)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", fail_once)


def test_a_crash_between_chunks_resumes_without_duplicates_or_gaps(engine):
    stage_run_id, one_go, devices, _ = two_runs_of_a_grouped_stage(engine)
    state = materialize.begin(engine, stage_run_id)
    state = materialize.write_chunk(engine, state, 2)  # then the worker is killed
    assert len(layout(engine, stage_run_id)) == 2 * 2
    assert device_count(engine, stage_run_id) == 0  # not made yet: no reader takes it as made
    with pytest.raises(stage_targets.StageNotReady):
        stage_targets.add_target_device(engine, stage_run_id, devices[-1])

    plan = stage_targets.materialize_targets(engine, stage_run_id, 2)  # the retried attempt

    reference = stage_targets.materialize_targets(engine, one_go, 1000)
    assert (plan.device_count, plan.invalid_reason, len(plan.operation_ids)) == (7, "", 2)
    assert plan.operation_types == reference.operation_types == ["INSTALL", "REBOOT"]
    assert layout(engine, stage_run_id) == expected_layout(engine, stage_run_id, devices)
    assert positions(layout(engine, stage_run_id)) == positions(layout(engine, one_go))
    assert device_count(engine, stage_run_id) == 7


def test_a_chunk_that_fails_writes_nothing_and_the_retry_finishes(engine):
    stage_run_id, _, devices, _ = two_runs_of_a_grouped_stage(engine, listed=1, grouped=6)
    materialize.write_chunk(engine, materialize.begin(engine, stage_run_id), 3)
    with failing_target_run_inserts(engine), pytest.raises(InjectedFailure):
        stage_targets.materialize_targets(engine, stage_run_id, 3)
    assert len(layout(engine, stage_run_id)) == 3 * 2  # the failed chunk left no row
    assert device_count(engine, stage_run_id) == 0

    plan = stage_targets.materialize_targets(engine, stage_run_id, 3)

    assert plan.device_count == 7
    assert layout(engine, stage_run_id) == expected_layout(engine, stage_run_id, devices)


def test_a_second_call_returns_the_same_plan_and_writes_nothing(engine):
    stage_run_id, _, _, _ = two_runs_of_a_grouped_stage(engine)
    first = stage_targets.materialize_targets(engine, stage_run_id, 3)
    rows = layout(engine, stage_run_id)
    assert stage_targets.materialize_targets(engine, stage_run_id, 3) == first
    assert materialize.begin(engine, stage_run_id).plan == first
    assert layout(engine, stage_run_id) == rows


def test_a_group_expanded_stage_in_chunks_matches_one_chunk(engine):
    chunked, one_go, devices, _ = two_runs_of_a_grouped_stage(engine, listed=3, grouped=10)
    plans = [stage_targets.materialize_targets(engine, chunked, 4),
             stage_targets.materialize_targets(engine, one_go, 10_000)]
    assert [plan.device_count for plan in plans] == [13, 13]
    assert positions(layout(engine, chunked)) == positions(layout(engine, one_go))
    assert layout(engine, chunked) == expected_layout(engine, chunked, devices)


def test_a_stale_attempt_writes_nothing(engine):
    """Two attempts at once (one timed out but still running): the one that read first and
    writes second is refused, and begins again from what the other wrote."""
    stage_run_id, _, devices, _ = two_runs_of_a_grouped_stage(engine)
    stale = materialize.begin(engine, stage_run_id)
    materialize.write_chunk(engine, materialize.begin(engine, stage_run_id), 2)
    with pytest.raises(materialize.StageMoved):
        materialize.write_chunk(engine, stale, 2)
    assert len(layout(engine, stage_run_id)) == 2 * 2
    stage_targets.materialize_targets(engine, stage_run_id, 2)
    assert layout(engine, stage_run_id) == expected_layout(engine, stage_run_id, devices)


def test_devices_gone_or_new_between_attempts_keep_positions_dense(engine):
    """Groups expand when the stage is processed; if a resumed attempt sees other members,
    rows already written stay where they are and the devices still to write follow in the
    new expansion's order (one gone is skipped, a new one takes its place): no gap, no
    duplicate."""
    stage_run_id, _, devices, group = two_runs_of_a_grouped_stage(engine, listed=1, grouped=5)
    materialize.write_chunk(engine, materialize.begin(engine, stage_run_id), 3)
    gone = devices[4]
    with transaction(engine) as session:
        session.execute(delete(DeviceGroupMember).where(col(DeviceGroupMember.device_id) == gone))
        enterprise_id = session.exec(select(Device.enterprise_id)
                                     .where(Device.id == gone)).one()
    [newcomer] = add_devices(engine, enterprise_id, 1, prefix="late")
    with transaction(engine) as session:
        session.add(DeviceGroupMember(device_group_id=group, device_id=newcomer))

    plan = stage_targets.materialize_targets(engine, stage_run_id, 3)

    later = sorted([d for d in devices[3:] if d != gone] + [newcomer])
    assert plan.device_count == 6
    assert layout(engine, stage_run_id) == expected_layout(
        engine, stage_run_id, devices[:3] + later)
