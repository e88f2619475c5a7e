"""Replay: histories of real runs must replay on today's workflow code without
non-determinism, so a change that would break running workflows fails here first.

Two sets: histories made fresh by this test (gate, promotion, failure cascade, cancel with
targets in flight), and histories committed under histories/ by earlier versions.
Set FLEETPIPE_CAPTURE_HISTORIES=1 to (re)write the committed set from this run.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from control.launch import start_pipeline_run
from domain.ids import pipeline_run_workflow_id
from tests.builders import INSTALL, REBOOT, StageSpec, make_pipeline
from tests.workflows.helpers import result_of, run_row, stage_rows, wait_for
from worker import WORKFLOWS, running_worker
from workflows import names
from workflows.converter import DATA_CONVERTER
from workflows.messages import RunState, RunStatusRequest, StageStatusRequest

HISTORIES = Path(__file__).parent / "histories"


async def _make_runs(client, engine, task_queue) -> int:
    """Run the scenarios; returns how many workflows they made."""
    gate_id = make_pipeline(engine, [
        StageSpec("canary", devices=[{}, {}]),
        StageSpec("fleet", trigger="manual", devices=[{}, {"sim_behavior": "fail"}],
                  operations=[INSTALL, REBOOT])], name="gate")
    slow_id = make_pipeline(engine, [StageSpec("slow", devices=[{"sim_latency_ms": "2000"}] * 3)],
                            name="slow")
    async with running_worker(client, engine, task_queue=task_queue):
        gate = await start_pipeline_run(client, engine, enterprise_id=gate_id[0],
                                        pipeline_id=gate_id[1], task_queue=task_queue)
        slow = await start_pipeline_run(client, engine, enterprise_id=slow_id[0],
                                        pipeline_id=slow_id[1], task_queue=task_queue,
                                        stage_window=2)
        await wait_for(lambda: run_row(engine, gate.id).status == "waiting")
        fleet = stage_rows(engine, gate.id)[1]
        await client.get_workflow_handle(pipeline_run_workflow_id(gate.id)).execute_update(
            names.UPDATE_SET_STAGE_STATUS, StageStatusRequest(str(fleet.id), "queued"),
            result_type=RunState)
        await wait_for(lambda: run_row(engine, slow.id).status == "running")
        await asyncio.sleep(0.5)
        await client.get_workflow_handle(pipeline_run_workflow_id(slow.id)).execute_update(
            names.UPDATE_SET_RUN_STATUS, RunStatusRequest("cancelled"), result_type=RunState)
        assert (await result_of(client, gate.id)).status == "failure"
        assert (await result_of(client, slow.id)).status == "cancelled"
    # gate: pipeline, 2 stages, 2 + 4 targets (one skipped: failed earlier op); slow: 1 + 1 + 2
    return 1 + 2 + 2 + 3 + 1 + 1 + 2


async def _fetch_histories(client, task_queue: str, expected: int) -> list[WorkflowHistory]:
    targets = names.targets_task_queue(task_queue)
    query = (f'(TaskQueue = "{task_queue}" OR TaskQueue = "{targets}") '
             'AND ExecutionStatus != "Running"')
    for _ in range(100):  # visibility is eventually consistent
        found = [w async for w in client.list_workflows(query)]
        if len(found) >= expected:
            break
        await asyncio.sleep(0.2)
    return [await client.get_workflow_handle(w.id, run_id=w.run_id).fetch_history()
            for w in found]


async def test_histories_of_real_runs_replay_without_nondeterminism(
        temporal_client, sqlite_engine, task_queue):
    expected = await _make_runs(temporal_client, sqlite_engine, task_queue)
    histories = await _fetch_histories(temporal_client, task_queue, expected)
    assert len(histories) >= expected
    kinds = {h.events[0].workflow_execution_started_event_attributes.workflow_type.name
             for h in histories}
    assert kinds == {names.PIPELINE_RUN_WORKFLOW, names.STAGE_RUN_WORKFLOW,
                     names.TARGET_RUN_WORKFLOW}
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    for history in histories:
        await replayer.replay_workflow(history)  # raises on any non-determinism
    if os.environ.get("FLEETPIPE_CAPTURE_HISTORIES") == "1":
        HISTORIES.mkdir(exist_ok=True)
        for history in histories:
            kind = history.events[0].workflow_execution_started_event_attributes
            name = f"{kind.workflow_type.name}-{history.workflow_id[-12:]}.json"
            (HISTORIES / name).write_text(json.dumps(
                {"workflow_id": history.workflow_id, "history": json.loads(history.to_json())}))


async def test_committed_histories_still_replay():
    files = sorted(HISTORIES.glob("*.json"))
    assert files, "no committed histories: run with FLEETPIPE_CAPTURE_HISTORIES=1 once"
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    for path in files:
        saved = json.loads(path.read_text())
        await replayer.replay_workflow(
            WorkflowHistory.from_json(saved["workflow_id"], saved["history"]))
