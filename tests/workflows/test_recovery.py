"""Crash safety: a killed worker, and retried dispatches, never send a command twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlmodel import func, select

from control.launch import start_pipeline_run
from devices.sim_records import SimDelivery, create_tables
from devices.simulated import SimulatedFleet
from store.db import transaction
from tests.builders import REBOOT, StageSpec, make_pipeline
from tests.workflows.helpers import commands_of, result_of, stage_rows, target_rows, wait_for
from worker import running_worker

ROOT = Path(__file__).resolve().parents[2]


def _deliveries(engine) -> int:
    """Commands the simulated gateway delivered to a device (at most one row per command)."""
    with transaction(engine) as session:
        return session.exec(select(func.count()).select_from(SimDelivery)).one()


def _start_worker(env, db_url: str, task_queue: str, log: Path) -> subprocess.Popen:
    environ = dict(os.environ,
                   FLEETPIPE_TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
                   FLEETPIPE_DATABASE_URL=db_url, FLEETPIPE_TASK_QUEUE=task_queue)
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], cwd=ROOT, env=environ,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


async def test_worker_killed_mid_run_finishes_after_restart_without_duplicate_commands(
        temporal_env, sqlite_engine, task_queue, tmp_path):
    slow = {"sim_latency_ms": "1500"}
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("fleet", devices=[slow] * 6, operations=[REBOOT, REBOOT])])
    db_url = str(sqlite_engine.url)
    create_tables(sqlite_engine)  # the worker's fleet makes it too; counting starts before that
    log = tmp_path / "worker.log"
    first = _start_worker(temporal_env, db_url, task_queue, log)
    try:
        run = await start_pipeline_run(temporal_env.client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        # Kill it while commands are out on devices.
        await wait_for(lambda: _deliveries(sqlite_engine) >= 3, timeout=90)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        (stage,) = stage_rows(sqlite_engine, run.id)
        killed_at = [t.status for t in target_rows(sqlite_engine, stage.id)]
        assert not all(status == "success" for status in killed_at)  # really mid-run
        second = _start_worker(temporal_env, db_url, task_queue, log)
        try:
            result = await result_of(temporal_env.client, run.id, timeout=120)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0, log.read_text()[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
    assert result.status == "success", log.read_text()[-3000:]
    targets = target_rows(sqlite_engine, stage.id)
    assert len(targets) == 12 and {t.status for t in targets} == {"success"}
    # One command per target (no second attempt after the restart), each delivered.
    assert len(commands_of(sqlite_engine, run.id)) == 12
    assert _deliveries(sqlite_engine) == 12


class LostAckGateway(SimulatedFleet):
    """Delivers the command, then fails the call once per command, as a gateway whose
    acknowledgement got lost would: the dispatch activity fails and is retried."""

    lost_acks = 0

    async def send(self, command) -> None:  # noqa: ANN001
        await super().send(command)
        if self.send_calls[command.command_id] == 1:
            self.lost_acks += 1
            raise ConnectionError("acknowledgement lost")


async def test_retried_dispatch_never_sends_a_second_command(
        temporal_client, sqlite_engine, task_queue):
    enterprise_id, pipeline_id = make_pipeline(sqlite_engine, [
        StageSpec("fleet", devices=[{}, {}, {}])])
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue) as running:
        relay = running.relay
    gateway = LostAckGateway(sqlite_engine, relay)
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue,
                              gateway=gateway):
        run = await start_pipeline_run(temporal_client, sqlite_engine,
                                       enterprise_id=enterprise_id, pipeline_id=pipeline_id,
                                       task_queue=task_queue)
        result = await result_of(temporal_client, run.id)
    assert result.status == "success"
    commands = commands_of(sqlite_engine, run.id)
    assert len(commands) == 3
    assert gateway.lost_acks == 3  # every first dispatch failed, so every success is a retry
    for command in commands:
        # The retry found the command already delivered and did not send it again.
        assert gateway.send_calls[str(command.id)] == 1
        assert gateway.deliveries[str(command.id)] == 1
