"""The fault drill, small: a few dozen devices, the real worker SIGKILLed a few times, the
Temporal dev server killed and restarted once (an outage well inside the simulated fleet's
delivery retries), the API killed once, then every check of the full drill (bench/drill.py,
checks in bench/faults/checks.py). And the checks themselves can fail: each one, shown a run
with that promise broken, says so."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

from sqlalchemy import insert, update
from sqlmodel import col

from bench.faults.checks import Verdict, check_replay, check_run
from bench.faults.drill import DrillConfig, run_drill
from control.launch import start_pipeline_run
from devices.sim_records import SimDelivery
from domain.ids import command_id, pipeline_run_workflow_id
from store.db import transaction
from store.runs.commands import Command
from store.runs.tables import TargetRun
from store.types import utcnow
from tests.builders import StageSpec, make_pipeline
from tests.workflows.helpers import result_of, stage_rows, target_rows
from tests.workflows.test_replay_negative import PipelineRunWithExtraTimer
from worker import WORKFLOWS, running_worker
from workflows.pipeline_run import PipelineRunWorkflow

# Every device answers after 3 s and only two are in flight, so the run lasts long enough
# (a minute or two here) for five faults to land while it moves, even on a loaded machine.
SMALL = DrillConfig(devices=40, window=2, slow_every=1, slow_ms=3000, worker_kills=3,
                    api_kills=1, outages_s=(5.0,), stall_timeout_s=300.0,
                    settle_timeout_s=300.0)
HANG_GUARD_S = 1200.0


def _log(*parts: object) -> None:
    print("[drill]", *parts, file=sys.stderr, flush=True)


async def test_small_drill_loses_nothing_sends_nothing_twice_and_every_history_replays(
        tmp_path: Path):
    report = await asyncio.wait_for(run_drill(SMALL, tmp_path, _log), HANG_GUARD_S)
    verdict = report.verdict
    assert verdict is not None
    seen = f"{report.line()}\n{dict(verdict.examples)}\nproblems: {report.problems}"
    # Every fault landed while the run was moving.
    assert not report.problems, seen
    assert (report.worker_kills, report.api_kills, len(report.outages_s)) == (3, 1, 1), seen
    assert verdict.target_rows == verdict.expected_targets == 40, seen
    assert verdict.all_terminal and verdict.run_status == "success", seen
    assert verdict.lost == 0, seen
    assert verdict.duplicates == 0, seen
    assert verdict.not_success == 0, seen
    assert verdict.result_mismatches == 0 and verdict.workflows_checked == 42, seen
    assert verdict.replay_failures == 0 and verdict.histories_replayed >= 42, seen
    assert verdict.passed and report.passed, seen


async def test_each_check_fails_on_a_run_that_broke_its_promise(
        temporal_client, sqlite_engine, task_queue):
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("fleet", devices=[{}, {}, {}])])
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        assert (await result_of(temporal_client, run.id)).status == "success"

    async def check(devices: int = 3) -> Verdict:
        return await check_run(sqlite_engine, temporal_client, run_id=str(run.id),
                               task_queue=task_queue, devices=devices, operations=1)

    clean = await check()
    assert clean.passed, dict(clean.examples)
    assert (clean.workflows_checked, clean.histories_replayed) == (5, 5)

    # Lost: the fleet had a fourth device, and no target run was made for it.
    lost = await check(devices=4)
    assert lost.lost == 1 and not lost.all_terminal and not lost.passed

    (stage,) = stage_rows(sqlite_engine, run.id)
    first, second, _ = target_rows(sqlite_engine, stage.id)
    # Duplicates: the device of one target run got a command no store row names, and another
    # target run made (and delivered) a command for an attempt it never had.
    extra = command_id(second.id, 1)
    with transaction(sqlite_engine) as session:
        session.execute(insert(SimDelivery), [
            {"command_id": uuid.uuid4(), "device_id": first.target_id, "gateway": "simulated",
             "at": utcnow()},
            {"command_id": extra, "device_id": second.target_id, "gateway": "simulated",
             "at": utcnow()}])
        session.add(Command(id=extra, enterprise_id=enterprise_id, target_run_id=second.id,
                            device_id=second.target_id, operation_type="INSTALL"))
    duplicated = await check()
    # first's device: 2 deliveries for 1 attempt; second: a command beyond its attempt, and
    # its device 2 deliveries for 1 attempt.
    assert duplicated.duplicates == 3 and not duplicated.passed, dict(duplicated.examples)

    # A result that disagrees with its row, and a row that is not terminal.
    with transaction(sqlite_engine) as session:
        session.execute(update(TargetRun).where(col(TargetRun.id) == first.id)
                        .values(command_status="failure"))
        session.execute(update(TargetRun).where(col(TargetRun.id) == second.id)
                        .values(status="running"))
    broken = await check()
    assert broken.result_mismatches == 2, dict(broken.examples)
    assert broken.targets_terminal == 2 and not broken.all_terminal and not broken.passed

    # Replay: the same histories on a workflow that changed its commands fail to replay.
    handle = temporal_client.get_workflow_handle(pipeline_run_workflow_id(run.id))
    history = await handle.fetch_history()
    changed = Verdict(expected_targets=3)
    await check_replay(changed, [history], workflows=[
        PipelineRunWithExtraTimer if w is PipelineRunWorkflow else w for w in WORKFLOWS])
    assert (changed.histories_replayed, changed.replay_failures) == (1, 1)
    assert "Nondeterminism" in changed.examples["replay_failures"][0]
