"""Operator actions on running stages: cancel cascade, pause and resume, target cancel, add."""

from __future__ import annotations

import asyncio
import collections
import json
import os
from pathlib import Path

from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.worker import Replayer

from control.launch import start_pipeline_run
from domain.ids import pipeline_run_workflow_id, stage_run_workflow_id
from store.db import transaction
from store.definitions.devices import Device
from tests.builders import INSTALL, REBOOT, StageSpec, make_pipeline
from tests.workflows.helpers import (
    commands_of,
    result_of,
    run_row,
    stage_rows,
    target_rows,
    wait_for,
)
from worker import WORKFLOWS, running_worker
from workflows import names
from workflows.converter import DATA_CONVERTER
from workflows.messages import (
    AddTargetRequest,
    AddTargetResult,
    RunState,
    RunStatusRequest,
    StageRunResult,
    TargetCancelRequest,
)

SLOW = {"sim_latency_ms": "3000"}
HISTORIES = Path(__file__).parent / "histories"


def _statuses(engine, stage_run_id) -> list[str]:
    return [t.status for t in target_rows(engine, stage_run_id)]


def _first_stage_running(engine, run_id) -> bool:
    stages = stage_rows(engine, run_id)
    return bool(stages) and stages[0].status == "running"


async def _start(client, engine, task_queue, stages, window=200):
    enterprise_id, pipeline_id = make_pipeline(engine, stages)
    return await start_pipeline_run(client, engine, enterprise_id=enterprise_id,
                                    pipeline_id=pipeline_id, task_queue=task_queue,
                                    stage_window=window)


async def test_cancel_mid_stage_cancels_pending_targets_and_fails_dispatched_ones(
        temporal_client, sqlite_engine, task_queue):
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run = await _start(temporal_client, sqlite_engine, task_queue,
                           [StageSpec("fleet", devices=[SLOW] * 4),
                            StageSpec("later", devices=[{}])], window=2)
        await wait_for(lambda: _first_stage_running(sqlite_engine, run.id))
        stage = stage_rows(sqlite_engine, run.id)[0]
        await wait_for(lambda: sorted(_statuses(sqlite_engine, stage.id)).count("pending") == 2
                       and "processing" not in _statuses(sqlite_engine, stage.id)
                       and "queued" not in _statuses(sqlite_engine, stage.id))
        handle = temporal_client.get_workflow_handle(pipeline_run_workflow_id(run.id))
        state = await handle.execute_update(names.UPDATE_SET_RUN_STATUS,
                                            RunStatusRequest("cancelled"), result_type=RunState)
        assert state.status == "cancelled"
        await result_of(temporal_client, run.id)
    assert run_row(sqlite_engine, run.id).status == "cancelled"
    assert [s.status for s in stage_rows(sqlite_engine, run.id)] == ["cancelled", "cancelled"]
    targets = target_rows(sqlite_engine, stage.id)
    assert sorted(t.status for t in targets) == ["cancelled", "cancelled", "failure", "failure"]
    for target in targets:
        if target.status == "failure":
            assert target.command_status == "cancelled"
    assert sorted(c.status for c in commands_of(sqlite_engine, run.id)) == [
        "cancelled", "cancelled"]


async def test_pause_stops_new_dispatches_until_resumed(
        temporal_client, sqlite_engine, task_queue):
    quick = {"sim_latency_ms": "1000"}
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run = await _start(temporal_client, sqlite_engine, task_queue,
                           [StageSpec("fleet", devices=[quick] * 4)], window=1)
        handle = temporal_client.get_workflow_handle(pipeline_run_workflow_id(run.id))
        await wait_for(lambda: _first_stage_running(sqlite_engine, run.id))
        state = await handle.execute_update(names.UPDATE_SET_RUN_STATUS,
                                            RunStatusRequest("WAITING"), result_type=RunState)
        assert state.paused and run_row(sqlite_engine, run.id).status == "waiting"
        stage = stage_rows(sqlite_engine, run.id)[0]
        await asyncio.sleep(2.5)  # over two device latencies: nothing new may start
        started = [s for s in _statuses(sqlite_engine, stage.id) if s != "pending"]
        assert 1 <= len(started) <= 2 and started.count("success") <= len(started)
        assert "pending" in _statuses(sqlite_engine, stage.id)
        state = await handle.execute_update(names.UPDATE_SET_RUN_STATUS,
                                            RunStatusRequest("running"), result_type=RunState)
        assert not state.paused and run_row(sqlite_engine, run.id).status == "running"
        result = await result_of(temporal_client, run.id)
    assert result.status == "success"
    assert _statuses(sqlite_engine, stage.id) == ["success"] * 4


async def test_cancel_a_pending_target_and_add_a_device_to_an_open_stage(
        temporal_client, sqlite_engine, task_queue):
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run = await _start(temporal_client, sqlite_engine, task_queue,
                           [StageSpec("fleet", devices=[SLOW] * 3)], window=1)
        await wait_for(lambda: _first_stage_running(sqlite_engine, run.id))
        stage = stage_rows(sqlite_engine, run.id)[0]
        last = target_rows(sqlite_engine, stage.id)[-1]
        stage_handle = temporal_client.get_workflow_handle(stage_run_workflow_id(stage.id))
        await stage_handle.execute_update(names.UPDATE_CANCEL_TARGET,
                                          TargetCancelRequest(str(last.id)))
        make_pipeline(sqlite_engine, [StageSpec("spare", devices=[{}])], name="spare")
        with transaction(sqlite_engine) as session:
            device = session.exec(select(Device).where(Device.name == "spare-dev-0")).one()
        added = await stage_handle.execute_update(
            names.UPDATE_ADD_TARGET, AddTargetRequest(str(device.id)), result_type=AddTargetResult)
        assert len(added.target_run_ids) == 1
        result = await result_of(temporal_client, run.id)
    by_name = {t.device_name: t.status for t in target_rows(sqlite_engine, stage.id)}
    assert by_name == {"fleet-dev-0": "success", "fleet-dev-1": "success",
                       "fleet-dev-2": "cancelled", "spare-dev-0": "success"}
    assert result.status == "failure"  # a cancelled target is not a success


