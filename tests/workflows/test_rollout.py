"""Rollout controls of a stage run at small N: rates, abort, retries, success threshold.

Rates are minutes long, so they run on the time-skipping test server, a minute at a time.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from control.launch import start_pipeline_run
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

FAIL = {"sim_behavior": "fail"}


async def _run(env, engine, task_queue, stage: StageSpec, window: int = 200):
    enterprise_id, pipeline_id = make_pipeline(engine, [stage])
    async with running_worker(env.client, engine, task_queue=task_queue):
        run = await start_pipeline_run(env.client, engine, enterprise_id=enterprise_id,
                                       pipeline_id=pipeline_id, task_queue=task_queue,
                                       stage_window=window)
        result = await result_of(env.client, run.id)
    (stage_row,) = stage_rows(engine, run.id)
    return run, result, stage_row, target_rows(engine, stage_row.id)


def _started(engine, run_id) -> tuple[int, bool]:
    """(target runs started so far, whether every started one has ended)."""
    stages = stage_rows(engine, run_id)
    targets = target_rows(engine, stages[0].id) if stages else []
    started = [t for t in targets if t.status != "pending"]
    return len(started), all(t.ended_at is not None for t in started)


async def _started_per_minute(env, engine, task_queue, stage: StageSpec) -> list[int]:
    """Targets started by the end of each minute of workflow time, until the run ends.

    Devices answer in real time, outside the test server's clock, so time is advanced by
    hand, a minute at a time, once what that minute started has settled.
    """
    enterprise_id, pipeline_id = make_pipeline(engine, [stage])
    counts: list[int] = []
    async with running_worker(env.client, engine, task_queue=task_queue):
        run = await start_pipeline_run(env.client, engine, enterprise_id=enterprise_id,
                                       pipeline_id=pipeline_id, task_queue=task_queue,
                                       search_attributes=False)
        while len(counts) < 10:
            await wait_for(lambda: _started(engine, run.id)[0] > 0
                           and _started(engine, run.id)[1])
            await asyncio.sleep(0.5)  # anything more this minute would have started by now
            counts.append(_started(engine, run.id)[0])
            if counts[-1] == len(stage.devices):
                break
            await env.sleep(timedelta(seconds=61))
        await wait_for(lambda: run_row(engine, run.id).status == "success")
    return counts


async def test_constant_rate_dispatches_at_most_maximum_per_minute(
        time_skipping_env, sqlite_engine, task_queue):
    counts = await _started_per_minute(
        time_skipping_env, sqlite_engine, task_queue,
        StageSpec("fleet", devices=[{}] * 7, rollout={"maximum_per_minute": 2}))
    assert counts == [2, 4, 6, 7]


async def test_exponential_rate_grows_with_notified_devices(
        time_skipping_env, sqlite_engine, task_queue):
    rollout = {"exponential_rate": {"base_rate_per_minute": 1, "increment_factor": 2,
                                    "rate_increase_criteria": {"number_of_notified_things": 2}}}
    counts = await _started_per_minute(
        time_skipping_env, sqlite_engine, task_queue,
        StageSpec("fleet", devices=[{}] * 7, rollout=rollout))
    # 1 a minute until two were notified, then 2, then 4 once four more were.
    assert counts == [1, 3, 7]


async def test_abort_criteria_cancel_remaining_targets_and_fail_the_stage(
        temporal_env, sqlite_engine, task_queue):
    rollout = {"abort_criteria": [{"failure_type": "FAILED", "threshold_percentage": 50,
                                   "min_number_of_executed_things": 2}]}
    _, result, stage, targets = await _run(
        temporal_env, sqlite_engine, task_queue,
        StageSpec("fleet", devices=[FAIL, FAIL] + [{}] * 6, rollout=rollout), window=1)
    assert result.status == "failure"
    assert stage.status == "failure" and "abort criteria met" in stage.status_reason
    statuses = Counter(t.status for t in targets)
    assert statuses["failure"] == 2 and statuses["cancelled"] == 6


async def test_failed_targets_are_retried_with_new_commands(
        temporal_env, sqlite_engine, task_queue):
    rollout = {"retry_criteria": [{"failure_type": "FAILED", "number_of_retries": 2}]}
    run, result, _, targets = await _run(
        temporal_env, sqlite_engine, task_queue,
        StageSpec("fleet", devices=[FAIL, {}], rollout=rollout))
    assert result.status == "failure"
    per_target = Counter(c.target_run_id for c in commands_of(sqlite_engine, run.id))
    failing = next(t for t in targets if t.status == "failure")
    passing = next(t for t in targets if t.status == "success")
    assert per_target[failing.id] == 3 and per_target[passing.id] == 1
    assert failing.attempt == 2


async def test_success_threshold_lets_a_stage_succeed_with_some_failures(
        temporal_env, sqlite_engine, task_queue):
    rollout = {"success_threshold_percentage": 75}
    _, result, stage, targets = await _run(
        temporal_env, sqlite_engine, task_queue,
        StageSpec("fleet", devices=[FAIL, {}, {}, {}], rollout=rollout))
    assert Counter(t.status for t in targets) == {"success": 3, "failure": 1}
    assert stage.status == "success" and result.status == "success"
