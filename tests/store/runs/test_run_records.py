"""The workflows' run writes (store.runs) on SQLite and PostgreSQL: run numbers, snapshots,
status changes and their events, stage runs, target runs (expansion, paging, closing, adding)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from domain import schemas
from domain.records import StatusChange
from domain.statuses import RunKind
from store.db import transaction
from store.definitions.devices import Device
from store.definitions.operation_lists import Operation
from store.definitions.pipelines import Pipeline, Stage
from store.definitions.target_lists import TargetListDevice
from store.runs import creation, retries
from store.runs import statuses as status_changes
from store.runs import targets as stage_targets
from store.runs.tables import PipelineRun, StageRun, StageRunOperation, StatusEvent, TargetRun
from tests.builders import (
    INSTALL,
    REBOOT,
    StageSpec,
    TargetListSpec,
    add_devices,
    add_group,
    build_pipeline,
    make_pipeline,
    new_enterprise,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# ---- helpers -----------------------------------------------------------------------------------
def simple_pipeline(engine: Engine, devices: int = 3, operations=(INSTALL,),
                    stages: int = 1) -> tuple[UUID, UUID, list[list[UUID]]]:
    """(enterprise, pipeline, device ids per stage) of a fresh enterprise."""
    enterprise_id = new_enterprise(engine)
    device_ids = [add_devices(engine, enterprise_id, devices, prefix=f"s{n}")
                  for n in range(stages)]
    built = build_pipeline(engine, enterprise_id, [
        StageSpec(f"stage-{n}", [TargetListSpec(devices=device_ids[n])], list(operations))
        for n in range(stages)
    ])
    return enterprise_id, built.pipeline_id, device_ids


def started_stage(engine: Engine, devices: int = 3, operations=(INSTALL,)):
    """A run of a one-stage pipeline with its stage run prepared (not yet materialized)."""
    enterprise_id, pipeline_id, device_ids = simple_pipeline(engine, devices, operations)
    run = creation.create_pipeline_run(engine, enterprise_id, pipeline_id)
    [stage] = creation.prepare_stage_runs(engine, run.id)
    return run, UUID(stage.stage_run_id), device_ids[0]


def targets(engine: Engine, stage_run_id: UUID) -> list[TargetRun]:
    with transaction(engine) as session:
        return list(session.exec(
            select(TargetRun).where(TargetRun.stage_run_id == stage_run_id)
            .order_by(col(TargetRun.device_seq), col(TargetRun.operation_order))).all())


def row(engine: Engine, model, row_id: UUID):
    with transaction(engine) as session:
        found = session.get(model, row_id)
        assert found is not None
        return found


def events(engine: Engine, run_id: UUID) -> list[tuple[str, str]]:
    with transaction(engine) as session:
        rows = session.exec(select(StatusEvent).where(StatusEvent.run_id == run_id)
                            .order_by(col(StatusEvent.id))).all()
        return [(event.from_status, event.to_status) for event in rows]


def count_rows(engine: Engine, model, *where) -> int:
    with transaction(engine) as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def move(engine: Engine, kind: RunKind, run_id: UUID, status: str, when: datetime = T0,
         reason: str = "", **fields) -> str:
    [after] = status_changes.record_statuses(
        engine, [StatusChange(kind, str(run_id), status, when, reason, fields)])
    return after


# ---- create_pipeline_run -----------------------------------------------------------------------
def test_run_numbers_count_up_per_pipeline(engine):
    enterprise_id, first, _ = simple_pipeline(engine)
    second = build_pipeline(engine, enterprise_id, [StageSpec("only")], name="other")
    numbers = [creation.create_pipeline_run(engine, enterprise_id, first).run_number
               for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert creation.create_pipeline_run(engine, enterprise_id, second.pipeline_id).run_number == 1
    assert creation.create_pipeline_run(engine, enterprise_id, first).run_number == 4


def test_a_new_run_is_pending_with_the_pipeline_name_and_trigger(engine):
    enterprise_id, pipeline_id, _ = simple_pipeline(engine)
    run = creation.create_pipeline_run(engine, enterprise_id, pipeline_id, trigger_type="api",
                                 trigger_source="token:ci")
    stored = row(engine, PipelineRun, run.id)
    assert (stored.status, stored.pipeline_name, stored.run_number) == ("pending", "rollout", 1)
    assert (stored.trigger_type, stored.trigger_source) == ("api", "token:ci")
    assert stored.started_at is None and stored.ended_at is None


def test_concurrent_starts_get_numbers_one_to_n(engine):
    enterprise_id, pipeline_id, _ = simple_pipeline(engine)
    starts = 20
    barrier = threading.Barrier(starts)

    def start(_: int) -> int:
        barrier.wait(timeout=30)
        return creation.create_pipeline_run(engine, enterprise_id, pipeline_id).run_number

    with ThreadPoolExecutor(max_workers=starts) as pool:
        numbers = list(pool.map(start, range(starts)))  # re-raises any IntegrityError
    assert sorted(numbers) == list(range(1, starts + 1))
    assert count_rows(engine, PipelineRun, PipelineRun.pipeline_id == pipeline_id) == starts


def test_another_enterprises_pipeline_is_not_found(engine):
    owner, pipeline_id, _ = simple_pipeline(engine)
    stranger = new_enterprise(engine)
    with pytest.raises(creation.PipelineNotFound):
        creation.create_pipeline_run(engine, stranger, pipeline_id)
    with pytest.raises(creation.PipelineNotFound):
        creation.create_pipeline_run(engine, owner, uuid4())
    assert count_rows(engine, PipelineRun, PipelineRun.pipeline_id == pipeline_id) == 0
    # the failed attempts handed out no number
    assert creation.create_pipeline_run(engine, owner, pipeline_id).run_number == 1


def test_the_snapshot_holds_the_pipeline_as_it_was(engine):
    enterprise_id = new_enterprise(engine)
    devices = add_devices(engine, enterprise_id, 2)
    built = build_pipeline(engine, enterprise_id, [
        StageSpec("canary", [TargetListSpec(devices=devices)], [INSTALL, REBOOT]),
    ])
    run = creation.create_pipeline_run(engine, enterprise_id, built.pipeline_id)
    before = row(engine, PipelineRun, run.id).snapshot
    snapshot = schemas.PipelineSnapshot.model_validate(before)
    assert snapshot.name == "rollout"
    assert [s.name for s in snapshot.stages] == ["canary"]
    assert snapshot.stages[0].device_ids == devices
    assert [op.operation_type for op in snapshot.stages[0].operations] == ["INSTALL", "REBOOT"]

    # Edit everything the run depends on.
    [extra] = add_devices(engine, enterprise_id, 1, prefix="late")
    with transaction(engine) as session:
        session.get(Pipeline, built.pipeline_id).name = "renamed"
        session.get(Stage, built.stage_ids[0]).name = "renamed-stage"
        install = session.get(Operation, built.operation_ids[0][0])
        install.args = {"package_name": "com.example.other", "app_version": "9"}
        session.add(install)
        session.delete(session.exec(select(TargetListDevice).where(
            TargetListDevice.device_id == devices[1])).one())
        session.add(TargetListDevice(target_list_id=built.target_list_ids[0][0],
                                     device_id=extra))
        session.add(Stage(pipeline_id=built.pipeline_id, name="added", order=1))

    assert row(engine, PipelineRun, run.id).snapshot == before
    [stage] = creation.prepare_stage_runs(engine, run.id)
    assert stage.name == "canary"
    plan = stage_targets.materialize_targets(engine, UUID(stage.stage_run_id))
    assert plan.device_count == 2
    assert [t.target_id for t in targets(engine, UUID(stage.stage_run_id))][::2] == devices
    with transaction(engine) as session:
        first_op = session.exec(select(StageRunOperation).where(
            StageRunOperation.stage_run_id == UUID(stage.stage_run_id),
            StageRunOperation.order == 0)).one()
        assert first_op.args == INSTALL["args"]

    # ...while a new run sees the edits (so the edits above did take effect).
    fresh = creation.create_pipeline_run(engine, enterprise_id, built.pipeline_id)
    assert fresh.pipeline_name == "renamed"
    assert [s["name"] for s in fresh.snapshot["stages"]] == ["renamed-stage", "added"]
    assert fresh.snapshot["stages"][0]["device_ids"] == [str(devices[0]), str(extra)]


# ---- apply_status / record_statuses ------------------------------------------------------------
def test_a_jump_records_every_step_in_order(engine):
    _, stage_run_id, _ = started_stage(engine)
    stage_targets.materialize_targets(engine, stage_run_id)
    target = targets(engine, stage_run_id)[0]
    assert move(engine, RunKind.TARGET, target.id, "dispatched", at(1)) == "dispatched"
    assert events(engine, target.id) == [
        ("pending", "queued"), ("queued", "processing"), ("processing", "dispatched")]
    assert row(engine, TargetRun, target.id).status == "dispatched"
    assert move(engine, RunKind.TARGET, target.id, "success", at(2)) == "success"
    assert events(engine, target.id)[3:] == [
        ("dispatched", "complete"), ("complete", "success")]


def test_events_belong_to_the_pipeline_run_and_carry_time_and_reason(engine):
    run, stage_run_id, _ = started_stage(engine)
    move(engine, RunKind.STAGE, stage_run_id, "processing", at(5), reason="promoted")
    with transaction(engine) as session:
        stored = session.exec(select(StatusEvent).where(StatusEvent.run_id == stage_run_id)
                              .order_by(col(StatusEvent.id))).all()
    assert [(e.kind, e.pipeline_run_id, e.to_status, e.reason, e.at) for e in stored] == [
        ("stage_run", run.id, "queued", "promoted", at(5)),
        ("stage_run", run.id, "processing", "promoted", at(5)),
    ]
    assert row(engine, StageRun, stage_run_id).status_reason == "promoted"
    move(engine, RunKind.PIPELINE, run.id, "queued", at(6))
    assert events(engine, run.id) == [("pending", "queued")]


@pytest.mark.parametrize("current, backwards", [
    pytest.param("running", "queued", id="running->queued"),
    pytest.param("running", "dispatched", id="running->dispatched"),
    pytest.param("dispatched", "pending", id="dispatched->pending"),
    pytest.param("complete", "running", id="complete->running"),
])
def test_a_status_never_moves_backwards(engine, current, backwards):
    _, stage_run_id, _ = started_stage(engine)
    stage_targets.materialize_targets(engine, stage_run_id)
    target = targets(engine, stage_run_id)[0]
    move(engine, RunKind.TARGET, target.id, current, at(1))
    recorded = events(engine, target.id)
    before = row(engine, TargetRun, target.id)
    assert move(engine, RunKind.TARGET, target.id, backwards, at(2)) == current
    after = row(engine, TargetRun, target.id)
    assert after.status == current
    assert after.updated_at == before.updated_at == at(1)
    assert events(engine, target.id) == recorded


@pytest.mark.parametrize("terminal", ["success", "failure", "cancelled", "timeout", "invalid"])
def test_a_terminal_status_never_changes(engine, terminal):
    _, stage_run_id, _ = started_stage(engine)
    stage_targets.materialize_targets(engine, stage_run_id)
    target = targets(engine, stage_run_id)[0]
    if terminal in ("success", "failure"):
        move(engine, RunKind.TARGET, target.id, "running", at(1))
    move(engine, RunKind.TARGET, target.id, terminal, at(2))
    recorded = events(engine, target.id)
    ended = row(engine, TargetRun, target.id)
    assert ended.ended_at == at(2)
    for later in ("pending", "queued", "running", "complete", "success", "failure",
                  "cancelled", "timeout", "invalid"):
        assert move(engine, RunKind.TARGET, target.id, later, at(3)) == terminal
    after = row(engine, TargetRun, target.id)
    assert (after.status, after.ended_at, after.updated_at) == (terminal, at(2), at(2))
    assert events(engine, target.id) == recorded


def test_started_at_is_set_once_and_ended_at_at_the_terminal_status(engine):
    run, _, _ = started_stage(engine)
    move(engine, RunKind.PIPELINE, run.id, "queued", at(1))
    first = row(engine, PipelineRun, run.id)
    # Queued (behind its concurrency key) is not started yet: processing starts it.
    assert (first.started_at, first.ended_at, first.updated_at) == (None, None, at(1))
    for minute, status in ((2, "processing"), (3, "running"), (4, "waiting"), (5, "running"),
                           (6, "complete")):
        move(engine, RunKind.PIPELINE, run.id, status, at(minute))
        stored = row(engine, PipelineRun, run.id)
        assert (stored.started_at, stored.ended_at) == (at(2), None), status
    move(engine, RunKind.PIPELINE, run.id, "success", at(7))
    done = row(engine, PipelineRun, run.id)
    assert (done.status, done.started_at, done.ended_at) == ("success", at(2), at(7))


def test_record_statuses_returns_each_status_after_its_change(engine):
    run, stage_run_id, _ = started_stage(engine)
    statuses = status_changes.record_statuses(engine, [
        StatusChange(RunKind.PIPELINE, str(run.id), "running", at(1)),
        StatusChange(RunKind.STAGE, str(stage_run_id), "running", at(1)),
        StatusChange(RunKind.STAGE, str(stage_run_id), "queued", at(2)),  # backwards: ignored
        StatusChange(RunKind.STAGE, str(stage_run_id), "cancelled", at(3), "by operator"),
    ])
    assert statuses == ["running", "running", "running", "cancelled"]
    stage = row(engine, StageRun, stage_run_id)
    assert (stage.status, stage.status_reason, stage.ended_at) == ("cancelled", "by operator",
                                                                  at(3))


def test_record_statuses_is_all_or_nothing(engine):
    run, _, _ = started_stage(engine)
    with pytest.raises(LookupError):
        status_changes.record_statuses(engine, [
            StatusChange(RunKind.PIPELINE, str(run.id), "running", at(1)),
            StatusChange(RunKind.STAGE, str(uuid4()), "running", at(1)),
        ])
    assert row(engine, PipelineRun, run.id).status == "pending"
    assert events(engine, run.id) == []


def test_fields_move_with_a_status_change(engine):
    _, stage_run_id, _ = started_stage(engine)
    stage_targets.materialize_targets(engine, stage_run_id)
    target = targets(engine, stage_run_id)[0]
    move(engine, RunKind.TARGET, target.id, "running", at(1), command_status="inprogress",
         command_meta={"reason": "downloading"})
    stored = row(engine, TargetRun, target.id)
    assert (stored.status, stored.command_status, stored.command_meta) == (
        "running", "inprogress", {"reason": "downloading"})


def test_a_terminal_row_keeps_its_fields(engine):
    _, stage_run_id, _ = started_stage(engine)
    stage_targets.materialize_targets(engine, stage_run_id)
    target = targets(engine, stage_run_id)[0]
    stage_targets.close_pending_targets(engine, stage_run_id, "cancelled", "by operator", at(1),
                             target_run_ids=[str(target.id)])
    move(engine, RunKind.TARGET, target.id, "processing", at(2), command_id=uuid4(),
         command_status="scheduled", attempt=1)
    stored = row(engine, TargetRun, target.id)
    assert stored.status == "cancelled"
    assert (stored.command_id, stored.command_status, stored.attempt) == (None, None, 0)
    assert stored.updated_at == at(1)


# ---- prepare_stage_runs ------------------------------------------------------------------------
def test_prepare_stage_runs_creates_pending_stage_runs_once(engine):
    enterprise_id = new_enterprise(engine)
    devices = add_devices(engine, enterprise_id, 1)
    build = build_pipeline(engine, enterprise_id, [
        StageSpec("canary", [TargetListSpec(devices=devices)], trigger="automatic",
                  timeout_seconds=60),
        StageSpec("fleet", [TargetListSpec(devices=devices)], trigger="manual",
                  timeout_seconds=120),
    ])
    creation.create_pipeline_run(engine, enterprise_id, build.pipeline_id)
    run = creation.create_pipeline_run(engine, enterprise_id, build.pipeline_id)
    first = creation.prepare_stage_runs(engine, run.id)
    assert [(s.order, s.name, s.trigger, s.timeout_seconds, s.status) for s in first] == [
        (1, "canary", "automatic", 60, "pending"), (2, "fleet", "manual", 120, "pending")]
    again = creation.prepare_stage_runs(engine, run.id)
    assert [s.stage_run_id for s in again] == [s.stage_run_id for s in first]
    assert count_rows(engine, StageRun, StageRun.pipeline_run_id == run.id) == 2
    stored = row(engine, StageRun, UUID(first[1].stage_run_id))
    assert (stored.run_number, stored.stage_id, stored.enterprise_id) == (
        2, build.stage_ids[1], enterprise_id)


def test_prepare_stage_runs_keeps_a_stage_runs_progress(engine):
    run, stage_run_id, _ = started_stage(engine)
    move(engine, RunKind.STAGE, stage_run_id, "running", at(1))
    [again] = creation.prepare_stage_runs(engine, run.id)
    assert again.status == "running"


def test_prepare_stage_runs_of_an_unknown_run(engine):
    with pytest.raises(LookupError):
        creation.prepare_stage_runs(engine, uuid4())


# ---- materialize_targets -----------------------------------------------------------------------
def test_materialize_creates_device_by_operation_targets_in_order(engine):
    _, stage_run_id, devices = started_stage(engine, devices=3, operations=(INSTALL, REBOOT))
    plan = stage_targets.materialize_targets(engine, stage_run_id)
    assert (plan.device_count, len(plan.operation_ids), plan.invalid_reason) == (3, 2, "")
    rows = targets(engine, stage_run_id)
    assert [(t.device_seq, t.target_id, t.operation_order) for t in rows] == [
        (seq, device, order) for seq, device in enumerate(devices) for order in (0, 1)]
    assert {t.status for t in rows} == {"pending"}
    assert [str(t.stage_run_operation_id) for t in rows[:2]] == plan.operation_ids
    assert (rows[0].device_name, rows[0].device_alias) == ("s0-0", "s0-alias-0")
    assert row(engine, StageRun, stage_run_id).device_count == 3


def test_materialize_twice_creates_nothing_new(engine):
    _, stage_run_id, _ = started_stage(engine, devices=4, operations=(INSTALL, REBOOT))
    first = stage_targets.materialize_targets(engine, stage_run_id)
    ids = [t.id for t in targets(engine, stage_run_id)]
    second = stage_targets.materialize_targets(engine, stage_run_id)
    assert second == first
    assert [t.id for t in targets(engine, stage_run_id)] == ids
    assert count_rows(engine, StageRunOperation,
                      StageRunOperation.stage_run_id == stage_run_id) == 2


def _materialized(engine, enterprise_id, target_lists, operations=(INSTALL,)):
    built = build_pipeline(engine, enterprise_id, [
        StageSpec("stage", target_lists, list(operations))])
    run = creation.create_pipeline_run(engine, enterprise_id, built.pipeline_id)
    [stage] = creation.prepare_stage_runs(engine, run.id)
    stage_run_id = UUID(stage.stage_run_id)
    return stage_targets.materialize_targets(engine, stage_run_id), targets(engine, stage_run_id)


def test_groups_expand_to_their_devices_after_the_listed_ones(engine):
    enterprise_id = new_enterprise(engine)
    listed = add_devices(engine, enterprise_id, 2, prefix="listed")
    members = add_devices(engine, enterprise_id, 3, prefix="member")
    group = add_group(engine, enterprise_id, members)
    plan, rows = _materialized(engine, enterprise_id, [
        TargetListSpec(devices=listed), TargetListSpec(groups=[group])])
    assert plan.device_count == 5
    assert [t.target_id for t in rows[:2]] == listed
    assert {t.target_id for t in rows[2:]} == set(members)
    assert [t.device_seq for t in rows] == [0, 1, 2, 3, 4]


def test_a_device_reached_twice_gets_one_target_run(engine):
    enterprise_id = new_enterprise(engine)
    shared, only_listed, only_grouped = add_devices(engine, enterprise_id, 3)
    group_a = add_group(engine, enterprise_id, [shared, only_grouped], name="a")
    group_b = add_group(engine, enterprise_id, [shared], name="b")
    plan, rows = _materialized(engine, enterprise_id, [
        TargetListSpec(devices=[shared, only_listed]),
        TargetListSpec(devices=[shared]),            # the same device in a second list
        TargetListSpec(groups=[group_a, group_b]),   # and in two groups
    ])
    assert plan.device_count == 3
    assert sorted(t.device_seq for t in rows) == [0, 1, 2]
    assert [t.target_id for t in rows[:2]] == [shared, only_listed]
    assert rows[2].target_id == only_grouped


def test_devices_of_another_enterprise_are_skipped(engine):
    enterprise_id = new_enterprise(engine)
    stranger = new_enterprise(engine)
    [own] = add_devices(engine, enterprise_id, 1, prefix="own")
    foreign = add_devices(engine, stranger, 2, prefix="foreign")
    foreign_group = add_group(engine, stranger, foreign)
    plan, rows = _materialized(engine, enterprise_id, [
        TargetListSpec(devices=[foreign[0], own]), TargetListSpec(groups=[foreign_group])])
    assert plan.device_count == 1
    assert [(t.target_id, t.device_seq) for t in rows] == [(own, 0)]


@pytest.mark.parametrize("case, expected", [
    pytest.param("no-devices", "the stage has no targets", id="no-targets"),
    pytest.param("only-foreign", "the stage has no targets", id="only-foreign-devices"),
    pytest.param("empty-group", "the stage has no targets", id="empty-group"),
    pytest.param("no-operations", "the stage has no operations", id="no-operations"),
])
def test_invalid_stage_reasons_and_nothing_written(engine, case, expected):
    enterprise_id = new_enterprise(engine)
    devices = add_devices(engine, enterprise_id, 2)
    lists, operations = [TargetListSpec(devices=devices)], [INSTALL]
    if case == "no-devices":
        lists = []
    elif case == "only-foreign":
        lists = [TargetListSpec(devices=add_devices(engine, new_enterprise(engine), 2))]
    elif case == "empty-group":
        lists = [TargetListSpec(groups=[add_group(engine, enterprise_id, [])])]
    elif case == "no-operations":
        operations = []
    built = build_pipeline(engine, enterprise_id, [StageSpec("stage", lists, operations)])
    run = creation.create_pipeline_run(engine, enterprise_id, built.pipeline_id)
    [stage] = creation.prepare_stage_runs(engine, run.id)
    stage_run_id = UUID(stage.stage_run_id)
    for _ in range(2):
        plan = stage_targets.materialize_targets(engine, stage_run_id)
        assert (plan.invalid_reason, plan.operation_ids, plan.device_count) == (expected, [], 0)
    assert targets(engine, stage_run_id) == []
    assert count_rows(engine, StageRunOperation,
                      StageRunOperation.stage_run_id == stage_run_id) == 0


def test_materialize_an_unknown_stage_run(engine):
    with pytest.raises(LookupError):
        stage_targets.materialize_targets(engine, uuid4())


def test_works_with_the_shared_fleet_builder(engine):
    """Pipelines with fresh devices (tests.builders.make_pipeline) make runs the store expands."""
    enterprise_id, pipeline_id = make_pipeline(
        engine, [StageSpec("a", devices=[{}, {}]), StageSpec("b", devices=[{}])],
        enterprise=f"fleet-{uuid4().hex[:8]}")
    run = creation.create_pipeline_run(engine, enterprise_id, pipeline_id)
    plans = [stage_targets.materialize_targets(engine, UUID(s.stage_run_id))
             for s in creation.prepare_stage_runs(engine, run.id)]
    assert [p.device_count for p in plans] == [2, 1]


# ---- next_target_page --------------------------------------------------------------------------
def test_next_target_page_pages_by_device_seq(engine):
    _, stage_run_id, devices = started_stage(engine, devices=5, operations=(INSTALL, REBOOT))
    stage_targets.materialize_targets(engine, stage_run_id)
    pages, cursor = [], -1
    while page := stage_targets.next_target_page(engine, stage_run_id, cursor, 2):
        pages.append(page)
        cursor = page[-1][0]
    assert pages == [
        [(0, str(devices[0])), (1, str(devices[1]))],
        [(2, str(devices[2])), (3, str(devices[3]))],
        [(4, str(devices[4]))],
    ]
    assert stage_targets.next_target_page(engine, stage_run_id, 4, 10) == []


def test_the_named_page_gives_each_device_its_name_and_the_plan_its_operation_types(engine):
    _, stage_run_id, devices = started_stage(engine, devices=3, operations=(INSTALL, REBOOT))
    plan = stage_targets.materialize_targets(engine, stage_run_id)
    assert plan.operation_types == ["INSTALL", "REBOOT"]
    assert stage_targets.materialize_targets(engine, stage_run_id).operation_types == [
        "INSTALL", "REBOOT"]  # the second call finds the same plan
    named = stage_targets.next_named_target_page(engine, stage_run_id, 0, 10)
    assert [(seq, device) for seq, device, _ in named] == [(1, str(devices[1])),
                                                          (2, str(devices[2]))]
    assert all(name for _, _, name in named) and len({name for *_, name in named}) == 2


def test_next_target_page_keeps_cancelled_devices_and_leaves_out_superseded_ones(engine):
    """A device cancelled before it started is still paged (the stage must close its later
    operations); one sent again after that is the stage's own to start."""
    _, stage_run_id, devices = started_stage(engine, devices=5)
    stage_targets.materialize_targets(engine, stage_run_id)
    rows = targets(engine, stage_run_id)
    for row in (rows[1], rows[3]):
        stage_targets.close_pending_targets(engine, stage_run_id, "cancelled", "operator", at(1),
                                 target_run_ids=[str(row.id)])
    retries.retry_target_run(engine, stage_run_id, rows[3].id)
    page = stage_targets.next_target_page(engine, stage_run_id, -1, 10)
    assert page == [(0, str(devices[0])), (1, str(devices[1])), (2, str(devices[2])),
                    (4, str(devices[4]))]
    assert stage_targets.next_target_page(engine, stage_run_id, 1, 1) == [(2, str(devices[2]))]


