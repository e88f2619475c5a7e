"""Timeouts of days on the time-skipping server, on fake activities: devices that never answer
leave only the durable timers to end the run."""

from __future__ import annotations

from datetime import timedelta

from domain.schemas import DEFAULT_STAGE_TIMEOUT_SECONDS
from tests.workflows.fast.fake_activities import FakeRunStore, FakeStage
from tests.workflows.fast.fake_devices import SILENT, SUCCESS, FakeFleet
from tests.workflows.fast.harness import fast_workers, result_of, start_run, until


async def test_a_stage_whose_devices_never_answer_ends_timeout_and_cancels_their_commands(
        time_skipping_env, task_queue):
    client = time_skipping_env.client
    fleet = FakeFleet(client)
    answering, *offline = fleet.device(), fleet.device(SILENT), fleet.device(SILENT)
    store = FakeRunStore(fleet, [FakeStage("canary", [answering, *offline]),
                                 FakeStage("fleet", [fleet.device()])])
    canary, later = store.stages
    async with fast_workers(client, task_queue, store):
        handle = await start_run(client, store, task_queue)
        # The server's clock stands still until a result is awaited: let devices answer first.
        await until(lambda: len(fleet.commands) == 3
                    and store.target(canary, answering, 0).status == "success",
                    "every command out and the answering device done")
        result = await result_of(handle)
    assert result.status == "failure"
    assert store.status(canary.run_id) == "timeout"
    assert store.status(later.run_id) == "cancelled"
    at = {e.status: e.at for e in store.statuses if e.run_id == canary.run_id}
    assert at["timeout"] - at["running"] >= timedelta(seconds=DEFAULT_STAGE_TIMEOUT_SECONDS)
    assert sorted(r.status for r in store.targets(canary)) == ["success", "timeout", "timeout"]
    silent = [c for c in fleet.commands.values() if c.device_id in offline]
    assert all(c.cancel_requested for c in silent)
    assert sorted(store.cancelled_commands) == sorted(c.command_id for c in silent)
    assert [c.answered for c in fleet.sent_to(answering)] == [SUCCESS]


async def test_a_run_left_at_an_unpromoted_gate_ends_timeout_at_its_deadline(
        time_skipping_env, task_queue):
    client = time_skipping_env.client
    fleet = FakeFleet(client)
    store = FakeRunStore(fleet, [FakeStage("canary", [fleet.device()]),
                                 FakeStage("fleet", [fleet.device()], trigger="manual")],
                         timeout_seconds=3 * 24 * 3600)
    async with fast_workers(client, task_queue, store):
        handle = await start_run(client, store, task_queue)
        await until(lambda: store.status(store.pipeline_run_id) == "waiting", "the run waits")
        result = await result_of(handle)
    assert result.status == "timeout"
    assert [store.status(s.run_id) for s in store.stages] == ["success", "timeout"]
    at = {e.status: e.at for e in store.statuses if e.run_id == store.pipeline_run_id}
    assert at["timeout"] - at["running"] >= timedelta(days=3)
