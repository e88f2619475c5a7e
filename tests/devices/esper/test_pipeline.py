"""Pipelines run against the fake Esper server through the real SDK and a real Temporal
server: success, a failing device, and a worker killed between Esper's create and its
recording, which must not make a second Esper command."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from control.launch import start_pipeline_run
from control.relay import CommandEventRelay
from devices.esper import records
from devices.esper.fake_server import FAILURE_REASON
from devices.esper.gateway import EsperGateway
from tests.builders import INSTALL, StageSpec, make_pipeline
from tests.devices.esper.conftest import API_KEY, ENTERPRISE, ROOT, FakeEsper, quick_config
from tests.workflows.helpers import commands_of, result_of, stage_rows, target_rows, wait_for
from worker import running_worker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def esper_devices(*ids: str) -> list[dict[str, str]]:
    return [{"esper_device_id": i} for i in ids]


async def test_a_pipeline_runs_to_success_through_esper(
        temporal_client, sqlite_engine, task_queue, fake_esper: FakeEsper) -> None:
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("canary", devices=esper_devices("e-1")),
        StageSpec("fleet", devices=esper_devices("e-2", "e-3"), operations=[
            INSTALL, {"operation_type": "REBOOT", "args": {}}])])
    gateway = EsperGateway(sqlite_engine, CommandEventRelay(sqlite_engine, temporal_client),
                           quick_config(fake_esper))
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue,
                              gateway=gateway):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        result = await result_of(temporal_client, run.id)
    assert result.status == "success"
    commands = commands_of(sqlite_engine, run.id)
    assert len(commands) == 5
    assert {c.gateway for c in commands} == {"esper"} and {c.status for c in commands} == {
        "success"}
    sent = fake_esper.commands()
    assert sorted((c["devices"][0], c["command"]) for c in sent) == [
        ("e-1", "INSTALL"), ("e-2", "INSTALL"), ("e-2", "REBOOT"), ("e-3", "INSTALL"),
        ("e-3", "REBOOT")]
    for command in commands:  # each command is its own Esper request
        assert command.output["esper_request_id"] == records.esper_request_of(
            sqlite_engine, str(command.id))


async def test_a_failing_device_fails_its_target_with_esper_s_reason(
        temporal_client, sqlite_engine, task_queue, fake_esper: FakeEsper) -> None:
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("fleet", devices=esper_devices("e-ok", "fail-e-bad"))])
    gateway = EsperGateway(sqlite_engine, CommandEventRelay(sqlite_engine, temporal_client),
                           quick_config(fake_esper))
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue,
                              gateway=gateway):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        result = await result_of(temporal_client, run.id)
    assert result.status == "failure"
    (stage,) = stage_rows(sqlite_engine, run.id)
    by_status = {t.status: t for t in target_rows(sqlite_engine, stage.id)}
    assert set(by_status) == {"success", "failure"}
    assert by_status["failure"].status_reason == FAILURE_REASON


def _start_worker(client, db_url: str, task_queue: str, fake: FakeEsper,
                  log: Path) -> subprocess.Popen:
    environ = dict(os.environ,
                   FLEETPIPE_TEMPORAL_ADDRESS=client.service_client.config.target_host,
                   FLEETPIPE_DATABASE_URL=db_url, FLEETPIPE_TASK_QUEUE=task_queue,
                   FLEETPIPE_ESPER_URL=fake.url, FLEETPIPE_ESPER_API_KEY=API_KEY,
                   FLEETPIPE_ESPER_ENTERPRISE_ID=ENTERPRISE,
                   FLEETPIPE_ESPER_POLL_INTERVAL_S="0.05",
                   FLEETPIPE_ESPER_POLL_MAX_INTERVAL_S="0.4")
    return subprocess.Popen([sys.executable, "-m", "tests.devices.esper.esper_worker"],
                            cwd=ROOT, env=environ, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


async def test_a_worker_killed_between_create_and_recording_makes_no_second_command(
        temporal_client, sqlite_engine, task_queue, fake_esper: FakeEsper,
        tmp_path: Path) -> None:
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("fleet", devices=esper_devices("e-kill"))])
    # Esper records the create but holds its answer: the worker never learns the request id.
    fake_esper.faults(hold_creates=1, hold_s=120)
    log = tmp_path / "worker.log"
    db_url = str(sqlite_engine.url)
    first = _start_worker(temporal_client, db_url, task_queue, fake_esper, log)
    second = None
    try:
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        await wait_for(lambda: fake_esper.commands_for("e-kill"), timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        [command] = commands_of(sqlite_engine, run.id)
        assert records.esper_request_of(sqlite_engine, str(command.id)) is None  # unrecorded
        fake_esper.release()
        second = _start_worker(temporal_client, db_url, task_queue, fake_esper, log)
        result = await result_of(temporal_client, run.id, timeout=120)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
    assert result.status == "success", log.read_text()[-3000:]
    [sent] = fake_esper.commands_for("e-kill")  # one Esper command for the target run
    [command] = commands_of(sqlite_engine, run.id)
    assert command.status == "success"
    assert records.esper_request_of(sqlite_engine, str(command.id)) == sent["id"]
    creates = [r for r in fake_esper.requests() if r["kind"] == "create"]
    assert len(creates) == 1, creates
    assert "found its Esper request" in log.read_text()


async def test_a_timed_out_target_s_command_is_no_longer_polled(
        temporal_client, sqlite_engine, task_queue, fake_esper: FakeEsper) -> None:
    """Esper cannot cancel it, and an offline device never ends it: once its target run has
    timed out, the gateway stops spending requests on it."""
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("fleet", devices=esper_devices("offline-e-1"), timeout_seconds=3)])
    gateway = EsperGateway(sqlite_engine, CommandEventRelay(sqlite_engine, temporal_client),
                           quick_config(fake_esper, lease_s=1.5))
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue,
                              gateway=gateway):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        result = await result_of(temporal_client, run.id)
        assert result.status == "failure"
        (stage,) = stage_rows(sqlite_engine, run.id)
        assert [t.status for t in target_rows(sqlite_engine, stage.id)] == ["timeout"]
        await wait_for(lambda: not gateway.tracked, timeout=30)
        polls = sum(1 for r in fake_esper.requests() if r["kind"] == "status")
        await asyncio.sleep(1.5)
        assert sum(1 for r in fake_esper.requests() if r["kind"] == "status") == polls
    assert polls > 0