# ---- close_pending_targets ---------------------------------------------------------------------
def test_close_pending_targets_touches_only_pending_rows(engine):
    _, stage_run_id, _ = started_stage(engine, devices=5)
    stage_targets.materialize_targets(engine, stage_run_id)
    rows = targets(engine, stage_run_id)
    move(engine, RunKind.TARGET, rows[0].id, "dispatched", at(1))
    move(engine, RunKind.TARGET, rows[1].id, "queued", at(1))
    move(engine, RunKind.TARGET, rows[2].id, "success", at(1))
    closed = stage_targets.close_pending_targets(engine, stage_run_id, "cancelled",
                                                 "stage cancelled", at(2))
    assert closed == 2
    after = {t.id: t for t in targets(engine, stage_run_id)}
    assert [after[t.id].status for t in rows] == [
        "dispatched", "queued", "success", "cancelled", "cancelled"]
    for target in rows[3:]:
        stored = after[target.id]
        assert (stored.status_reason, stored.ended_at) == ("stage cancelled", at(2))
        assert events(engine, target.id) == [("pending", "cancelled")]
    assert after[rows[0].id].updated_at == at(1)
    assert stage_targets.close_pending_targets(engine, stage_run_id, "cancelled", "again",
                                               at(3)) == 0


def test_close_pending_targets_only_the_given_ones(engine):
    _, stage_run_id, _ = started_stage(engine, devices=4)
    stage_targets.materialize_targets(engine, stage_run_id)
    rows = targets(engine, stage_run_id)
    move(engine, RunKind.TARGET, rows[1].id, "processing", at(1))
    closed = stage_targets.close_pending_targets(
        engine, stage_run_id, "timeout", "stage timed out", at(2),
        target_run_ids=[str(rows[0].id), str(rows[1].id)])
    assert closed == 1
    assert [t.status for t in targets(engine, stage_run_id)] == [
        "timeout", "processing", "pending", "pending"]


