"""Concurrency keys on the real dev server: runs of an enterprise that share a key never
overlap and start in creation order; a queued run that is cancelled leaves the line and never
starts; other keys and runs without a key are not held up; a worker restart and a terminated
holder lose nothing; the lane continues as new and its histories replay."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime
from pathlib import Path
from uuid import UUID

from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.worker import Replayer

from control.connection import TemporalConnection
from control.launch import start_pipeline_run
from control.service import RunControl
from domain.concurrency import QUERY_LANE_STATE, LaneState, lane_workflow_id
from domain.ids import pipeline_run_workflow_id
from settings import Settings
from store.db import transaction
from store.runs.creation import create_pipeline_run
from store.runs.tables import ACTION_EVENT, PipelineRun, StatusEvent
from tests.builders import StageSpec, make_pipeline
from tests.workflows.helpers import result_of, run_row, stage_rows, wait_for
from worker import WORKFLOWS, running_worker
from workflows.converter import DATA_CONVERTER
from workflows.messages import PipelineRunInput
from workflows.pipeline_run import PipelineRunWorkflow

HISTORIES = Path(__file__).parent / "histories"
SLOW = {"sim_latency_ms": "1500"}


def _pipeline(engine: Engine, latency: dict[str, str] = SLOW) -> tuple[UUID, UUID]:
    return make_pipeline(engine, [StageSpec("only", devices=[latency])])


async def _start(client: Client, engine: Engine, task_queue: str, ids: tuple[UUID, UUID],
                 key: str | None) -> PipelineRun:
    return await start_pipeline_run(client, engine, enterprise_id=ids[0], pipeline_id=ids[1],
                                    task_queue=task_queue, concurrency_key=key)


async def _start_tuned(client: Client, engine: Engine, task_queue: str,
                       ids: tuple[UUID, UUID], key: str, *, check_seconds: int = 300,
                       history_budget: int = 2_000) -> PipelineRun:
    """As control.launch starts a run, with the knobs of the lane it starts turned."""
    run = await asyncio.to_thread(create_pipeline_run, engine, ids[0], ids[1],
                                  concurrency_key=key)
    await client.start_workflow(
        PipelineRunWorkflow.run, PipelineRunInput(
            str(run.id), str(ids[0]), concurrency_key=key, lane_check_seconds=check_seconds,
            lane_history_budget=history_budget),
        id=pipeline_run_workflow_id(run.id), task_queue=task_queue)
    return run


async def _start_created(client: Client, task_queue: str, run: PipelineRun,
                         *, check_seconds: int = 300) -> None:
    """Start the workflow of a run already in the store (as control.launch would)."""
    await client.start_workflow(
        PipelineRunWorkflow.run, PipelineRunInput(
            str(run.id), str(run.enterprise_id), concurrency_key=run.concurrency_key,
            lane_check_seconds=check_seconds),
        id=pipeline_run_workflow_id(run.id), task_queue=task_queue)


def _created(engine: Engine, ids: tuple[UUID, UUID], key: str) -> PipelineRun:
    return create_pipeline_run(engine, ids[0], ids[1], concurrency_key=key)


def _events(engine: Engine, run_id: UUID) -> list[StatusEvent]:
    """The run's own status changes (the log also holds operator actions on it)."""
    with transaction(engine) as session:
        return list(session.exec(select(StatusEvent).where(
            StatusEvent.run_id == run_id, StatusEvent.kind != ACTION_EVENT)
            .order_by(col(StatusEvent.id))).all())


def _first_stage_started(engine: Engine, run_id: UUID) -> datetime:
    stages = stage_rows(engine, run_id)
    assert stages and stages[0].started_at is not None
    return stages[0].started_at


def _running(engine: Engine, run_id: UUID) -> bool:
    stages = stage_rows(engine, run_id)
    return bool(stages) and stages[0].status == "running"


def _assert_one_after_another(engine: Engine, runs: list[PipelineRun]) -> None:
    """Each run's first stage started, and its own start was recorded, after the run before
    it ended; so no two of them were ever active at once."""
    for before, after in zip(runs, runs[1:], strict=False):
        ended = run_row(engine, before.id).ended_at
        assert ended is not None
        assert _first_stage_started(engine, after.id) >= ended
        processing = [e for e in _events(engine, after.id) if e.to_status == "processing"]
        assert len(processing) == 1 and processing[0].at >= ended
        started = run_row(engine, after.id).started_at
        assert started is not None and started >= ended


async def _lane_closed(client: Client, lane_id: str) -> None:
    for _ in range(150):
        if (await client.get_workflow_handle(lane_id).describe()).status != \
                WorkflowExecutionStatus.RUNNING:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"lane {lane_id} still running with no run in it")


