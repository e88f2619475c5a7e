"""The 7-day (stage, target) and 21-day (pipeline) timeouts, on the time-skipping test server.

Offline simulated devices never answer, so only the durable timers can end these runs.
"""

from __future__ import annotations

import time
from datetime import timedelta

from temporalio.client import WorkflowExecutionStatus

from control.launch import start_pipeline_run
from control.reconciler import RunReconciler
from devices.sim_records import sim_delivery_count
from domain.ids import pipeline_run_workflow_id, stage_run_workflow_id, target_run_workflow_id
from domain.schemas import DEFAULT_PIPELINE_TIMEOUT_SECONDS
from tests.builders import StageSpec, make_pipeline
from tests.workflows.helpers import (
    commands_of,
    result_of,
    run_row,
    stage_rows,
    target_rows,
    wait_for,
)
from worker import running_worker

OFFLINE = {"sim_behavior": "offline"}
WEEK = 7 * 24 * 3600


async def _run(env, engine, task_queue, enterprise_id, pipeline_id, ready):
    """Run until `ready(run_id)` holds in real time (devices answer in real time, outside the
    test server's clock), then let the server skip time to the end of the run."""
    async with running_worker(env.client, engine, task_queue=task_queue):
        run = await start_pipeline_run(env.client, engine, enterprise_id=enterprise_id,
                                       pipeline_id=pipeline_id, task_queue=task_queue,
                                       search_attributes=False)
        await wait_for(lambda: ready(run.id))
        started = time.monotonic()
        # Handles not made by start_workflow do not unlock time skipping on their own.
        async with env.time_skipping_unlocked():
            result = await result_of(env.client, run.id, timeout=120)
    return run, result, time.monotonic() - started


def _targets_settled(engine, run_id, expected: list[str]) -> bool:
    """The first stage's targets are in these statuses (in any order)."""
    stages = stage_rows(engine, run_id)
    return bool(stages) and sorted(
        t.status for t in target_rows(engine, stages[0].id)) == sorted(expected)


async def test_stage_times_out_after_seven_days_and_cancels_open_commands(
        time_skipping_env, sqlite_engine, task_queue):
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("canary", devices=[{}, OFFLINE, OFFLINE]),
        StageSpec("fleet", trigger="automatic", devices=[{}])])
    run, result, took = await _run(
        time_skipping_env, sqlite_engine, task_queue, enterprise_id, pipeline_id,
        lambda run_id: _targets_settled(sqlite_engine, run_id,
                                        ["success", "dispatched", "dispatched"]))
    assert result.status == "failure"
    canary, fleet = stage_rows(sqlite_engine, run.id)
    assert canary.status == "timeout"
    assert (canary.ended_at - canary.started_at).total_seconds() >= WEEK
    assert fleet.status == "cancelled"
    statuses = sorted(t.status for t in target_rows(sqlite_engine, canary.id))
    assert statuses == ["success", "timeout", "timeout"]
    commands = {c.device_id: c for c in commands_of(sqlite_engine, run.id)}
    offline_commands = [c for c in commands.values() if c.status != "success"]
    assert len(offline_commands) == 2
    assert all(c.status == "cancelled" and c.cancel_requested_at for c in offline_commands)
    assert all(sim_delivery_count(sqlite_engine, c.id) == 1 for c in commands.values())
    assert took < 60  # a week of workflow time in seconds of test time


async def test_pipeline_times_out_after_twenty_one_days_at_an_unpromoted_gate(
        time_skipping_env, sqlite_engine, task_queue):
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("canary", devices=[{}]), StageSpec("fleet", trigger="manual", devices=[{}])])
    run, result, _ = await _run(
        time_skipping_env, sqlite_engine, task_queue, enterprise_id, pipeline_id,
        lambda run_id: run_row(sqlite_engine, run_id).status == "waiting")
    assert result.status == "timeout"
    row = run_row(sqlite_engine, run.id)
    assert row.status == "timeout"
    assert (row.ended_at - row.started_at).total_seconds() >= DEFAULT_PIPELINE_TIMEOUT_SECONDS
    assert [s.status for s in stage_rows(sqlite_engine, run.id)] == ["success", "timeout"]


async def test_pipeline_timeout_ends_open_targets_timeout_and_cancels_their_commands(
        time_skipping_env, sqlite_engine, task_queue):
    enterprise_id, pipeline_id = make_pipeline(
        sqlite_engine, [StageSpec("canary", devices=[OFFLINE, OFFLINE])],
        timeout_seconds=3 * 24 * 3600)
    run, result, _ = await _run(
        time_skipping_env, sqlite_engine, task_queue, enterprise_id, pipeline_id,
        lambda run_id: _targets_settled(sqlite_engine, run_id, ["dispatched", "dispatched"]))
    assert result.status == "timeout"
    (canary,) = stage_rows(sqlite_engine, run.id)
    assert canary.status == "timeout"
    assert [t.status for t in target_rows(sqlite_engine, canary.id)] == ["timeout", "timeout"]
    assert {c.status for c in commands_of(sqlite_engine, run.id)} == {"cancelled"}


async def test_a_target_whose_stage_run_is_gone_is_closed_by_the_reconciler(
        time_skipping_env, sqlite_engine, task_queue):
    """Children are abandoned, so a target outlives a stage run terminated by hand, and it has
    no timer of its own (its stage's deadline stops it): the reconciler, finding the run's
    workflow closed, terminates the target, cancels its command and ends its row."""
    client = time_skipping_env.client
    enterprise_id, pipeline_id = make_pipeline(
        sqlite_engine, [StageSpec("canary", devices=[OFFLINE])])
    async with running_worker(client, sqlite_engine, task_queue=task_queue,
                              reconcile_interval=3600) as worker:
        run = await start_pipeline_run(client, sqlite_engine, enterprise_id=enterprise_id,
                                       pipeline_id=pipeline_id, task_queue=task_queue,
                                       search_attributes=False)
        await wait_for(lambda: _targets_settled(sqlite_engine, run.id, ["dispatched"]))
        (stage,) = stage_rows(sqlite_engine, run.id)
        (target,) = target_rows(sqlite_engine, stage.id)
        await client.get_workflow_handle(pipeline_run_workflow_id(run.id)).terminate("test")
        await client.get_workflow_handle(stage_run_workflow_id(stage.id)).terminate("test")
        handle = client.get_workflow_handle(target_run_workflow_id(target.id))
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        reconciler = RunReconciler(sqlite_engine, client, worker.gateway,
                                   start_grace=timedelta(0))
        assert await reconciler.reconcile_once() == [str(run.id)]
        assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
    (row,) = target_rows(sqlite_engine, stage.id)
    # A dispatched target whose command is cancelled ends `failure`, as everywhere.
    assert row.status == "failure" and "terminated in Temporal" in row.status_reason
    (command,) = commands_of(sqlite_engine, run.id)
    assert command.status == "cancelled"