def test_close_pending_targets_keeps_to_its_stage_run(engine):
    _, first, _ = started_stage(engine, devices=2)
    _, second, _ = started_stage(engine, devices=2)
    stage_targets.materialize_targets(engine, first)
    stage_targets.materialize_targets(engine, second)
    other_ids = [str(t.id) for t in targets(engine, second)]
    assert stage_targets.close_pending_targets(engine, first, "cancelled", "", at(1),
                                    target_run_ids=other_ids) == 0
    assert {t.status for t in targets(engine, second)} == {"pending"}


# ---- add_target_device -------------------------------------------------------------------------
def test_add_target_device_appends_with_the_next_seq(engine):
    run, stage_run_id, _ = started_stage(engine, devices=3, operations=(INSTALL, REBOOT))
    stage_targets.materialize_targets(engine, stage_run_id)
    enterprise_id = run.enterprise_id
    late, later = add_devices(engine, enterprise_id, 2, prefix="late")
    seq, ids = stage_targets.add_target_device(engine, stage_run_id, late)
    assert seq == 3 and len(ids) == 2
    added = [t for t in targets(engine, stage_run_id) if t.target_id == late]
    assert [(str(t.id), t.device_seq, t.operation_order, t.status) for t in added] == [
        (ids[0], 3, 0, "pending"), (ids[1], 3, 1, "pending")]
    assert (added[0].device_name, added[0].device_alias) == ("late-0", "late-alias-0")
    assert stage_targets.next_target_page(engine, stage_run_id, 2, 10) == [(3, str(late))]
    assert stage_targets.add_target_device(engine, stage_run_id, later, "renamed", "r")[0] == 4
    assert row(engine, StageRun, stage_run_id).device_count == 5
    named = [t for t in targets(engine, stage_run_id) if t.target_id == later]
    assert {(t.device_name, t.device_alias) for t in named} == {("renamed", "r")}


