"""A small pipeline through the real worker (`worker.serve`, as `python worker.py` runs it) and
the real API (uvicorn in its own process), both read over real HTTP while the run goes: the
metrics of issue 10 with non-zero values, bounded labels, readiness of the worker, and JSON
log lines that carry the ids and never the API key."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

import worker
from cli.dev_stack import api_command
from devices.simulated import SimulatedFleet
from domain.commands import DeviceCommand
from settings import Settings
from store.db import make_engine
from store.definitions.tenants import create_token
from store.migrations import upgrade
from tests.builders import StageSpec, make_pipeline
from tests.observability.test_readiness import free_port

BASE = "/api/pipelines/v0"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DEVICES = 4


Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Samples:
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), sample.value))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(value for found, value in samples.get(name, [])
               if all(found.get(k) == v for k, v in labels.items()))


def assert_bounded_labels(samples: Samples) -> None:
    for name, rows in samples.items():
        if name.startswith("fleetpipe_"):
            for labels, _ in rows:
                assert not any(UUID_RE.search(v) for v in labels.values()), (name, labels)


class FlakyGateway:
    """The first send of every command fails, as a gateway that drops a connection would; the
    dispatch activity's retry sends it again."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.failed: set[str] = set()
        original = SimulatedFleet.send

        async def send(fleet: SimulatedFleet, command: DeviceCommand) -> None:
            if command.command_id not in self.failed:
                self.failed.add(command.command_id)
                raise ConnectionResetError("simulated gateway connection reset")
            await original(fleet, command)

        monkeypatch.setattr(SimulatedFleet, "send", send)


@dataclass
class Stack:
    api: str
    worker: str
    key: str
    pipeline_id: str
    api_log: Path


@pytest.fixture
async def stack(tmp_path: Path, temporal_env: WorkflowEnvironment, task_queue: str,
                monkeypatch: pytest.MonkeyPatch,
                every_line: io.StringIO) -> AsyncIterator[Stack]:
    FlakyGateway(monkeypatch)
    database_url = f"sqlite:///{tmp_path / 'fleetpipe.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    enterprise_id, pipeline_id = make_pipeline(engine, [
        StageSpec("canary", devices=[{"sim_latency_ms": "1500"} for _ in range(DEVICES)])])
    key = create_token(engine, enterprise_id, "metrics test")
    engine.dispose()
    address = temporal_env.client.service_client.config.target_host
    api_port, worker_port = free_port(), free_port()
    settings = Settings(database_url=database_url, temporal_address=address,
                        task_queue=task_queue, worker_metrics_port=worker_port)
    stop = asyncio.Event()
    served = asyncio.create_task(worker.serve(settings, stop=stop))

    env = {**os.environ, "FLEETPIPE_DATABASE_URL": database_url,
           "FLEETPIPE_TEMPORAL_ADDRESS": address, "FLEETPIPE_TASK_QUEUE": task_queue,
           "FLEETPIPE_API_HOST": "127.0.0.1", "FLEETPIPE_API_PORT": str(api_port),
           "FLEETPIPE_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
    api_log = tmp_path / "api.log"
    with api_log.open("w") as log_file:  # `fleetpipe api` runs this command
        api = subprocess.Popen(api_command(), env=env, stdout=log_file,
                               stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2])
    try:
        urls = Stack(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{worker_port}", key,
                     str(pipeline_id), api_log)
        await until_answers(f"{urls.api}/healthz", api)
        await until_answers(f"{urls.worker}/healthz", None, served)
        yield urls
    finally:
        api.terminate()
        api.wait(timeout=30)
        stop.set()
        await asyncio.wait_for(served, 60)


async def until_answers(url: str, process: subprocess.Popen[bytes] | None,
                        task: asyncio.Task[None] | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                pytest.fail(f"the API exited with {process.returncode}")
            if task is not None and task.done():
                task.result()  # raises what stopped the worker
                pytest.fail("the worker stopped")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout} s")


