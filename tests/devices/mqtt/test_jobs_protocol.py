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


async def _queued(rows: Rows, gateway, thing: str, **attributes: str):  # noqa: ANN001, ANN202
    command = rows.command(rows.device(thing_name=thing, **attributes))
    await gateway.send(command)
    return command


async def test_get_lists_pending_jobs_and_describe_returns_the_document(
        sqlite_rows: Rows, make_gateway, make_device) -> None:
    gateway = await make_gateway(sqlite_rows.engine, RecordingSink(sqlite_rows.engine))
    thing = new_thing()
    device = await make_device(thing)
    first = await _queued(sqlite_rows, gateway, thing)
    second = await _queued(sqlite_rows, gateway, thing)
    pending = await device.get_pending()
    assert [j.job_id for j in pending.queued_jobs] == [first.command_id, second.command_id]
    assert pending.in_progress_jobs == []
    await device.start_next()
    pending = await device.get_pending()
    assert [j.job_id for j in pending.in_progress_jobs] == [first.command_id]
    assert [j.job_id for j in pending.queued_jobs] == [second.command_id]
    described = await device.describe(second.command_id)
    assert described.execution.status == "QUEUED"
    assert described.execution.job_document == {"operation": "REBOOT", "args": {}}
    assert described.execution.thing_name == thing
    following = await device.describe("$next")
    assert following.execution.job_id == first.command_id  # in progress comes first
    # The same command sent again is the same job: nothing new is queued.
    await gateway.send(second)
    pending = await device.get_pending()
    assert len(pending.queued_jobs) == 1


async def test_rejections_carry_the_documented_codes_and_echo_the_client_token(
        sqlite_rows: Rows, make_gateway, make_device) -> None:
    sink = RecordingSink(sqlite_rows.engine)
    gateway = await make_gateway(sqlite_rows.engine, sink)
    thing = new_thing()
    device = await make_device(thing)
    command = await _queued(sqlite_rows, gateway, thing)
    job = command.command_id
    stale = await device.update(job, "IN_PROGRESS", expected_version=7)
    assert isinstance(stale, iotjobs.RejectedError) and stale.code == "VersionMismatch"
    assert stale.execution_state.version_number == 1
    assert stale.client_token  # echoed: the SDK matched this answer by it
    unknown = await device.update("00000000-0000-0000-0000-000000000000", "SUCCEEDED")
    assert isinstance(unknown, iotjobs.RejectedError) and unknown.code == "ResourceNotFound"
    not_a_job = await device.describe("no-such-job")
    assert isinstance(not_a_job, iotjobs.RejectedError) and not_a_job.code == "ResourceNotFound"
    bad = await device.update(job, "QUEUED")  # a device cannot queue
    assert isinstance(bad, iotjobs.RejectedError) and bad.code == "InvalidRequest"
    done = await device.update(job, "SUCCEEDED", {"result": "ok"})
    assert done.execution_state.status == "SUCCEEDED"
    # Late and repeated updates of a finished execution move nothing back.
    again = await device.update(job, "SUCCEEDED", {"result": "again"})
    assert isinstance(again, iotjobs.RejectedError) and again.code == "InvalidStateTransition"
    late = await device.update(job, "IN_PROGRESS")
    assert isinstance(late, iotjobs.RejectedError) and late.code == "InvalidStateTransition"
    assert late.execution_state.status == "SUCCEEDED"
    await eventually(lambda: sqlite_rows.row(job).status == "success", 10)
    assert sqlite_rows.row(job).output == {"result": "ok"}


