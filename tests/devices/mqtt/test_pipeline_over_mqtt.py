"""Pipelines through the MQTT gateway: a real Temporal dev server, the real worker with the
gateway FLEETPIPE_GATEWAY=mqtt builds, the machine's broker, and devices running the AWS IoT
Device SDK's jobs client."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from awsiot import iotjobs

from control.launch import start_pipeline_run
from control.relay import CommandEventRelay
from devices.choice import build_gateway
from devices.mqtt.gateway import MqttJobsGateway
from domain.ids import pipeline_run_workflow_id
from settings import Settings
from tests.builders import REBOOT, StageSpec, make_pipeline
from tests.devices.mqtt.conftest import MQTT_URL, new_thing
from tests.devices.mqtt.device import JobsDevice
from tests.workflows.helpers import commands_of, result_of, stage_rows, target_rows, wait_for
from worker import running_worker
from workflows import names
from workflows.messages import RunState, RunStatusRequest


def _gateway(engine, client) -> MqttJobsGateway:  # noqa: ANN001
    """What the worker builds for FLEETPIPE_GATEWAY=mqtt, with a responder of this test's."""
    settings = Settings(gateway="mqtt", mqtt_url=MQTT_URL)
    gateway = build_gateway(settings, engine, CommandEventRelay(engine, client))
    assert isinstance(gateway, MqttJobsGateway)
    gateway._responder_name = f"test-{uuid.uuid4().hex[:10]}"  # noqa: SLF001
    return gateway


@contextlib.asynccontextmanager
async def _agents(devices: list[JobsDevice], finish) -> AsyncIterator[None]:  # noqa: ANN001
    tasks = [asyncio.create_task(device.run_jobs(finish)) for device in devices]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _by_outcome(execution: iotjobs.JobExecutionData) -> tuple[str, dict[str, str]]:
    """Each device's thing name says how its job ends."""
    if "-fail-" in execution.thing_name:
        return "FAILED", {"reason": "flash write failed", "block": "7"}
    if "-reject-" in execution.thing_name:
        return "REJECTED", {"reason": "operation not supported"}
    return "SUCCEEDED", {"result": "rebooted", "operation": execution.job_document["operation"]}


async def test_a_pipeline_of_sdk_devices_runs_to_success(
        temporal_client, sqlite_engine, task_queue, make_device) -> None:
    things = [new_thing("ok") for _ in range(3)]
    devices = [await make_device(thing) for thing in things]
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("fleet", devices=[{"thing_name": t} for t in things],
                  operations=[REBOOT])])
    gateway = _gateway(sqlite_engine, temporal_client)
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue,
                              gateway=gateway), _agents(devices, _by_outcome):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        result = await result_of(temporal_client, run.id, timeout=90)
    assert result.status == "success"
    commands = commands_of(sqlite_engine, run.id)
    assert len(commands) == 3
    for command in commands:
        assert command.gateway == "mqtt" and command.status == "success"
        assert command.output == {"result": "rebooted", "operation": "REBOOT"}


async def test_failed_and_rejected_jobs_end_failure_with_their_status_details(
        temporal_client, sqlite_engine, task_queue, make_device) -> None:
    things = [new_thing("fail"), new_thing("reject"), new_thing("ok")]
    devices = [await make_device(thing) for thing in things]
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("fleet", devices=[{"thing_name": t} for t in things])])
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue,
                              gateway=_gateway(sqlite_engine, temporal_client)), \
            _agents(devices, _by_outcome):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        result = await result_of(temporal_client, run.id, timeout=90)
    assert result.status == "failure"
    (stage,) = stage_rows(sqlite_engine, run.id)
    targets = target_rows(sqlite_engine, stage.id)
    assert [t.status for t in targets] == ["failure", "failure", "success"]
    by_device = {str(c.device_id): c for c in commands_of(sqlite_engine, run.id)}
    failed, rejected, ok = (by_device[str(t.target_id)] for t in targets)
    assert failed.output == {"reason": "flash write failed", "block": "7"}
    assert failed.reason == "flash write failed"
    assert rejected.output == {"reason": "operation not supported"}
    assert ok.status == "success"
    assert targets[0].status_reason == "flash write failed"
    assert targets[0].command_meta["output"] == failed.output


