"""CommandEventRelay against the real Temporal dev server and a real store."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import cast

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from control.relay import CommandEventRelay
from devices.simulated import SimulatedFleet
from domain.commands import CommandEvent
from domain.ids import target_run_workflow_id
from domain.statuses import TERMINAL, RunKind
from store.runs.events import pending_signals
from tests.builders import Rows
from workflows.messages import CommandEvents
from workflows.names import SIGNAL_COMMAND_EVENTS


@workflow.defn(name="RelayProbe")
class RelayProbe:
    """Stands in for a target run: collects command events until one is terminal."""

    def __init__(self) -> None:
        self.events: list[CommandEvent] = []

    @workflow.run
    async def run(self) -> CommandEvents:
        await workflow.wait_condition(
            lambda: any(e.status in TERMINAL[RunKind.COMMAND] for e in self.events)
        )
        return CommandEvents(events=self.events)

    @workflow.signal(name=SIGNAL_COMMAND_EVENTS)
    def command_events(self, batch: CommandEvents) -> None:
        self.events.extend(batch.events)


@pytest.fixture
async def probe_worker(temporal_client: Client, task_queue: str) -> AsyncIterator[Worker]:
    # Unsandboxed: the probe is test scaffolding, and this module imports the store.
    async with Worker(temporal_client, task_queue=task_queue, workflows=[RelayProbe],
                      workflow_runner=UnsandboxedWorkflowRunner()) as worker:
        yield worker


async def start_probe(client: Client, task_queue: str, target_run_id: uuid.UUID) -> WorkflowHandle:
    return await client.start_workflow(
        RelayProbe.run, id=target_run_workflow_id(target_run_id), task_queue=task_queue,
        execution_timeout=timedelta(seconds=30),
    )


async def signal_count(handle: WorkflowHandle) -> int:
    history = await handle.fetch_history()
    return sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
               for e in history.events)


def ev(command_id: str, status: str, sequence: int) -> CommandEvent:
    return CommandEvent(command_id=command_id, status=status, sequence=sequence)


async def test_the_workflow_receives_exactly_the_applied_events(
    sqlite_rows: Rows, temporal_client: Client, task_queue: str, probe_worker: Worker
) -> None:
    tr = uuid.uuid4()
    cid = sqlite_rows.command(target_run_id=tr).command_id
    handle = await start_probe(temporal_client, task_queue, tr)
    relay = CommandEventRelay(sqlite_rows.engine, temporal_client)

    await relay.deliver(cid, [ev(cid, "queued", 0), ev(cid, "initiated", 1)])
    await relay.deliver(cid, [ev(cid, "initiated", 1), ev(cid, "acknowledged", 2)])  # a dup
    nothing = await relay.record_and_signal(cid, [ev(cid, "queued", 0)])  # nothing applies
    assert nothing.applied == []
    await relay.deliver(cid, [ev(cid, "success", 3)])

    result = await handle.result()
    assert [(e.command_id, e.status, e.sequence) for e in result.events] == [
        (cid, "queued", 0), (cid, "initiated", 1), (cid, "acknowledged", 2), (cid, "success", 3)]
    assert await signal_count(handle) == 3  # no signal for the delivery that changed nothing
    assert pending_signals(sqlite_rows.engine) == []


async def test_a_missing_or_closed_workflow_is_not_an_error(
    sqlite_rows: Rows, temporal_client: Client, task_queue: str, probe_worker: Worker
) -> None:
    relay = CommandEventRelay(sqlite_rows.engine, temporal_client)
    nobody = sqlite_rows.command().command_id  # no workflow was ever started for it
    recorded = await relay.record_and_signal(nobody, [ev(nobody, "queued", 0)])
    assert [e.status for e in recorded.applied] == ["queued"]
    assert sqlite_rows.row(nobody).status == "queued"  # the store keeps it

    tr = uuid.uuid4()
    first = sqlite_rows.command(target_run_id=tr).command_id
    retry = sqlite_rows.command(target_run_id=tr).command_id
    handle = await start_probe(temporal_client, task_queue, tr)
    await relay.deliver(first, [ev(first, "failure", 0)])
    await handle.result()  # the run is over
    await relay.deliver(retry, [ev(retry, "queued", 0)])
    assert sqlite_rows.row(retry).status == "queued"
    assert pending_signals(sqlite_rows.engine) == []  # nobody left to tell


class FlakyClient:
    """The real client whose first signals fail as if the server were briefly unavailable.

    It has only the method the relay calls; `flaky` hands it over as the Client it stands in for.
    """

    def __init__(self, client: Client, failures: int) -> None:
        self._client = client
        self.failures = failures

    def get_workflow_handle(self, workflow_id: str) -> object:
        handle = self._client.get_workflow_handle(workflow_id)
        if self.failures <= 0:
            return handle
        self.failures -= 1
        return _Unavailable()


def flaky(client: Client, failures: int) -> Client:
    return cast(Client, FlakyClient(client, failures))


class _Unavailable:
    async def signal(self, *args: object, **kwargs: object) -> None:
        raise RPCError("server unavailable", RPCStatusCode.UNAVAILABLE, b"")


async def test_a_failed_signal_is_sent_by_the_next_delivery(
    sqlite_rows: Rows, temporal_client: Client, task_queue: str, probe_worker: Worker
) -> None:
    tr = uuid.uuid4()
    cid = sqlite_rows.command(target_run_id=tr).command_id
    handle = await start_probe(temporal_client, task_queue, tr)
    relay = CommandEventRelay(sqlite_rows.engine, flaky(temporal_client, failures=1))
    batch = [ev(cid, "queued", 0), ev(cid, "success", 1)]
    with pytest.raises(RPCError):
        await relay.deliver(cid, batch)
    assert sqlite_rows.row(cid).status == "success"  # recorded even though the signal failed
    await relay.deliver(cid, batch)  # the gateway retries: duplicates, but the signal is owed
    result = await handle.result()
    assert [e.status for e in result.events] == ["queued", "success"]


async def test_resend_pending_signals_what_a_crash_left_owed(
    sqlite_rows: Rows, temporal_client: Client, task_queue: str, probe_worker: Worker
) -> None:
    tr = uuid.uuid4()
    cid = sqlite_rows.command(target_run_id=tr).command_id
    handle = await start_probe(temporal_client, task_queue, tr)
    broken = CommandEventRelay(sqlite_rows.engine, flaky(temporal_client, failures=1))
    with pytest.raises(RPCError):
        await broken.deliver(cid, [ev(cid, "queued", 0), ev(cid, "failure", 1)])
    relay = CommandEventRelay(sqlite_rows.engine, temporal_client)  # the next process
    assert await relay.resend_pending() == 2
    assert [e.status for e in (await handle.result()).events] == ["queued", "failure"]


class SlowClient:
    """The real client whose signals take a while to be accepted (a busy server), so a resend
    round runs while a delivery's signal is still on its way."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.sending = asyncio.Event()

    def get_workflow_handle(self, workflow_id: str) -> object:
        return _SlowHandle(self._client.get_workflow_handle(workflow_id), self.sending)


