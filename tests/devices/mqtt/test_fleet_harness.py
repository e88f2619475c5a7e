"""The benchmarks' fleet (bench/mqtt_fleet.py) speaks the Jobs protocol the gateway serves:
through the real broker, over shared wildcard subscriptions, every command succeeds, with the
messages it counts."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from bench.mqtt_fleet import Fleet
from devices.mqtt.broker import BrokerAddress
from devices.mqtt.gateway import MqttJobsGateway
from devices.mqtt.topics import Topics
from tests.builders import Rows
from tests.devices.conftest import RecordingSink, eventually

THINGS = 12


@pytest.mark.parametrize(("mode", "requests_per_job"), [("start-next", 2), ("get", 3)])
async def test_the_fleet_runs_every_job_to_success_over_shared_connections(
        sqlite_rows: Rows, broker: BrokerAddress, mode: str, requests_per_job: int) -> None:
    topics = Topics(f"fp-test-{uuid.uuid4().hex[:10]}/things")
    sink = RecordingSink(sqlite_rows.engine)
    gateway = MqttJobsGateway(sqlite_rows.engine, sink, broker, topics,
                              responder_name=f"test-{uuid.uuid4().hex[:10]}")
    await gateway.start()
    names = [f"fleet-{i:03d}" for i in range(THINGS)]
    fleet = Fleet(broker, topics, names, connections=3, mode=mode, latency_s=0.05,
                  retry_after_s=60, observe=True)
    tasks = [asyncio.create_task(fleet.serve(i)) for i in range(3)]
    tasks.append(asyncio.create_task(fleet.watch()))
    try:
        await asyncio.wait_for(fleet.ready.wait(), 30)
        commands = [sqlite_rows.command(sqlite_rows.device(thing_name=name)) for name in names]
        for command in commands:
            await gateway.send(command)
        await eventually(lambda: all(sqlite_rows.row(c.command_id).status == "success"
                                     for c in commands), 60)
        # The answers and the notifications come on two connections of the gateway's.
        await eventually(lambda: fleet.counts.succeeded == THINGS
                         and fleet.counts.received["notify-next"] == 2 * THINGS, 30)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await gateway.stop()
    counts = fleet.counts
    assert counts.succeeded == counts.started == THINGS
    assert sum(counts.sent.values()) == requests_per_job * THINGS
    assert counts.rejected == {} and counts.retries == 0 and counts.stray == 0
    # Each request got its one answer, each thing its two notify-next (the job, then none).
    assert sum(counts.received.values()) == (requests_per_job + 2) * THINGS
    assert sqlite_rows.row(commands[0].command_id).output == {"result": "done"}
    assert counts.observed["update"] == counts.sent["update"]
    assert counts.observed["notify"] > 0  # the gateway's publications are counted too