async def test_a_malformed_request_is_rejected_invalid_request(
        sqlite_rows: Rows, make_gateway, make_device, broker) -> None:
    import aiomqtt

    gateway = await make_gateway(sqlite_rows.engine, RecordingSink(sqlite_rows.engine))
    thing = new_thing()
    command = await _queued(sqlite_rows, gateway, thing)
    topic = f"$aws/things/{thing}/jobs/{command.command_id}/update"
    async with aiomqtt.Client(broker.host, broker.port) as raw:
        await raw.subscribe(topic + "/rejected", qos=1)
        await raw.publish(topic, b"{not json", qos=1)
        await raw.publish(topic, b'{"status": "SUCCEEDED", "statusDetails": "x", '
                                 b'"clientToken": "t2"}', qos=1)
        answers = []
        async with asyncio.timeout(10):
            async for message in raw.messages:
                answers.append(__import__("json").loads(message.payload))
                if len(answers) == 2:
                    break
    assert [a["code"] for a in answers] == ["InvalidRequest", "InvalidRequest"]
    assert "clientToken" not in answers[0] and answers[1]["clientToken"] == "t2"
    assert sqlite_rows.row(command.command_id).status == "queued"


async def test_failed_and_rejected_jobs_fail_the_command_with_status_details_as_output(
        sqlite_rows: Rows, make_gateway, make_device) -> None:
    gateway = await make_gateway(sqlite_rows.engine, RecordingSink(sqlite_rows.engine))
    thing = new_thing()
    device = await make_device(thing)
    failed = await _queued(sqlite_rows, gateway, thing)
    rejected = await _queued(sqlite_rows, gateway, thing)
    await device.start_next()
    await device.update(failed.command_id, "FAILED", {"reason": "disk full", "code": "E42"})
    await device.update(rejected.command_id, "REJECTED", {"why": "unsupported"})
    await eventually(lambda: sqlite_rows.row(rejected.command_id).status == "failure", 10)
    await eventually(lambda: sqlite_rows.row(failed.command_id).status == "failure", 10)
    row = sqlite_rows.row(failed.command_id)
    assert row.output == {"reason": "disk full", "code": "E42"} and row.reason == "disk full"
    row = sqlite_rows.row(rejected.command_id)
    assert row.output == {"why": "unsupported"}
    assert row.reason == "the device rejected the job"


async def test_cancel_makes_the_execution_canceled_and_notifies_the_device(
        sqlite_rows: Rows, make_gateway, make_device) -> None:
    sink = RecordingSink(sqlite_rows.engine)
    gateway = await make_gateway(sqlite_rows.engine, sink)
    thing = new_thing()
    device = await make_device(thing)
    command = await _queued(sqlite_rows, gateway, thing)
    assert (await device.next_notice()).execution.job_id == command.command_id
    await device.start_next()
    await gateway.cancel(command.command_id)
    notice = await device.next_notice()
    assert notice.execution is None  # nothing is next any more
    described = await device.describe(command.command_id)
    assert described.execution.status == "CANCELED"
    late = await device.update(command.command_id, "SUCCEEDED")
    assert isinstance(late, iotjobs.RejectedError) and late.code == "InvalidStateTransition"
    assert sqlite_rows.row(command.command_id).status == "cancelled"
    await gateway.cancel(command.command_id)  # a second cancel changes nothing
    assert sink.statuses(command.command_id)[-1] == "cancelled"
    assert sink.statuses(command.command_id).count("cancelled") == 1


async def test_a_device_is_its_name_unless_thing_name_says_otherwise_and_must_fit_a_topic(
        sqlite_rows: Rows, make_gateway, make_device) -> None:
    from store.db import transaction
    from store.definitions.devices import Device

    gateway = await make_gateway(sqlite_rows.engine, RecordingSink(sqlite_rows.engine))
    named = sqlite_rows.device()
    with transaction(sqlite_rows.engine) as session:
        device_row = session.get(Device, named)
        assert device_row is not None
        device_row.name = new_thing("named")
        name = device_row.name
    device = await make_device(name)
    command = sqlite_rows.command(named)
    await gateway.send(command)
    assert [j.job_id for j in (await device.get_pending()).queued_jobs] == [command.command_id]
    bad = sqlite_rows.command(sqlite_rows.device(thing_name="a/b"))
    await gateway.send(bad)
    row = sqlite_rows.row(bad.command_id)
    assert row.status == "failure" and "thing_name" in row.reason