def test_add_target_device_is_idempotent(engine):
    run, stage_run_id, devices = started_stage(engine, devices=2)
    stage_targets.materialize_targets(engine, stage_run_id)
    [late] = add_devices(engine, run.enterprise_id, 1, prefix="late")
    first = stage_targets.add_target_device(engine, stage_run_id, late)
    assert stage_targets.add_target_device(engine, stage_run_id, late) == first
    # a device the stage already had is returned as it is
    assert stage_targets.add_target_device(engine, stage_run_id, devices[1])[0] == 1
    assert len(targets(engine, stage_run_id)) == 3
    assert row(engine, StageRun, stage_run_id).device_count == 3


def test_add_target_device_refuses_another_enterprises_device(engine):
    _, stage_run_id, _ = started_stage(engine, devices=2)
    stage_targets.materialize_targets(engine, stage_run_id)
    [foreign] = add_devices(engine, new_enterprise(engine), 1)
    with pytest.raises(LookupError):
        stage_targets.add_target_device(engine, stage_run_id, foreign)
    with pytest.raises(LookupError):
        stage_targets.add_target_device(engine, stage_run_id, uuid4())
    with pytest.raises(LookupError):
        stage_targets.add_target_device(engine, uuid4(), foreign)
    assert len(targets(engine, stage_run_id)) == 2
    assert row(engine, StageRun, stage_run_id).device_count == 2


def test_add_target_device_before_materialize_keeps_the_stage_valid(engine):
    run, stage_run_id, devices = started_stage(engine, devices=2)
    [late] = add_devices(engine, run.enterprise_id, 1, prefix="late")
    try:
        stage_targets.add_target_device(engine, stage_run_id, late)
    except LookupError:
        pass  # refusing the early add would be a fine fix too
    plan = stage_targets.materialize_targets(engine, stage_run_id)
    assert plan.invalid_reason == ""
    assert {t.target_id for t in targets(engine, stage_run_id)} >= set(devices)


def test_device_rows_found_by_id(engine):
    """Guard for the builders: devices are stored under the enterprise they were made for."""
    enterprise_id = new_enterprise(engine)
    [device_id] = add_devices(engine, enterprise_id, 1)
    assert row(engine, Device, device_id).enterprise_id == enterprise_id