async def test_a_device_offline_for_the_whole_stage_times_out_and_its_job_is_canceled(
        temporal_client, sqlite_engine, task_queue, make_device) -> None:
    thing = new_thing("offline")
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("fleet", devices=[{"thing_name": thing}], timeout_seconds=3)])
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue,
                              gateway=_gateway(sqlite_engine, temporal_client)):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        await result_of(temporal_client, run.id, timeout=90)
        (stage,) = stage_rows(sqlite_engine, run.id)
        assert stage.status == "timeout"
        (target,) = target_rows(sqlite_engine, stage.id)
        assert target.status == "timeout"
        # The device comes online afterwards: nothing is left for it, its job was canceled.
        device = await make_device(thing)
        assert (await device.get_pending()).queued_jobs == []
        (command,) = commands_of(sqlite_engine, run.id)
        described = await device.describe(str(command.id))
        assert described.execution.status == "CANCELED"
        started = await device.start_next()
        assert started.execution is None


async def test_a_device_that_reconnects_mid_job_resumes_it_with_get_and_start_next(
        temporal_client, sqlite_engine, task_queue, make_device) -> None:
    thing = new_thing("flaky")
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("fleet", devices=[{"thing_name": thing}])])
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue,
                              gateway=_gateway(sqlite_engine, temporal_client)):
        device = await make_device(thing)
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        notice = await device.next_notice()
        job = notice.execution.job_id
        started = await device.start_next()
        assert started.execution.job_id == job
        await device.update(job, "IN_PROGRESS", {"step": "downloading"},
                            expected_version=started.execution.version_number)
        await device.disconnect()  # power cycle mid-job
        again = await make_device(thing)
        pending = await again.get_pending()
        assert [j.job_id for j in pending.in_progress_jobs] == [job]
        resumed = await again.start_next()  # the one in progress, as it is
        assert resumed.execution.job_id == job and resumed.execution.status == "IN_PROGRESS"
        assert resumed.execution.status_details == {"step": "downloading"}
        await again.update(job, "SUCCEEDED", {"result": "done after reconnect"},
                           expected_version=resumed.execution.version_number)
        result = await result_of(temporal_client, run.id, timeout=90)
    assert result.status == "success"
    (command,) = commands_of(sqlite_engine, run.id)
    assert command.output == {"result": "done after reconnect"}


async def test_cancelling_the_run_reaches_the_device_as_canceled(
        temporal_client, sqlite_engine, task_queue, make_device) -> None:
    thing = new_thing("busy")
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("fleet", devices=[{"thing_name": thing}])])
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue,
                              gateway=_gateway(sqlite_engine, temporal_client)):
        device = await make_device(thing)
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        job = (await device.next_notice()).execution.job_id
        started = await device.start_next()
        await device.update(job, "IN_PROGRESS", expected_version=started.execution.version_number)
        await wait_for(lambda: target_rows(sqlite_engine, stage_rows(sqlite_engine, run.id)[0].id)
                       [0].status == "running")
        handle = temporal_client.get_workflow_handle(pipeline_run_workflow_id(run.id))
        await handle.execute_update(names.UPDATE_SET_RUN_STATUS, RunStatusRequest("cancelled"),
                                    result_type=RunState)
        notice = await device.next_notice()
        assert notice.execution is None  # its job is no longer next
        described = await device.describe(job)
        assert described.execution.status == "CANCELED"
        late = await device.update(job, "SUCCEEDED")
        assert isinstance(late, iotjobs.RejectedError) and late.code == "InvalidStateTransition"
        await result_of(temporal_client, run.id, timeout=90)
    (command,) = commands_of(sqlite_engine, run.id)
    assert command.status == "cancelled"
    (stage,) = stage_rows(sqlite_engine, run.id)
    (target,) = target_rows(sqlite_engine, stage.id)
    assert target.command_status == "cancelled"
