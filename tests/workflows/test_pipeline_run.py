"""Pipeline runs end to end on the real Temporal dev server, SQLite and the simulated fleet."""

from __future__ import annotations

from control.launch import start_pipeline_run
from domain.ids import pipeline_run_workflow_id
from tests.builders import INSTALL, REBOOT, StageSpec, make_pipeline
from tests.workflows.helpers import (
    commands_of,
    result_of,
    run_row,
    stage_rows,
    target_rows,
    wait_for,
)
from worker import running_worker
from workflows import names
from workflows.messages import RunState, RunStatusRequest, StageStatusRequest


async def test_two_stage_run_waits_at_gate_and_succeeds_after_promotion(
        temporal_client, sqlite_engine, task_queue):
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("canary", devices=[{}, {}]),
        StageSpec("fleet", trigger="manual", devices=[{}, {}, {}], operations=[INSTALL, REBOOT]),
    ])
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        assert run.run_number == 1
        await wait_for(lambda: run_row(sqlite_engine, run.id).status == "waiting")
        canary, fleet = stage_rows(sqlite_engine, run.id)
        assert canary.status == "success"
        assert fleet.status == "pending"
        handle = temporal_client.get_workflow_handle(pipeline_run_workflow_id(run.id))
        state = await handle.execute_update(
            names.UPDATE_SET_STAGE_STATUS, StageStatusRequest(str(fleet.id), "QUEUED"),
            result_type=RunState)
        assert state.waiting_for_stage_run_id is None
        result = await result_of(temporal_client, run.id)
    assert result.status == "success"
    row = run_row(sqlite_engine, run.id)
    assert row.status == "success" and row.ended_at is not None and row.started_at is not None
    targets = target_rows(sqlite_engine, fleet.id)
    assert len(targets) == 6
    assert {t.status for t in targets} == {"success"}
    assert {t.command_status for t in targets} == {"success"}
    assert len(commands_of(sqlite_engine, run.id)) == 2 + 6


async def test_pipeline_without_stages_is_invalid(temporal_client, sqlite_engine, task_queue):
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [])
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        result = await result_of(temporal_client, run.id)
    assert result.status == "invalid"
    assert run_row(sqlite_engine, run.id).status == "invalid"


async def test_cancel_at_gate_cancels_pending_stages(temporal_client, sqlite_engine, task_queue):
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("canary", devices=[{}]), StageSpec("fleet", trigger="manual", devices=[{}])])
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        await wait_for(lambda: run_row(sqlite_engine, run.id).status == "waiting")
        handle = temporal_client.get_workflow_handle(pipeline_run_workflow_id(run.id))
        state = await handle.execute_update(names.UPDATE_SET_RUN_STATUS,
                                            RunStatusRequest("Cancelled"), result_type=RunState)
        assert state.status == "cancelled"
        await result_of(temporal_client, run.id)
    assert [s.status for s in stage_rows(sqlite_engine, run.id)] == ["success", "cancelled"]


async def test_failed_stage_fails_run_and_cancels_later_stages(
        temporal_client, sqlite_engine, task_queue):
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("canary", devices=[{}, {"sim_behavior": "fail"}], operations=[INSTALL, REBOOT]),
        StageSpec("fleet", trigger="automatic", devices=[{}])])
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        result = await result_of(temporal_client, run.id)
    assert result.status == "failure"
    canary, fleet = stage_rows(sqlite_engine, run.id)
    assert canary.status == "failure"
    assert fleet.status == "cancelled" and "canary" in fleet.status_reason
    by_device = {}
    for target in target_rows(sqlite_engine, canary.id):
        by_device.setdefault(target.device_name, []).append(target.status)
    assert by_device == {"canary-dev-0": ["success", "success"],
                         "canary-dev-1": ["failure", "failure"]}
