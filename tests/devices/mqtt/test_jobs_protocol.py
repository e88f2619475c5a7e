"""The Jobs service side against the AWS IoT Device SDK's jobs client, through the real
broker, with a sink that records into the store like the relay (no Temporal here)."""

from __future__ import annotations

import asyncio

from awsiot import iotjobs

from tests.builders import Rows
from tests.devices.conftest import RecordingSink, eventually
from tests.devices.mqtt.conftest import new_thing


async def test_a_queued_command_is_notified_started_and_succeeds(
        sqlite_rows: Rows, make_gateway, make_device) -> None:
    sink = RecordingSink(sqlite_rows.engine)
    gateway = await make_gateway(sqlite_rows.engine, sink)
    thing = new_thing()
    device = await make_device(thing)
    command = sqlite_rows.command(sqlite_rows.device(thing_name=thing))
    await gateway.send(command)
    notice = await device.next_notice()
    assert notice.execution.job_id == command.command_id
    assert notice.execution.status == "QUEUED"
    assert notice.execution.job_document == {"operation": "REBOOT", "args": {}}
    started = await device.start_next()
    assert isinstance(started, iotjobs.StartNextJobExecutionResponse)
    assert started.execution.status == "IN_PROGRESS" and started.execution.version_number == 2
    done = await device.update(command.command_id, "SUCCEEDED", {"result": "rebooted"},
                               expected_version=2)
    assert isinstance(done, iotjobs.UpdateJobExecutionResponse)
    assert done.execution_state.status == "SUCCEEDED"
    assert done.execution_state.version_number == 3
    assert done.job_document == {"operation": "REBOOT", "args": {}}
    await eventually(lambda: sqlite_rows.row(command.command_id).status == "success", 10)
    row = sqlite_rows.row(command.command_id)
    assert row.output == {"result": "rebooted"}
    assert sink.statuses(command.command_id) == ["queued", "inprogress", "success"]
    await asyncio.sleep(0.1)