async def test_targets_cancelled_before_they_start_count_once_and_strand_nothing(
        temporal_client, sqlite_engine, task_queue):
    """Window 1, three devices x (install, reboot). Cancelled while pending: device 0's
    reboot (queued behind its running install) and device 2's install (not reached yet)."""
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run = await _start(temporal_client, sqlite_engine, task_queue,
                           [StageSpec("fleet", devices=[SLOW] * 3,
                                      operations=[INSTALL, REBOOT])], window=1)
        await wait_for(lambda: _first_stage_running(sqlite_engine, run.id))
        stage = stage_rows(sqlite_engine, run.id)[0]
        rows = {(t.device_name, t.operation_order): t for t in target_rows(sqlite_engine,
                                                                            stage.id)}
        handle = temporal_client.get_workflow_handle(stage_run_workflow_id(stage.id),
                                                     result_type=StageRunResult)
        for key in (("fleet-dev-0", 1), ("fleet-dev-2", 0)):
            await handle.execute_update(names.UPDATE_CANCEL_TARGET,
                                        TargetCancelRequest(str(rows[key].id)))
        stage_result = await asyncio.wait_for(handle.result(), 60)
        await result_of(temporal_client, run.id)
    statuses = {(t.device_name, t.operation_order): t.status
                for t in target_rows(sqlite_engine, stage.id)}
    assert statuses == {
        ("fleet-dev-0", 0): "success", ("fleet-dev-0", 1): "cancelled",
        ("fleet-dev-1", 0): "success", ("fleet-dev-1", 1): "success",
        ("fleet-dev-2", 0): "cancelled", ("fleet-dev-2", 1): "failure",  # not left pending
    }
    # The workflow's own counts (abort criteria, the result) agree with the rows.
    assert stage_result.counts == {"success": 3, "cancelled": 2, "failure": 1}


async def test_a_stage_continues_as_new_without_losing_a_target(
        temporal_client, sqlite_engine, task_queue):
    # Devices that take a moment: targets are in flight whenever the stage continues as new,
    # so it hands their reports over (they signal the next run instead of completing to it).
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("fleet", devices=[{"sim_latency_ms": "1000"}] * 40)])
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue, stage_window=8,
                                       stage_history_budget=60)  # ~4 runs for 40 targets
        result = await result_of(temporal_client, run.id)
    assert result.status == "success"
    (stage,) = stage_rows(sqlite_engine, run.id)
    assert _statuses(sqlite_engine, stage.id) == ["success"] * 40
    query = f'WorkflowId = "{stage_run_workflow_id(stage.id)}"'
    for _ in range(50):  # visibility is eventually consistent
        runs = [w async for w in temporal_client.list_workflows(query)]
        if len(runs) >= 3 and all(w.status is not None for w in runs):
            break
        await asyncio.sleep(0.1)
    histories = [await temporal_client.get_workflow_handle(w.id, run_id=w.run_id)
                 .fetch_history() for w in runs]
    assert len(runs) >= 3  # it really continued as new, more than once
    assert max(len(h.events) for h in histories) < 200  # budget 60 plus the wind-down
    # Ends read both ways: completions within a run, signals across a continue-as-new.
    kinds = collections.Counter(EventType.Name(e.event_type) for h in histories for e in h.events)
    assert kinds["EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED"] > 0
    assert kinds["EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED"] > 0  # hand-overs
    signalled = [e for h in histories for e in h.events
                 if e.workflow_execution_signaled_event_attributes.signal_name
                 == names.SIGNAL_TARGET_FINISHED]
    assert signalled, "no target reported by signal after a continue-as-new"
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    for history in histories:
        await replayer.replay_workflow(history)
    if os.environ.get("FLEETPIPE_CAPTURE_HISTORIES") == "1":
        for wf, history in zip(runs, histories, strict=True):
            name = f"StageRunWorkflow-lean-{(wf.run_id or '')[-12:]}"
            (HISTORIES / f"{name}.json").write_text(json.dumps(
                {"workflow_id": history.workflow_id, "history": json.loads(history.to_json())}))


async def test_a_pause_survives_a_worker_restart(temporal_client, sqlite_engine, task_queue):
    quick = {"sim_latency_ms": "500"}
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("fleet", devices=[quick] * 4)])
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue, stage_window=1)
        handle = temporal_client.get_workflow_handle(pipeline_run_workflow_id(run.id))
        await wait_for(lambda: _first_stage_running(sqlite_engine, run.id))
        await handle.execute_update(names.UPDATE_SET_RUN_STATUS, RunStatusRequest("waiting"),
                                    result_type=RunState)
    stage = stage_rows(sqlite_engine, run.id)[0]
    # A new worker process: the pause is workflow state, so it holds.
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        await asyncio.sleep(2.0)
        started = [s for s in _statuses(sqlite_engine, stage.id) if s != "pending"]
        assert len(started) <= 2 and run_row(sqlite_engine, run.id).status == "waiting"
        state = await handle.query(names.QUERY_RUN_STATE, result_type=RunState)
        assert state.paused
        await handle.execute_update(names.UPDATE_SET_RUN_STATUS, RunStatusRequest("running"),
                                    result_type=RunState)
        result = await result_of(temporal_client, run.id)
    assert result.status == "success"
    assert _statuses(sqlite_engine, stage.id) == ["success"] * 4
