"""What survives: a worker restart (state in the store), two workers (each request answered
once), and a broker restart (reconnect, resubscribe, nothing lost)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from awsiot import iotjobs

from devices.mqtt.broker import BrokerAddress
from devices.mqtt.executions import unreported_executions
from tests.builders import Rows
from tests.devices.conftest import RecordingSink, eventually
from tests.devices.mqtt.conftest import new_thing


class DownSink(RecordingSink):
    """A relay whose Temporal is down: every delivery fails."""

    async def deliver(self, command_id, events) -> None:  # noqa: ANN001
        raise ConnectionError("Temporal is down")


async def test_a_restarted_worker_resumes_jobs_and_reports_what_was_owed(
        sqlite_rows: Rows, make_gateway, make_device) -> None:
    thing = new_thing()
    device = await make_device(thing)
    first = await make_gateway(sqlite_rows.engine, DownSink(), retry_attempts=1,
                               retry_base_s=0.01)
    command = sqlite_rows.command(sqlite_rows.device(thing_name=thing))
    await first.send(command)
    started = await device.start_next()
    done = await device.update(command.command_id, "SUCCEEDED", {"result": "ok"},
                               expected_version=started.execution.version_number)
    assert done.execution_state.status == "SUCCEEDED"
    await eventually(lambda: first.requests_answered >= 2, 10)
    await first.stop()  # the worker dies with the success unreported to the run
    assert sqlite_rows.row(command.command_id).status == "scheduled"
    assert [e.job_id for e in unreported_executions(sqlite_rows.engine)] == [command.command_id]
    sink = RecordingSink(sqlite_rows.engine)
    await make_gateway(sqlite_rows.engine, sink)  # the next worker
    await eventually(lambda: sqlite_rows.row(command.command_id).status == "success", 10)
    assert sqlite_rows.row(command.command_id).output == {"result": "ok"}
    await eventually(lambda: unreported_executions(sqlite_rows.engine) == [], 10)
    # And the execution itself is still there for the device.
    described = await device.describe(command.command_id)
    assert described.execution.status == "SUCCEEDED"


async def test_duplicate_and_out_of_order_reports_move_nothing_backwards(
        sqlite_rows: Rows, make_gateway, make_device) -> None:
    sink = RecordingSink(sqlite_rows.engine)
    gateway = await make_gateway(sqlite_rows.engine, sink)
    thing = new_thing()
    device = await make_device(thing)
    command = sqlite_rows.command(sqlite_rows.device(thing_name=thing))
    await gateway.send(command)
    started = await device.start_next()
    version = started.execution.version_number
    await device.update(command.command_id, "SUCCEEDED", {"result": "ok"},
                        expected_version=version)
    await eventually(lambda: sqlite_rows.row(command.command_id).status == "success", 10)
    # A stale IN_PROGRESS (sent before the success, arriving after) and a repeated success.
    late = await device.update(command.command_id, "IN_PROGRESS", expected_version=version)
    assert isinstance(late, iotjobs.RejectedError) and late.code == "VersionMismatch"
    again = await device.update(command.command_id, "SUCCEEDED")
    assert isinstance(again, iotjobs.RejectedError) and again.code == "InvalidStateTransition"
    # The relay sees an old version again (a sweep racing an update): the store keeps it.
    from devices.mqtt.jobs import Execution

    await gateway._report(Execution(  # noqa: SLF001
        job_id=command.command_id, thing_name=thing, status="IN_PROGRESS", job_document={},
        version_number=version, last_updated_at=1.0))
    row = sqlite_rows.row(command.command_id)
    assert row.status == "success" and row.output == {"result": "ok"}


async def test_with_two_workers_every_request_is_answered_exactly_once(
        sqlite_rows: Rows, make_gateway, make_device) -> None:
    sink = RecordingSink(sqlite_rows.engine)
    one = await make_gateway(sqlite_rows.engine, sink, lease_ttl_s=1.5)
    two = await make_gateway(sqlite_rows.engine, sink, lease_ttl_s=1.5)
    assert [one.responding, two.responding] == [True, False]
    thing = new_thing()
    device = await make_device(thing)
    command = sqlite_rows.command(sqlite_rows.device(thing_name=thing))
    await two.send(command)  # any worker queues; the responder answers
    for _ in range(5):
        await device.get_pending()
    await asyncio.sleep(0.5)  # room for a second answer, were there one
    answers = [a for a in device.answers if isinstance(a, iotjobs.GetPendingJobExecutionsResponse)]
    assert len(answers) == 5 and len({a.client_token for a in answers}) == 5
    # The responder stops: the other worker takes the lease and answers from then on.
    await one.stop()
    await eventually(lambda: two.responding and two.responder is not None
                     and two.responder.ready.is_set(), 15)
    pending = await device.get_pending()
    assert [j.job_id for j in pending.queued_jobs] == [command.command_id]
    await asyncio.sleep(0.5)
    answers = [a for a in device.answers if isinstance(a, iotjobs.GetPendingJobExecutionsResponse)]
    assert len(answers) == 6


def _mosquitto() -> str | None:
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_broker(binary: str, port: int, log: Path) -> subprocess.Popen:
    config = log.with_suffix(".conf")
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen([binary, "-c", str(config)], stdout=log.open("ab"),
                              stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return broker
        except OSError:
            if broker.poll() is not None:
                raise AssertionError(log.read_text()) from None
            import time
            time.sleep(0.05)
    raise AssertionError(f"private mosquitto did not listen on {port}")


async def test_a_broker_restart_mid_job_loses_no_update(
        sqlite_rows: Rows, make_gateway, make_device, tmp_path) -> None:
    binary = _mosquitto()
    if binary is None:
        pytest.skip("no mosquitto binary to run a private broker (the machine's one is not "
                    "restarted by tests)")
    port = _free_port()
    log = tmp_path / "mosquitto.log"
    broker = _start_broker(binary, port, log)
    try:
        address = BrokerAddress("127.0.0.1", port)
        sink = RecordingSink(sqlite_rows.engine)
        gateway = await make_gateway(sqlite_rows.engine, sink, broker=address)
        thing = new_thing()
        device = await make_device(thing, address)
        command = sqlite_rows.command(sqlite_rows.device(thing_name=thing))
        await gateway.send(command)
        started = await device.start_next()
        assert started.execution.job_id == command.command_id
        broker.terminate()
        broker.wait(timeout=10)
        # While the broker is down the run cancels nothing, and a new job is queued.
        second = sqlite_rows.command(sqlite_rows.device(thing_name=thing))
        await gateway.send(second)
        broker = _start_broker(binary, port, log)
        assert gateway.responder is not None
        await eventually(lambda: gateway.responder.connections >= 2
                         and gateway.responder.ready.is_set()
                         and gateway.notifier.ready.is_set(), 30)
        # The device's client reconnects by itself (and resubscribes); its update goes through.
        await eventually(lambda: device.resumed >= 1, 30)
        await asyncio.sleep(0.5)  # its resubscribe is acknowledged asynchronously
        done = await device.update(command.command_id, "SUCCEEDED", {"result": "ok"},
                                   expected_version=started.execution.version_number)
        assert isinstance(done, iotjobs.UpdateJobExecutionResponse)
        await eventually(lambda: sqlite_rows.row(command.command_id).status == "success", 10)
        # The notification queued while the broker was down went out after the restart.
        pending = await device.get_pending()
        assert [j.job_id for j in pending.queued_jobs] == [second.command_id]
        assert gateway.notifier.backlog == 0
    finally:
        broker.terminate()
        broker.wait(timeout=10)