class _SlowHandle:
    def __init__(self, handle: WorkflowHandle, sending: asyncio.Event) -> None:
        self._handle = handle
        self._sending = sending

    async def signal(self, *args: object, **kwargs: object) -> None:
        self._sending.set()
        await asyncio.sleep(0.5)
        await self._handle.signal(*args, **kwargs)  # type: ignore[call-overload]


async def test_a_resend_round_leaves_a_signal_on_its_way_to_its_sender(
    sqlite_rows: Rows, temporal_client: Client, task_queue: str, probe_worker: Worker
) -> None:
    tr = uuid.uuid4()
    cid = sqlite_rows.command(target_run_id=tr).command_id
    handle = await start_probe(temporal_client, task_queue, tr)
    slow = SlowClient(temporal_client)
    relay = CommandEventRelay(sqlite_rows.engine, cast(Client, slow))
    delivery = asyncio.create_task(relay.deliver(cid, [ev(cid, "queued", 0),
                                                        ev(cid, "success", 1)]))
    await asyncio.wait_for(slow.sending.wait(), 30)
    assert len(pending_signals(sqlite_rows.engine)) == 1  # recorded, not yet cleared
    assert await relay.resend_pending() == 0  # the delivery's own signal is on its way
    await delivery
    assert [e.status for e in (await handle.result()).events] == ["queued", "success"]
    assert await signal_count(handle) == 1
    assert pending_signals(sqlite_rows.engine) == []


