"""The simulated fleet against a real store, with a sink that records like the relay does."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from devices.sim_records import sim_delivery_count
from devices.simulated import (
    CANCEL_REASON,
    FAILURE_REASON,
    SimulatedFleet,
    Step,
    plan_walk,
    remaining_steps,
)
from domain.commands import CommandEvent
from tests.builders import Rows
from tests.devices.conftest import RecordingSink, eventually

WALK = ["queued", "initiated", "acknowledged", "inprogress"]


def shape(events: list[CommandEvent]) -> list[tuple[str, int | None, str, dict]]:
    """Everything about an event except its wall-clock time."""
    return [(e.status, e.sequence, e.reason, e.output) for e in events]


@pytest.fixture
async def sink(sqlite_rows: Rows) -> RecordingSink:
    return RecordingSink(sqlite_rows.engine)


@pytest.fixture
async def fleet(sqlite_rows: Rows, sink: RecordingSink):
    fleet = SimulatedFleet(sqlite_rows.engine, sink, seed=7, retry_base_s=0.01)
    await fleet.start()
    yield fleet
    await fleet.stop()


async def test_a_device_that_answers_at_once_reports_everything_in_one_delivery(
    sqlite_rows: Rows, sink: RecordingSink, fleet: SimulatedFleet
) -> None:
    command = sqlite_rows.command(sqlite_rows.device())
    await fleet.send(command)
    await eventually(lambda: sink.calls)
    await asyncio.sleep(0.05)  # nothing else follows
    [events] = sink.for_command(command.command_id)
    assert [(e.status, e.sequence) for e in events] == [
        ("queued", 0), ("initiated", 1), ("acknowledged", 2), ("inprogress", 3), ("success", 4)]
    assert events[-1].output["result"] == "ok"
    assert all(e.at_epoch > 0 for e in events)
    assert sqlite_rows.row(command.command_id).status == "success"


async def test_a_failing_device_ends_in_failure_with_a_reason_and_output(
    sqlite_rows: Rows, sink: RecordingSink, fleet: SimulatedFleet
) -> None:
    command = sqlite_rows.command(sqlite_rows.device(sim_behavior="fail"))
    await fleet.send(command)
    await eventually(lambda: sqlite_rows.row(command.command_id).status == "failure")
    assert sink.statuses(command.command_id) == [*WALK, "failure"]
    last = sink.for_command(command.command_id)[-1][-1]
    assert last.reason == FAILURE_REASON and last.output["error"] == FAILURE_REASON
    assert sqlite_rows.row(command.command_id).reason == FAILURE_REASON


async def test_an_offline_device_is_queued_and_then_silent_until_cancelled(
    sqlite_rows: Rows, sink: RecordingSink, fleet: SimulatedFleet
) -> None:
    command = sqlite_rows.command(sqlite_rows.device(sim_behavior="offline"))
    await fleet.send(command)
    await eventually(lambda: sink.calls)
    await asyncio.sleep(0.2)
    assert sink.statuses(command.command_id) == ["queued"]
    await fleet.cancel(command.command_id)
    assert shape(sink.for_command(command.command_id)[-1]) == [
        ("cancelled", 1, CANCEL_REASON, {})]
    assert sqlite_rows.row(command.command_id).status == "cancelled"
    await fleet.cancel(command.command_id)  # already ended: nothing more
    assert len(sink.calls) == 2


async def test_latency_spreads_the_events_over_the_device_time(
    sqlite_rows: Rows, sink: RecordingSink, fleet: SimulatedFleet
) -> None:
    command = sqlite_rows.command(sqlite_rows.device(sim_latency_ms="400"))
    began = time.monotonic()
    await fleet.send(command)
    await eventually(lambda: sqlite_rows.row(command.command_id).status == "success")
    batches = [[e.status for e in events] for _, events, _ in sink.calls]
    times = [at - began for *_, at in sink.calls]
    assert batches == [["queued"], WALK[1:], ["success"]]
    assert times[0] < times[1] < times[2]  # queued first, the end last
    assert times[2] >= 0.4  # the end only after the device's whole time
    assert [e.sequence for _, events, _ in sink.calls for e in events] == [0, 1, 2, 3, 4]


async def test_cancel_stops_a_running_walk(
    sqlite_rows: Rows, sink: RecordingSink, fleet: SimulatedFleet
) -> None:
    command = sqlite_rows.command(sqlite_rows.device(sim_latency_ms="300"))
    await fleet.send(command)
    await eventually(lambda: sink.calls)
    await fleet.cancel(command.command_id)
    await asyncio.sleep(0.5)  # past the device's latency: no success arrives
    statuses = sink.statuses(command.command_id)
    assert statuses[0] == "queued" and statuses[-1] == "cancelled"
    assert "success" not in statuses
    assert sqlite_rows.row(command.command_id).status == "cancelled"


async def test_send_is_idempotent_by_command_id(
    sqlite_rows: Rows, sink: RecordingSink, fleet: SimulatedFleet
) -> None:
    command = sqlite_rows.command(sqlite_rows.device())
    await asyncio.gather(fleet.send(command), fleet.send(command), fleet.send(command))
    await eventually(lambda: sqlite_rows.row(command.command_id).status == "success")
    await fleet.send(command)
    await asyncio.sleep(0.05)
    assert fleet.send_calls[command.command_id] == 4
    assert fleet.deliveries[command.command_id] == 1
    assert len(sink.calls) == 1
    assert sim_delivery_count(sqlite_rows.engine, command.command_id) == 1


def test_the_plan_is_deterministic_per_seed() -> None:
    slow = {"sim_latency_ms": "1000"}
    ids = [f"cmd-{i}" for i in range(5)]
    assert [plan_walk(i, slow, seed=3) for i in ids] == [plan_walk(i, slow, seed=3) for i in ids]
    assert [plan_walk(i, slow, seed=3) for i in ids] != [plan_walk(i, slow, seed=4) for i in ids]
    plan = plan_walk("cmd-0", slow, seed=3)
    assert [s.statuses for s in plan] == [("queued",), tuple(WALK[1:]), ("success",)]
    assert plan[0].at_s == 0 and 0 < plan[1].at_s < 1 and plan[2].at_s == 1.0
    assert plan_walk("x", {}) == [Step(0.0, (*WALK, "success"))]
    assert plan_walk("x", {"sim_behavior": "offline", "sim_latency_ms": "5"}) == [
        Step(0.0, ("queued",))]


def test_a_resumed_plan_only_goes_forwards() -> None:
    plan = plan_walk("c", {"sim_latency_ms": "1000"}, seed=1)
    left = remaining_steps(plan, "initiated", elapsed_s=0.95)
    assert left == [Step(0.0, ("acknowledged", "inprogress")), Step(1.0 - 0.95, ("success",))]
    assert remaining_steps(plan, "success", 0) == []


async def test_two_fleets_with_one_seed_report_the_same_events(sqlite_rows: Rows) -> None:
    device = sqlite_rows.device(sim_behavior="fail", sim_latency_ms="50")
    runs = []
    for _ in range(2):
        command = sqlite_rows.command(device)
        sink = RecordingSink()
        fleet = SimulatedFleet(sqlite_rows.engine, sink, seed=11)
        await fleet.send(command)

        def three_deliveries(sink: RecordingSink = sink) -> bool:
            return len(sink.calls) == 3

        await eventually(three_deliveries)
        await fleet.stop()
        runs.append([shape(events) for events in sink.for_command(command.command_id)])
    assert runs[0] == runs[1]


async def test_a_new_fleet_resumes_open_commands_without_delivering_again(rows: Rows) -> None:
    # Long enough that a loaded machine still resumes it before its middle steps are due.
    slow = rows.command(rows.device(sim_latency_ms="3000"))
    offline = rows.command(rows.device(sim_behavior="offline"))
    first_sink = RecordingSink(rows.engine)
    first = SimulatedFleet(rows.engine, first_sink, seed=5)
    await first.send(slow)
    await first.send(offline)
    await eventually(lambda: rows.row(slow.command_id).status == "queued"
                     and rows.row(offline.command_id).status == "queued")
    await first.stop()  # the worker dies

    sink = RecordingSink(rows.engine)
    second = SimulatedFleet(rows.engine, sink, seed=5)
    await second.start()
    try:
        await second.send(slow)  # the activity retried after the crash
        await eventually(lambda: rows.row(slow.command_id).status == "success", timeout=30)
        await asyncio.sleep(0.05)
        assert [(e.status, e.sequence) for events in sink.for_command(slow.command_id)
                for e in events] == [("initiated", 1), ("acknowledged", 2), ("inprogress", 3),
                                     ("success", 4)]
        assert sink.for_command(offline.command_id) == []  # offline stays silent
        await second.cancel(offline.command_id)  # and can still be cancelled
        assert rows.row(offline.command_id).status == "cancelled"
    finally:
        await second.stop()
    assert second.deliveries == {} and first.deliveries[slow.command_id] == 1
    assert sim_delivery_count(rows.engine, slow.command_id) == 1
    assert sim_delivery_count(rows.engine, offline.command_id) == 1


async def test_a_send_after_a_restart_continues_the_command(sqlite_rows: Rows) -> None:
    command = sqlite_rows.command(sqlite_rows.device(sim_latency_ms="300"))
    first_sink = RecordingSink(sqlite_rows.engine)
    first = SimulatedFleet(sqlite_rows.engine, first_sink)
    await first.send(command)
    await eventually(lambda: sqlite_rows.row(command.command_id).status == "queued")
    await first.stop()
    sink = RecordingSink(sqlite_rows.engine)
    second = SimulatedFleet(sqlite_rows.engine, sink)  # not started: the send alone resumes
    await second.send(command)
    await eventually(lambda: sqlite_rows.row(command.command_id).status == "success")
    await second.stop()
    assert sink.statuses(command.command_id) == [*WALK[1:], "success"]
    assert second.deliveries[command.command_id] == 0


class FlakySink(RecordingSink):
    """Fails its first `failures` deliveries, like Temporal being briefly unavailable."""

    def __init__(self, engine, failures: int) -> None:
        super().__init__(engine)
        self.failures = failures
        self.attempts = 0

    async def deliver(self, command_id: str, events: list[CommandEvent]) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError("temporal unavailable")
        await super().deliver(command_id, events)


async def test_failed_deliveries_are_retried_with_backoff(sqlite_rows: Rows) -> None:
    command = sqlite_rows.command(sqlite_rows.device())
    sink = FlakySink(sqlite_rows.engine, failures=2)
    fleet = SimulatedFleet(sqlite_rows.engine, sink, retry_base_s=0.01)
    await fleet.send(command)
    await eventually(lambda: sqlite_rows.row(command.command_id).status == "success")
    await fleet.stop()
    assert sink.attempts == 3


async def test_delivery_never_gives_up_while_the_command_is_open(sqlite_rows: Rows) -> None:
    command = sqlite_rows.command(sqlite_rows.device())
    sink = FlakySink(sqlite_rows.engine, failures=30)  # far past the old bound of 8 attempts
    fleet = SimulatedFleet(sqlite_rows.engine, sink, retry_base_s=0.001, retry_max_s=0.01)
    await fleet.send(command)
    await eventually(lambda: sqlite_rows.row(command.command_id).status == "success")
    await fleet.stop()
    assert sink.attempts == 31


async def test_delivery_stops_once_the_store_says_the_command_ended(
    sqlite_rows: Rows, caplog: pytest.LogCaptureFixture
) -> None:
    command = sqlite_rows.command(sqlite_rows.device())
    sink = FlakySink(sqlite_rows.engine, failures=10_000)
    fleet = SimulatedFleet(sqlite_rows.engine, sink, retry_base_s=0.001, retry_max_s=0.01)
    with caplog.at_level(logging.INFO, logger="devices.simulated"):
        await fleet.send(command)
        await eventually(lambda: sink.attempts >= 3)
        sqlite_rows.end_command(command.command_id, "cancelled")
        await eventually(lambda: "no longer delivered" in caplog.text)
    attempts = sink.attempts
    await asyncio.sleep(0.1)
    await fleet.stop()
    assert sink.attempts == attempts


async def test_an_unknown_command_is_not_retried(sqlite_rows: Rows) -> None:
    command = sqlite_rows.command(sqlite_rows.device())
    command.command_id = "00000000-0000-0000-0000-000000000000"  # no such row
    sink = FlakySink(sqlite_rows.engine, failures=0)
    fleet = SimulatedFleet(sqlite_rows.engine, sink, retry_base_s=0.01)
    await fleet.send(command)
    await eventually(lambda: sink.attempts == 1)
    await asyncio.sleep(0.1)
    await fleet.stop()
    assert sink.attempts == 1


async def test_stop_cancels_walks_and_nothing_more_is_reported(sqlite_rows: Rows) -> None:
    command = sqlite_rows.command(sqlite_rows.device(sim_latency_ms="200"))
    sink = RecordingSink(sqlite_rows.engine)
    fleet = SimulatedFleet(sqlite_rows.engine, sink)
    await fleet.send(command)
    await eventually(lambda: sink.calls)
    await fleet.stop()
    await asyncio.sleep(0.4)
    assert sink.statuses(command.command_id) == ["queued"]


async def test_a_started_fleet_makes_its_own_table(sqlite_engine) -> None:
    """The production schema has no sim_delivery table; the fleet creates it when it starts."""
    from sqlalchemy import inspect

    assert "sim_delivery" not in inspect(sqlite_engine).get_table_names()
    fleet = SimulatedFleet(sqlite_engine, RecordingSink(sqlite_engine))
    await fleet.start()
    await fleet.stop()
    assert "sim_delivery" in inspect(sqlite_engine).get_table_names()