async def test_runs_with_one_key_never_overlap_and_start_in_creation_order(
        temporal_client, sqlite_engine, task_queue):
    ids = _pipeline(sqlite_engine)
    lane_id = lane_workflow_id(str(ids[0]), "fleet-A")
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        # A small history budget: the lane continues as new while the runs go through it.
        runs = [await _start_tuned(temporal_client, sqlite_engine, task_queue, ids, "fleet-A",
                                   history_budget=15)]
        await wait_for(lambda: _running(sqlite_engine, runs[0].id))
        runs += [await _start(temporal_client, sqlite_engine, task_queue, ids, "fleet-A")
                 for _ in range(3)]
        first, queued = runs[0], runs[1:]
        await wait_for(lambda: _running(sqlite_engine, first.id)
                       and all(run_row(sqlite_engine, r.id).status == "queued" for r in queued))
        for ahead, run in zip(runs, queued, strict=False):
            row = run_row(sqlite_engine, run.id)
            assert row.status_reason.startswith(f"queued behind run {ahead.id}")
            assert row.started_at is None and stage_rows(sqlite_engine, run.id) == []
        state = await temporal_client.get_workflow_handle(lane_id).query(
            QUERY_LANE_STATE, result_type=LaneState)
        assert state == LaneState(str(first.id), [str(r.id) for r in queued])
        for run in runs:
            assert (await result_of(temporal_client, run.id)).status == "success"
    _assert_one_after_another(sqlite_engine, runs)
    assert all(run_row(sqlite_engine, r.id).concurrency_key == "fleet-A" for r in runs)
    await _lane_closed(temporal_client, lane_id)
    lanes = [w async for w in temporal_client.list_workflows(f'WorkflowId = "{lane_id}"')]
    assert len(lanes) >= 2, "the lane never continued as new"
    await _replay_and_maybe_keep(temporal_client, [pipeline_run_workflow_id(runs[1].id)],
                                 lane_id)


async def test_a_queued_run_cancelled_leaves_the_line_and_the_next_one_starts(
        temporal_client, sqlite_engine, task_queue):
    ids = _pipeline(sqlite_engine, {"sim_latency_ms": "3000"})
    settings = Settings(database_url="sqlite://", task_queue=task_queue)
    control = RunControl(sqlite_engine, TemporalConnection(settings, temporal_client), settings)
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        first, second, third = [
            (await control.start_pipeline_run(ids[0], ids[1], concurrency_key="k")).content
            for _ in range(3)]
        await wait_for(lambda: _running(sqlite_engine, first.id)
                       and run_row(sqlite_engine, third.id).status == "queued")
        cancelled = await control.set_pipeline_run_status(ids[0], ids[1], second.id,
                                                          "cancelled")
        assert cancelled.content.status == "cancelled"
        # It left at once: the first still runs, the third still waits for it.
        assert run_row(sqlite_engine, first.id).status == "running"
        assert run_row(sqlite_engine, third.id).status == "queued"
        for run in (first, third):
            assert (await result_of(temporal_client, run.id)).status == "success"
        assert (await result_of(temporal_client, second.id)).status == "cancelled"
    gone = run_row(sqlite_engine, second.id)
    assert gone.started_at is None and stage_rows(sqlite_engine, second.id) == []
    assert [e.to_status for e in _events(sqlite_engine, second.id)] == ["queued", "cancelled"]
    _assert_one_after_another(sqlite_engine, [first, third])
    lane_id = lane_workflow_id(str(ids[0]), "k")
    await _lane_closed(temporal_client, lane_id)
    await _replay_and_maybe_keep(temporal_client, [pipeline_run_workflow_id(second.id)],
                                 lane_id)


async def test_other_keys_and_runs_without_a_key_are_not_held_up(
        temporal_client, sqlite_engine, task_queue):
    ids = _pipeline(sqlite_engine, {"sim_latency_ms": "4000"})
    other_enterprise = make_pipeline(sqlite_engine, [StageSpec("only", devices=[SLOW])],
                                     enterprise="globex")
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        runs = [await _start(temporal_client, sqlite_engine, task_queue, ids, "x"),
                await _start(temporal_client, sqlite_engine, task_queue, ids, "y"),
                await _start(temporal_client, sqlite_engine, task_queue, ids, None),
                await _start(temporal_client, sqlite_engine, task_queue, other_enterprise, "x")]
        # All four are running at one moment: none waited for another.
        await wait_for(lambda: all(_running(sqlite_engine, r.id) for r in runs))
        for run in runs:
            assert (await result_of(temporal_client, run.id)).status == "success"
    unkeyed = _events(sqlite_engine, runs[2].id)
    assert [e.to_status for e in unkeyed[:3]] == ["queued", "processing", "running"]


