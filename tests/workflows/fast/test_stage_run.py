"""The stage run's own logic on fake activities: its window, a device's later operations after
a failure, and target runs sent again (by the retry_target update and by rollout retries)."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from activities import names as activity_names
from domain.retries import EARLIER_OPERATION_FAILED
from tests.workflows.fast.fake_activities import Closed, FakeRunStore, FakeStage
from tests.workflows.fast.fake_devices import FAILURE, SUCCESS, FakeFleet
from tests.workflows.fast.harness import (
    fast_workers,
    result_of,
    stage_handle,
    stage_state,
    start_run,
    until,
)
from workflows import names
from workflows.messages import TargetRetryRequest, TargetRetryResult

WINDOW = 3


async def test_the_window_keeps_at_most_its_size_in_flight_and_every_target_ends(
        temporal_client, task_queue):
    fleet = FakeFleet(temporal_client)
    devices = [fleet.device(held=True) for _ in range(7)]
    store = FakeRunStore(fleet, [FakeStage("fleet", devices)])
    (stage,) = store.stages
    async with fast_workers(temporal_client, task_queue, store):
        handle = await start_run(temporal_client, store, task_queue, window=WINDOW)
        await until(lambda: len(store.dispatches) == WINDOW, "the window filled")
        state = await stage_state(temporal_client, stage)
        assert (state.device_count, state.dispatched, state.in_flight) == (7, WINDOW, WINDOW)
        # Devices answer one at a time, oldest first: each answer lets one more target in.
        for released in range(len(devices)):
            started = min(released + WINDOW, len(devices))
            await until(lambda n=started: len(store.dispatches) == n,
                        f"{started} target runs started")
            assert len(store.in_flight) <= WINDOW
            oldest_open = list(fleet.commands.values())[released]
            fleet.release(oldest_open.device_id)
        result = await result_of(handle)
        stage_result = await result_of(stage_handle(temporal_client, stage))
    assert result.status == "success"
    assert store.max_in_flight == WINDOW
    assert sorted(t for t, _ in store.dispatches) == sorted(r.run_id
                                                            for r in store.targets(stage))
    assert [r.status for r in store.targets(stage)] == ["success"] * 7
    assert stage_result.status == "success" and stage_result.counts == {"success": 7}
    assert not store.in_flight


async def test_a_failed_first_operation_ends_the_devices_later_operations(
        temporal_client, task_queue):
    fleet = FakeFleet(temporal_client)
    broken, fine = fleet.device(FAILURE), fleet.device()
    store = FakeRunStore(fleet, [FakeStage("fleet", [broken, fine], operations=3),
                                 FakeStage("later", [fleet.device()])])
    stage, later = store.stages
    async with fast_workers(temporal_client, task_queue, store):
        result = await result_of(await start_run(temporal_client, store, task_queue))
        stage_result = await result_of(stage_handle(temporal_client, stage))
    assert result.status == "failure"
    assert stage_result.status == "failure"
    assert stage_result.counts == {"success": 3, "failure": 3}
    first, *rest = [store.target(stage, broken, op) for op in range(3)]
    assert first.status == "failure" and first.command_status == "failure"
    # The stage asked the store to close the later operations; they never ran.
    assert store.closed == [Closed(stage.run_id, "failure", EARLIER_OPERATION_FAILED,
                                   [row.run_id for row in rest])]
    for row in rest:
        assert (row.status, row.reason, row.command_id) == (
            "failure", EARLIER_OPERATION_FAILED, None)
    assert [c.target_run_id for c in fleet.sent_to(broken)] == [first.run_id]
    assert [store.target(stage, fine, op).status for op in range(3)] == ["success"] * 3
    assert store.status(later.run_id) == "cancelled"  # never started
    assert not fleet.sent_to(later.spec.devices[0])


async def test_retry_target_sends_a_failed_target_again_and_its_later_operation_resumes(
        temporal_client, task_queue):
    fleet = FakeFleet(temporal_client)
    broken, busy = fleet.device(FAILURE), fleet.device(held=True)  # busy keeps the stage open
    store = FakeRunStore(fleet, [FakeStage("fleet", [broken, busy], operations=2)])
    (stage,) = store.stages
    async with fast_workers(temporal_client, task_queue, store):
        handle = await start_run(temporal_client, store, task_queue)
        await until(lambda: getattr(store.find(stage, broken, 1), "status", "") == "failure",
                    "the failed device's later operation closed")
        install, reboot = store.target(stage, broken, 0), store.target(stage, broken, 1)
        stage_run = stage_handle(temporal_client, stage)
        # The store's refusal: the later operation waits for the earlier one.
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await stage_run.execute_update(
                names.UPDATE_RETRY_TARGET, TargetRetryRequest(reboot.run_id, broken, 1),
                result_type=TargetRetryResult)
        assert "Send that one again" in str(refused.value.cause)

        fleet.answer(broken, SUCCESS)
        sent = await stage_run.execute_update(
            names.UPDATE_RETRY_TARGET, TargetRetryRequest(install.run_id, broken, 0),
            result_type=TargetRetryResult)
        assert (sent.retry_of, sent.waiting) == (install.run_id, "")
        await until(lambda: store.counts(stage) == {"success": 2, "dispatched": 1,
                                                    "pending": 1},
                    "the retry and the resumed later operation succeeded")
        fleet.release(busy)
        result = await result_of(handle)
        stage_result = await result_of(stage_run)
    assert result.status == "success"
    assert stage_result.status == "success" and stage_result.counts == {"success": 4}
    for op, old in enumerate((install, reboot)):
        new = store.target(stage, broken, op, generation=1)
        assert (old.status, old.superseded_by) == ("failure", new.run_id)
        assert (new.status, new.retry_of) == ("success", old.run_id)
    assert sent.target_run_id == store.target(stage, broken, 0, generation=1).run_id
    assert {activity_names.RETRY_TARGET_RUN, activity_names.RESUME_TARGET_RUNS} <= set(store.calls)


async def test_rollout_retries_send_a_failed_command_again_within_its_target_run(
        temporal_client, task_queue):
    fleet = FakeFleet(temporal_client)
    flaky = fleet.device(FAILURE, SUCCESS)  # fails its first command only
    store = FakeRunStore(fleet, [FakeStage("fleet", [flaky], rollout={
        "retry_criteria": [{"failure_type": "FAILED", "number_of_retries": 1}]})])
    (stage,) = store.stages
    async with fast_workers(temporal_client, task_queue, store):
        result = await result_of(await start_run(temporal_client, store, task_queue))
    (row,) = store.targets(stage)
    assert result.status == "success"
    assert store.dispatches == [(row.run_id, 0), (row.run_id, 1)]
    assert [c.answered for c in fleet.sent_to(flaky)] == [FAILURE, SUCCESS]
    assert (row.status, row.command_status) == ("success", "success")
