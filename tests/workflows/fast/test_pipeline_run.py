"""The pipeline run's own logic on fake activities: cancel, and a manual gate."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from activities import names as activity_names
from tests.workflows.fast.fake_activities import FakeRunStore, FakeStage
from tests.workflows.fast.fake_devices import SILENT, FakeFleet
from tests.workflows.fast.harness import fast_workers, result_of, stage_handle, start_run, until
from workflows import names
from workflows.messages import RunState, RunStatusRequest, StageStatusRequest


async def test_cancel_stops_the_stage_and_its_targets_and_cancels_dispatched_commands(
        temporal_client, task_queue):
    fleet = FakeFleet(temporal_client)
    store = FakeRunStore(fleet, [FakeStage("fleet", [fleet.device(SILENT) for _ in range(4)]),
                                 FakeStage("later", [fleet.device()])])
    stage, later = store.stages
    async with fast_workers(temporal_client, task_queue, store):
        handle = await start_run(temporal_client, store, task_queue, window=2)
        await until(lambda: len(fleet.commands) == 2, "two commands out")
        state = await handle.execute_update(names.UPDATE_SET_RUN_STATUS,
                                            RunStatusRequest("cancelled"), result_type=RunState)
        result = await result_of(handle)
        stage_result = await result_of(stage_handle(temporal_client, stage))
    assert state.status == "cancelled" and result.status == "cancelled"
    assert stage_result.status == "cancelled"
    assert store.status(later.run_id) == "cancelled"
    rows = store.targets(stage)
    assert sorted(r.status for r in rows) == ["cancelled", "cancelled", "failure", "failure"]
    dispatched = [r for r in rows if r.command_id is not None]
    assert sorted(r.run_id for r in dispatched) == sorted(t for t, _ in store.dispatches)
    assert {(r.status, r.command_status) for r in dispatched} == {("failure", "cancelled")}
    assert sorted(store.cancelled_commands) == sorted(fleet.commands)
    assert all(c.cancel_requested for c in fleet.commands.values())
    assert not store.in_flight


async def test_the_run_waits_at_a_manual_stage_until_it_is_promoted(temporal_client, task_queue):
    fleet = FakeFleet(temporal_client)
    store = FakeRunStore(fleet, [FakeStage("canary", [fleet.device()]),
                                 FakeStage("fleet", [fleet.device()], trigger="manual")])
    canary, gated = store.stages
    async with fast_workers(temporal_client, task_queue, store):
        handle = await start_run(temporal_client, store, task_queue)
        await until(lambda: store.status(store.pipeline_run_id) == "waiting", "the run waits")
        state = await handle.query(names.QUERY_RUN_STATE, result_type=RunState)
        assert state.waiting_for_stage_run_id == gated.run_id
        assert (store.status(canary.run_id), store.status(gated.run_id)) == ("success",
                                                                              "pending")
        assert store.calls.count(activity_names.MATERIALIZE_TARGETS) == 1  # the canary's only
        # Only the stage at the gate can be promoted.
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(names.UPDATE_SET_STAGE_STATUS,
                                        StageStatusRequest(canary.run_id, "queued"),
                                        result_type=RunState)
        state = await handle.execute_update(names.UPDATE_SET_STAGE_STATUS,
                                            StageStatusRequest(gated.run_id, "queued"),
                                            result_type=RunState)
        assert state.waiting_for_stage_run_id is None
        result = await result_of(handle)
    assert result.status == "success"
    assert store.status(gated.run_id) == "success"
    assert len(fleet.sent_to(gated.spec.devices[0])) == 1
    pipeline = [e.status for e in store.statuses if e.run_id == store.pipeline_run_id]
    assert pipeline == ["processing", "running", "waiting", "running", "complete", "success"]