async def scrape(client: httpx.AsyncClient, url: str) -> Samples:
    response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def test_metrics_health_and_logs_during_a_run(stack: Stack,
                                                    every_line: io.StringIO) -> None:
    request_id = f"e2e-{uuid.uuid4().hex[:8]}"
    auth = {"Authorization": f"Token {stack.key}"}
    async with httpx.AsyncClient(timeout=10, headers=auth) as client:
        # The worker's counters are this test process's: count from here.
        before = await scrape(client, f"{stack.worker}/metrics")
        created = await client.post(f"{stack.api}{BASE}/pipelines/{stack.pipeline_id}/runs",
                                    headers={"X-Request-ID": request_id})
        assert created.status_code == 200, created.text
        assert created.headers["x-request-id"] == request_id
        run_id = created.json()["content"]["id"]
        run_path = f"{stack.api}{BASE}/pipelines/{stack.pipeline_id}/runs/{run_id}"

        # During the run: its targets occupy the stage window (the devices take 1.5 s).
        deadline = time.monotonic() + 60
        while True:
            during = await scrape(client, f"{stack.worker}/metrics")
            if total(during, "fleetpipe_stage_window_occupancy") > 0:
                break
            assert time.monotonic() < deadline, "no target run was ever seen in flight"
            await asyncio.sleep(0.1)
        assert total(during, "fleetpipe_stage_runs_running") == 1
        assert total(during, "fleetpipe_store_sample_up") == 1

        ready = await client.get(f"{stack.worker}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"store": "ok", "migrations": "ok", "temporal": "ok",
                                          "worker": "ok"}

        while (await client.get(run_path)).json()["content"]["status"] != "success":
            assert time.monotonic() < deadline, "the run did not succeed"
            await asyncio.sleep(0.2)

        ours = await scrape(client, f"{stack.worker}/metrics")
        api = await scrape(client, f"{stack.api}/metrics")

    def grew(name: str, **labels: str) -> float:
        return total(ours, name, **labels) - total(before, name, **labels)

    assert grew("fleetpipe_target_runs_started_total", gateway="simulated") == DEVICES
    assert grew("fleetpipe_target_runs_finished_total", status="success",
                gateway="simulated") == DEVICES
    assert grew("fleetpipe_command_latency_seconds_count", status="success",
                gateway="simulated") == DEVICES
    # Every command took at least its device's 1.5 s from dispatch to success.
    assert grew("fleetpipe_command_latency_seconds_sum") >= DEVICES * 1.5
    assert grew("fleetpipe_gateway_errors_total", gateway="simulated", operation="send",
                kind="ConnectionResetError") == DEVICES
    assert "fleetpipe_signals_owed" in ours
    assert total(ours, "fleetpipe_stage_window_occupancy") == 0  # the stage is over
    # The Temporal SDK's own metrics, on the same port.
    assert total(ours, "fleetpipe_temporal_sdk_metrics_up") == 1
    assert total(ours, "temporal_workflow_completed_total") >= 1 + 1 + DEVICES
    assert total(ours, "temporal_request_total") > 0
    assert_bounded_labels(ours)

    create_route = f"{BASE}/pipelines/{{pipeline_id}}/runs"
    assert total(api, "fleetpipe_api_requests_total", method="POST", route=create_route,
                 status="200") == 1
    assert total(api, "fleetpipe_api_requests_total", method="GET",
                 route=f"{create_route}/{{pipeline_run_id}}", status="200") >= 1
    assert total(api, "fleetpipe_api_request_duration_seconds_count", method="POST",
                 route=create_route) == 1
    assert_bounded_labels(api)

    # The worker's JSON lines: the gateway's refusal names the run, stage, target and command.
    lines = [json.loads(line) for line in every_line.getvalue().splitlines()]
    refused = [line for line in lines if "did not take command" in line["message"]]
    assert len(refused) == DEVICES
    assert {line["pipeline_run_id"] for line in refused} == {run_id}
    assert all(line["stage_run_id"] and line["target_run_id"] and line["command_id"]
               for line in refused)
    assert all(line["level"] == "warning" for line in refused)

    # The API's log (FLEETPIPE_LOG_FORMAT=json): only JSON lines, the request id on the
    # request's line, and the key nowhere.
    text = stack.api_log.read_text()
    assert stack.key not in text
    api_lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    posted = [line for line in api_lines if line.get("request_id") == request_id
              and line["logger"] == "fleetpipe.api.requests"]
    assert len(posted) == 1, api_lines
    assert posted[0]["route"] == create_route and posted[0]["status"] == 200
    assert posted[0]["message"].startswith(f"POST {BASE}/pipelines/{stack.pipeline_id}/runs 200")
    assert any(line["logger"].startswith("uvicorn") for line in api_lines)  # uvicorn's too
    assert stack.key not in every_line.getvalue()
