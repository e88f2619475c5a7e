"""The Esper gateway through the real esperclient SDK against the fake Esper server (its own
process), with a sink that records into a real store like the relay does."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from devices.esper import records
from devices.esper.fake_server import FAILURE_REASON
from devices.esper.gateway import NOT_CANCELLABLE, EsperGateway
from domain.commands import DeviceCommand
from tests.builders import Rows
from tests.devices.conftest import RecordingSink, eventually
from tests.devices.esper.conftest import FakeEsper, quick_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def sink(sqlite_rows: Rows) -> RecordingSink:
    return RecordingSink(sqlite_rows.engine)


@pytest.fixture
async def gateway(sqlite_rows: Rows, sink: RecordingSink,
                  fake_esper: FakeEsper) -> AsyncIterator[EsperGateway]:
    gateway = EsperGateway(sqlite_rows.engine, sink, quick_config(fake_esper))
    await gateway.start()
    yield gateway
    await gateway.stop()


def install(rows: Rows, esper_id: str | None = None, **attributes: str) -> DeviceCommand:
    if esper_id:
        attributes["esper_device_id"] = esper_id
    command = rows.command(rows.device(**attributes))
    command.operation_type = "INSTALL"
    command.args = {"package_name": "com.example.app", "app_version": "v-42",
                    "version_code": "42"}
    return command


async def ended(rows: Rows, command: DeviceCommand, timeout: float = 20.0) -> str:
    await eventually(lambda: rows.row(command.command_id).status in
                     ("success", "failure", "timeout", "cancelled"), timeout)
    return rows.row(command.command_id).status


async def test_a_command_reaches_esper_once_and_walks_to_success(
        sqlite_rows: Rows, sink: RecordingSink, gateway: EsperGateway,
        fake_esper: FakeEsper) -> None:
    command = install(sqlite_rows, "esper-dev-1")
    await gateway.send(command)
    await gateway.send(command)  # a repeated send is the same command
    assert await ended(sqlite_rows, command) == "success"
    [sent] = fake_esper.commands()
    assert sent["command_type"] == "DEVICE" and sent["devices"] == ["esper-dev-1"]
    assert sent["device_type"] == "all" and sent["command"] == "INSTALL"
    # Esper's own argument names only: version_code is not one of them.
    assert sent["command_args"] == {"package_name": "com.example.app", "app_version": "v-42"}
    statuses = sink.statuses(command.command_id)
    assert statuses[0] == "queued" and statuses[-1] == "success"
    assert statuses == sorted(set(statuses), key=statuses.index)  # each once, in order
    last = sink.for_command(command.command_id)[-1][-1]
    assert last.output["esper_request_id"] == sent["id"]
    assert last.output["esper_state"] == "Command Success"
    assert records.esper_request_of(sqlite_rows.engine, command.command_id) == sent["id"]


async def test_a_device_without_an_esper_id_is_named_by_its_own_id(
        sqlite_rows: Rows, gateway: EsperGateway, fake_esper: FakeEsper) -> None:
    command = install(sqlite_rows)
    await gateway.send(command)
    assert await ended(sqlite_rows, command) == "success"
    assert [c["devices"] for c in fake_esper.commands()] == [[command.device_id]]


async def test_a_failing_device_ends_failure_with_esper_s_reason(
        sqlite_rows: Rows, gateway: EsperGateway) -> None:
    command = install(sqlite_rows, "fail-dev-1")
    await gateway.send(command)
    assert await ended(sqlite_rows, command) == "failure"
    row = sqlite_rows.row(command.command_id)
    assert row.reason == FAILURE_REASON
    assert row.output["esper_state"] == "Command Failure"


async def test_a_refused_api_key_fails_every_command_clearly_and_is_logged_once(
        sqlite_rows: Rows, sink: RecordingSink, fake_esper: FakeEsper,
        caplog: pytest.LogCaptureFixture) -> None:
    fake_esper.configure(api_key="another-key")
    gateway = EsperGateway(sqlite_rows.engine, sink, quick_config(fake_esper))
    await gateway.start()
    try:
        caplog.set_level(logging.INFO, logger="devices.esper")
        commands = [install(sqlite_rows, f"esper-dev-{i}") for i in range(3)]
        for command in commands:
            await gateway.send(command)
        for command in commands:
            assert await ended(sqlite_rows, command) == "failure"
            reason = sqlite_rows.row(command.command_id).reason
            assert "HTTP 401" in reason and "FLEETPIPE_ESPER_API_KEY" in reason
            assert "nothing was sent" in reason
    finally:
        await gateway.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "FLEETPIPE_ESPER_API_KEY" in errors[0].getMessage()
    assert fake_esper.commands() == []


async def test_429_and_5xx_are_retried_and_nothing_is_lost_or_doubled(
        sqlite_rows: Rows, gateway: EsperGateway, fake_esper: FakeEsper) -> None:
    fake_esper.faults(fail=[429, 503, 500, 502, 429, 500, 503, 500])
    commands = [install(sqlite_rows, f"esper-dev-{i}") for i in range(4)]
    for command in commands:
        await gateway.send(command)
    for command in commands:
        assert await ended(sqlite_rows, command) == "success"
    statuses = [r["status"] for r in fake_esper.requests()]
    assert statuses.count(429) == 2 and statuses.count(500) == 3  # the faults were met
    for i in range(4):
        assert len(fake_esper.commands_for(f"esper-dev-{i}")) == 1


async def test_a_lost_create_answer_is_found_again_not_sent_twice(
        sqlite_rows: Rows, sink: RecordingSink, gateway: EsperGateway,
        fake_esper: FakeEsper) -> None:
    # Created at Esper, but the answer outlasts the client's 1 s timeout: it is lost.
    fake_esper.faults(hold_creates=1, hold_s=2.5)
    command = install(sqlite_rows, "esper-dev-lost")
    await gateway.send(command)
    assert await ended(sqlite_rows, command) == "success"
    [sent] = fake_esper.commands_for("esper-dev-lost")
    assert records.esper_request_of(sqlite_rows.engine, command.command_id) == sent["id"]
    kinds = [r["kind"] for r in fake_esper.requests()]
    assert "list" in kinds  # it looked the request up instead of creating another


async def test_an_outage_loses_nothing(
        sqlite_rows: Rows, gateway: EsperGateway, fake_esper: FakeEsper) -> None:
    first = install(sqlite_rows, "esper-dev-a")
    await gateway.send(first)
    await eventually(lambda: fake_esper.commands_for("esper-dev-a"), 10)
    fake_esper.pause()  # nothing answers: polls and the next creates time out
    try:
        later = [install(sqlite_rows, f"esper-dev-b{i}") for i in range(3)]
        for command in later:
            await gateway.send(command)
        await asyncio.sleep(2.5)
    finally:
        fake_esper.resume()
    for command in [first, *later]:
        assert await ended(sqlite_rows, command) == "success"
    for device in ["esper-dev-a"] + [f"esper-dev-b{i}" for i in range(3)]:
        assert len(fake_esper.commands_for(device)) == 1


async def test_the_request_rate_stays_within_its_bound(
        sqlite_rows: Rows, sink: RecordingSink, fake_esper: FakeEsper) -> None:
    rate = 20
    gateway = EsperGateway(sqlite_rows.engine, sink, quick_config(
        fake_esper, max_requests_per_second=rate, poll_interval_s=0.01))
    await gateway.start()
    try:
        commands = [install(sqlite_rows, f"esper-dev-{i}") for i in range(30)]
        for command in commands:
            await gateway.send(command)
        for command in commands:
            assert await ended(sqlite_rows, command, timeout=60) == "success"
    finally:
        await gateway.stop()
    times = sorted(r["at"] for r in fake_esper.requests())
    assert len(times) >= 60  # 30 creates and their polls
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    # Starts are spaced 1/rate apart: rate + 1 in a second, one more for arrival jitter.
    assert busiest <= rate + 2, busiest
    assert gateway.api.calls["create"] == 30


async def test_cancel_stops_a_command_that_has_not_reached_esper(
        sqlite_rows: Rows, sink: RecordingSink, gateway: EsperGateway,
        fake_esper: FakeEsper) -> None:
    fake_esper.faults(fail=[503] * 40, fail_kind="create")
    command = install(sqlite_rows, "esper-dev-c")
    await gateway.send(command)
    await eventually(lambda: any(r["status"] == 503 for r in fake_esper.requests()), 10)
    await gateway.cancel(command.command_id)
    assert await ended(sqlite_rows, command) == "cancelled"
    assert "before it reached Esper" in sqlite_rows.row(command.command_id).reason
    fake_esper.faults(fail=[])
    await asyncio.sleep(0.5)
    assert fake_esper.commands() == []


async def test_a_created_command_cannot_be_cancelled_and_runs_to_its_end(
        sqlite_rows: Rows, gateway: EsperGateway, fake_esper: FakeEsper,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="devices.esper")
    fake_esper.configure(step_s=0.5)
    command = install(sqlite_rows, "esper-dev-d")
    await gateway.send(command)
    await eventually(lambda: records.esper_request_of(sqlite_rows.engine, command.command_id))
    await gateway.cancel(command.command_id)
    assert await ended(sqlite_rows, command) == "success"
    assert any(NOT_CANCELLABLE in r.getMessage() for r in caplog.records)


async def test_a_new_gateway_resumes_an_intent_without_creating_it_again(
        sqlite_rows: Rows, sink: RecordingSink, fake_esper: FakeEsper) -> None:
    """The first gateway's create reaches Esper but it stops before the answer; the next one
    finds the request and follows it."""
    fake_esper.faults(hold_creates=1, hold_s=30)
    first = EsperGateway(sqlite_rows.engine, sink, quick_config(fake_esper, request_timeout_s=30))
    await first.start()
    command = install(sqlite_rows, "esper-dev-r")
    await first.send(command)
    await eventually(lambda: fake_esper.commands_for("esper-dev-r"), 10)
    await first.stop()  # gone before the answer came
    assert records.esper_request_of(sqlite_rows.engine, command.command_id) is None
    fake_esper.release()
    second = EsperGateway(sqlite_rows.engine, sink, quick_config(fake_esper))
    await second.start()
    try:
        assert await ended(sqlite_rows, command) == "success"
    finally:
        await second.stop()
    [sent] = fake_esper.commands_for("esper-dev-r")
    assert records.esper_request_of(sqlite_rows.engine, command.command_id) == sent["id"]
