"""A target run's result is what the store holds: the command it ended with, even when its
first workflow task was lost after the dispatch ran (the device's events then reach the new
task before the dispatch it runs again has returned)."""

from __future__ import annotations

from domain.ids import target_run_workflow_id
from tests.workflows.fast.fake_activities import FakeRunStore, FakeStage
from tests.workflows.fast.fake_devices import FAILURE, FakeFleet
from tests.workflows.fast.harness import fast_workers, result_of, stage_handle, start_run
from workflows.messages import TargetRunResult


async def test_a_target_run_ended_in_a_lost_task_reports_the_command_it_ended_with(
        temporal_client, task_queue):
    fleet = FakeFleet(temporal_client)
    lost_ok, lost_failed, plain = fleet.device(), fleet.device(FAILURE), fleet.device()
    store = FakeRunStore(fleet, [FakeStage("fleet", [lost_ok, lost_failed, plain])])
    store.lose_first_task(lost_ok)
    store.lose_first_task(lost_failed)
    (stage,) = store.stages
    async with fast_workers(temporal_client, task_queue, store):
        handle = await start_run(temporal_client, store, task_queue)
        await result_of(handle)
        stage_result = await result_of(stage_handle(temporal_client, stage))
        results = {}
        for row in store.targets(stage):
            target = temporal_client.get_workflow_handle(
                target_run_workflow_id(row.run_id), result_type=TargetRunResult)
            results[row.device_id] = await result_of(target)
    for row in store.targets(stage):
        result = results[row.device_id]
        assert row.command_id is not None
        assert (result.status, result.command_id, result.command_status) == (
            row.status, row.command_id, row.command_status)
    assert results[lost_ok].status == "success" and results[lost_ok].failure_type == ""
    assert (results[lost_failed].status, results[lost_failed].failure_type) == ("failure",
                                                                                "FAILED")
    # Each device was sent its command once, and the stage counted every target run once.
    assert sorted(t for t, _ in store.dispatches) == sorted(r.run_id
                                                            for r in store.targets(stage))
    assert stage_result.counts == {"success": 2, "failure": 1}