async def test_a_simulated_device_answering_at_once_costs_one_signal(
    sqlite_rows: Rows, temporal_client: Client, task_queue: str, probe_worker: Worker
) -> None:
    tr = uuid.uuid4()
    command = sqlite_rows.command(sqlite_rows.device(), target_run_id=tr)
    handle = await start_probe(temporal_client, task_queue, tr)
    fleet = SimulatedFleet(sqlite_rows.engine, CommandEventRelay(sqlite_rows.engine,
                                                                 temporal_client))
    await fleet.send(command)
    result = await handle.result()
    await fleet.stop()
    assert [e.status for e in result.events] == [
        "queued", "initiated", "acknowledged", "inprogress", "success"]
    assert await signal_count(handle) == 1


class OutageClient:
    """A client whose signals fail while `down` (Temporal unreachable), then go through."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.down = True
        self.refused = 0

    def get_workflow_handle(self, workflow_id: str) -> object:
        if self.down:
            self.refused += 1
            return _Unavailable()
        return self._client.get_workflow_handle(workflow_id)


async def test_owed_signals_get_through_after_an_outage_without_a_restart(
    sqlite_rows: Rows, temporal_client: Client, task_queue: str, probe_worker: Worker
) -> None:
    engine = sqlite_rows.engine
    instant_tr, slow_tr = uuid.uuid4(), uuid.uuid4()
    # Answers at once: its end is recorded during the outage, so only the relay's timer can
    # still deliver it (the gateway stops once the store holds the command's end).
    instant = sqlite_rows.command(sqlite_rows.device(), target_run_id=instant_tr)
    # Answers later: the gateway keeps retrying its first event through the outage.
    slow = sqlite_rows.command(sqlite_rows.device(sim_latency_ms="300"), target_run_id=slow_tr)
    handles = [await start_probe(temporal_client, task_queue, tr) for tr in (instant_tr,
                                                                            slow_tr)]
    outage = OutageClient(temporal_client)
    relay = CommandEventRelay(engine, cast(Client, outage))
    # Backoff this short makes the old bound of 8 attempts pass within the outage below.
    fleet = SimulatedFleet(engine, relay, retry_base_s=0.01, retry_max_s=0.05)
    timer = asyncio.create_task(relay.keep_resending(0.05, max_interval=0.2))
    try:
        await fleet.send(instant)
        await fleet.send(slow)
        deadline = time.monotonic() + 30
        while outage.refused < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert outage.refused >= 20, "the outage never refused anything"
        assert sqlite_rows.row(instant.command_id).status == "success"  # recorded, not heard
        assert sqlite_rows.row(slow.command_id).status == "queued"  # held by the outage
        assert pending_signals(engine)
        outage.down = False
        results = [await asyncio.wait_for(h.result(), 30) for h in handles]
    finally:
        timer.cancel()
        await fleet.stop()
    walk = ["queued", "initiated", "acknowledged", "inprogress", "success"]
    assert [[e.status for e in r.events] for r in results] == [walk, walk]
    assert pending_signals(engine) == []