async def test_a_run_whose_join_arrives_late_still_goes_first(
        temporal_client, sqlite_engine, task_queue):
    """Joins race (each is an activity): the turn follows creation, not arrival."""
    ids = _pipeline(sqlite_engine)
    first, second = _created(sqlite_engine, ids, "k"), _created(sqlite_engine, ids, "k")
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        await _start_created(temporal_client, task_queue, second)
        await wait_for(lambda: run_row(sqlite_engine, second.id).status == "queued")
        lane = temporal_client.get_workflow_handle(lane_workflow_id(str(ids[0]), "k"))
        await _until_lane_waits(lane, [str(second.id)])
        await asyncio.sleep(1)  # the lane holds the turn for the run created first
        assert run_row(sqlite_engine, second.id).status == "queued"
        assert stage_rows(sqlite_engine, second.id) == []
        await _start_created(temporal_client, task_queue, first)
        for run in (first, second):
            assert (await result_of(temporal_client, run.id)).status == "success"
    _assert_one_after_another(sqlite_engine, [first, second])
    lane_id = lane_workflow_id(str(ids[0]), "k")
    await _lane_closed(temporal_client, lane_id)
    await _replay_and_maybe_keep(temporal_client, [pipeline_run_workflow_id(second.id)],
                                 lane_id)


async def test_an_earlier_run_that_never_started_does_not_hold_the_lane(
        temporal_client, sqlite_engine, task_queue):
    ids = _pipeline(sqlite_engine)
    never = _created(sqlite_engine, ids, "k")  # its start was lost: no workflow
    run = _created(sqlite_engine, ids, "k")
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        await _start_created(temporal_client, task_queue, run, check_seconds=1)
        assert (await result_of(temporal_client, run.id)).status == "success"
    assert run_row(sqlite_engine, never.id).status == "pending"


async def _until_lane_waits(lane, waiting: list[str]) -> None:  # noqa: ANN001
    """Until the lane holds exactly `waiting` in line and gave the turn to no one."""
    state = None
    for _ in range(300):
        try:
            state = await lane.query(QUERY_LANE_STATE, result_type=LaneState)
        except RPCError:  # not started yet
            state = None
        if state == LaneState(None, waiting):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the lane never held {waiting} with no holder: last {state}")


async def test_a_worker_restart_while_runs_wait_loses_nothing(
        temporal_client, sqlite_engine, task_queue):
    ids = _pipeline(sqlite_engine, {"sim_latency_ms": "3000"})
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        first = await _start(temporal_client, sqlite_engine, task_queue, ids, "k")
        second = await _start(temporal_client, sqlite_engine, task_queue, ids, "k")
        await wait_for(lambda: _running(sqlite_engine, first.id)
                       and run_row(sqlite_engine, second.id).status == "queued")
    # No worker: nothing moves, and nothing is forgotten.
    await asyncio.sleep(1)
    assert run_row(sqlite_engine, second.id).status == "queued"
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        for run in (first, second):
            assert (await result_of(temporal_client, run.id)).status == "success"
    _assert_one_after_another(sqlite_engine, [first, second])


async def test_a_terminated_holder_gives_the_turn_to_the_next_run(
        temporal_client, sqlite_engine, task_queue):
    ids = _pipeline(sqlite_engine, {"sim_latency_ms": "60000"})
    lane_id = lane_workflow_id(str(ids[0]), "k")
    fast = make_pipeline(sqlite_engine, [StageSpec("only", devices=[{}])], name="fast")
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        stuck = await _start_tuned(temporal_client, sqlite_engine, task_queue, ids, "k",
                                   check_seconds=1)
        after = await _start(temporal_client, sqlite_engine, task_queue, fast, "k")
        await wait_for(lambda: _running(sqlite_engine, stuck.id)
                       and run_row(sqlite_engine, after.id).status == "queued")
        # Terminated: its workflow runs no more code, so it never says it left.
        await temporal_client.get_workflow_handle(pipeline_run_workflow_id(stuck.id)).terminate(
            reason="test")
        assert (await result_of(temporal_client, after.id)).status == "success"
    await _lane_closed(temporal_client, lane_id)


async def _replay_and_maybe_keep(client: Client, run_workflow_ids: list[str],
                                 lane_id: str) -> None:
    """Replay the lane's runs and the keyed runs' histories on today's code; with
    FLEETPIPE_CAPTURE_HISTORIES=1 keep them beside the committed ones."""
    histories = [await client.get_workflow_handle(w).fetch_history() for w in run_workflow_ids]
    async for lane in client.list_workflows(f'WorkflowId = "{lane_id}"'):
        histories.append(await client.get_workflow_handle(lane.id, run_id=lane.run_id)
                         .fetch_history())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    for history in histories:
        await replayer.replay_workflow(history)
    if os.environ.get("FLEETPIPE_CAPTURE_HISTORIES") == "1":
        for history in histories:
            kind = history.events[0].workflow_execution_started_event_attributes
            run_id = kind.original_execution_run_id[-12:]
            name = f"{kind.workflow_type.name}-keyed-{run_id}.json"
            (HISTORIES / name).write_text(json.dumps(
                {"workflow_id": history.workflow_id, "history": json.loads(history.to_json())}))
