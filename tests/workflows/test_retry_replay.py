"""A retry's workflows (a stage carried over whole, a stage carrying target runs over, a gate
released by the retry, a promote that records who asked) replay without non-determinism, and
leave the rows the plan says: on the real dev server, with a real worker and store."""

from __future__ import annotations

from temporalio.worker import Replayer

from control.launch import start_pipeline_run, start_run_workflow
from domain.ids import pipeline_run_workflow_id, stage_run_workflow_id
from domain.retry_modes import RetryMode
from store.db import transaction
from store.definitions.devices import Device
from store.runs.retry_plans import create_retry_run
from tests.builders import INSTALL, REBOOT, StageSpec, make_pipeline
from tests.workflows.helpers import result_of, run_row, stage_rows, target_rows, wait_for
from worker import WORKFLOWS, running_worker
from workflows import names
from workflows.converter import DATA_CONVERTER
from workflows.messages import RunState, StageStatusRequest


async def test_a_retry_carries_over_and_its_histories_replay(
        temporal_client, sqlite_engine, task_queue):
    client, engine = temporal_client, sqlite_engine
    enterprise_id, pipeline_id = make_pipeline(engine, [
        StageSpec("canary", devices=[{}]),
        StageSpec("fleet", trigger="manual", devices=[{}, {"sim_behavior": "fail"}],
                  operations=[INSTALL, REBOOT])], name="retried")
    async with running_worker(client, engine, task_queue=task_queue):
        first = await start_pipeline_run(client, engine, enterprise_id=enterprise_id,
                                         pipeline_id=pipeline_id, task_queue=task_queue)
        await wait_for(lambda: run_row(engine, first.id).status == "waiting")
        fleet = stage_rows(engine, first.id)[1]
        await client.get_workflow_handle(pipeline_run_workflow_id(first.id)).execute_update(
            names.UPDATE_SET_STAGE_STATUS,
            StageStatusRequest(str(fleet.id), "queued", by="key-1"), result_type=RunState)
        assert (await result_of(client, first.id)).status == "failure"
        assert stage_rows(engine, first.id)[1].promoted_by == "key-1"

        failing = target_rows(engine, fleet.id)[-1].target_id
        with transaction(engine) as session:
            device = session.get(Device, failing)
            assert device is not None
            device.attributes = {"sim_behavior": "succeed"}
            session.add(device)
        retry = create_retry_run(engine, enterprise_id, first.id, RetryMode.FROM_FAILED, None,
                                 requested_by="key-2")
        await start_run_workflow(client, engine, retry, task_queue=task_queue)
        assert (await result_of(client, retry.id)).status == "success"

    canary, retried_fleet = stage_rows(engine, retry.id)
    assert (canary.carry, canary.status) == ("stage", "success")
    assert (retried_fleet.carry, retried_fleet.promoted_by) == ("targets", "key-2")
    rows = target_rows(engine, retried_fleet.id)
    assert [(r.carried_over_from is not None, r.command_id is not None) for r in rows] == [
        (True, False), (True, False), (False, True), (False, True)]
    assert {r.status for r in rows} == {"success"}

    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    for workflow_id in (pipeline_run_workflow_id(retry.id),
                        stage_run_workflow_id(retried_fleet.id),
                        pipeline_run_workflow_id(first.id)):
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        await replayer.replay_workflow(history)  # raises on any non-determinism
