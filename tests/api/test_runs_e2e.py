"""Runs over HTTP against the real stack: the API, a real worker with the simulated fleet, the
Temporal dev server and SQLite. No test asserts how fast a request answers: bench/api_poll.py
reports that."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from temporalio.client import Client

from tests.api.conftest import Api, api_for, settings_for
from tests.api.live_stack import live_stack
from tests.api.test_definitions import INSTALL
from tests.api.test_envelope_auth import assert_error
from worker import running_worker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def live(sqlite_engine: Engine, temporal_client: Client,
               task_queue: str) -> AsyncIterator[Api]:
    async with live_stack(sqlite_engine, temporal_client, task_queue) as api:
        yield api


async def until(api: Api, path: str, check: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    """GET `path` until `check(content)`; the last content otherwise fails the test."""
    deadline = time.monotonic() + timeout
    content = None
    while time.monotonic() < deadline:
        content = await api.ok("GET", path)
        if check(content):
            return content
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never satisfied the check; last: {content}")


async def devices(api: Api, count: int, behavior: str = "succeed", prefix: str = "dev") -> list:
    return [(await api.ok("POST", "/devices", {
        "name": f"{prefix}-{i}", "attributes": {"sim_behavior": behavior}}, 201))["id"]
        for i in range(count)]


async def running_stage(api: Api, name: str, device_ids: list[str]) -> tuple[str, str, str]:
    """(pipeline run path, stage run id, target runs path) of a one-stage INSTALL run under
    way over these devices."""
    pipeline = await api.ok("POST", "/pipelines", {"name": name, "stages": [
        {"name": "only", "device_ids": device_ids, "operations": [INSTALL]}]}, 201)
    run = await api.ok("POST", f"/pipelines/{pipeline['id']}/runs", {})
    stage_runs = await until(api, f"/runs/{run['id']}/stageruns",
                             lambda c: c["count"] == 1
                             and c["results"][0]["status"] == "running")
    stage_run_id = stage_runs["results"][0]["id"]
    return (f"/pipelines/{pipeline['id']}/runs/{run['id']}", stage_run_id,
            f"/stageruns/{stage_run_id}/targetruns")


async def test_gate_promotion_success_then_a_run_cancelled_at_the_gate(live: Api):
    api = live
    ids = await devices(api, 5)
    pipeline = await api.ok("POST", "/pipelines", {"name": "rollout", "stages": [
        {"name": "canary", "device_ids": ids[:2], "operations": [INSTALL]},
        {"name": "fleet", "trigger": "manual", "device_ids": ids[2:], "operations": [INSTALL]},
    ]}, 201)
    runs = f"/pipelines/{pipeline['id']}/runs"
    run = await api.ok("POST", runs, {})
    assert run["run_number"] == 1 and run["pipeline_name"] == "rollout"
    one = f"{runs}/{run['id']}"
    await until(api, one, lambda r: r["status"] == "waiting")
    stage_runs = (await api.ok("GET", f"/runs/{run['id']}/stageruns"))["results"]
    canary, fleet = stage_runs
    assert canary["status"] == "success" and canary["target_run_counts"]["success"] == 2
    assert fleet["status"] == "pending"

    # the canary is over: promoting it is refused; a value that is no action is refused
    assert_error(await api.put(f"/runs/{run['id']}/stageruns/{canary['id']}",
                               {"status": "queued"}), 400, "success")
    assert_error(await api.put(f"/runs/{run['id']}/stageruns/{fleet['id']}",
                               {"status": "success"}), 400, "queued, cancelled")
    promoted = await api.ok("PUT", f"/runs/{run['id']}/stageruns/{fleet['id']}",
                            {"status": "QUEUED"})
    assert promoted["status"] != "pending"  # the response shows the state after the action
    done = await until(api, one, lambda r: r["status"] in ("success", "failure"))
    assert done["status"] == "success" and done["ended_at"] and done["started_at"]
    for stage_run in (await api.ok("GET", f"/runs/{run['id']}/stageruns"))["results"]:
        targets = await api.ok("GET", f"/stageruns/{stage_run['id']}/targetruns")
        assert targets["results"]
        assert {t["status"] for t in targets["results"]} == {"success"}
        assert {t["command_status"] for t in targets["results"]} == {"success"}
        first = targets["results"][0]
        command = await api.ok(
            "GET", f"/stageruns/{stage_run['id']}/targetruns/{first['id']}/command")
        assert command["status"] == "success" and command["events"]
    assert_error(await api.put(one, {"status": "cancelled"}), 400, "success")
    assert_error(await api.post(f"/stageruns/{fleet['id']}/targetruns", {"target_id": ids[0]}),
                 400, "success")

    # a second run, paused and then cancelled at the gate
    second = await api.ok("POST", runs + "/", {})
    assert second["run_number"] == 2
    two = f"{runs}/{second['id']}"
    await until(api, two, lambda r: r["status"] == "waiting")
    paused = await api.ok("PUT", two, {"status": "waiting"})
    assert paused["status"] == "waiting"
    refused = assert_error(await api.put(two, {"status": "Waiting"}), 400, "allowed")
    assert "running" in refused["message"]  # the workflow's validator names what it takes now
    cancelled = await api.ok("PUT", two, {"status": "CANCELLED"})
    assert cancelled["status"] == "cancelled" and cancelled["ended_at"]
    second_stages = (await api.ok("GET", f"/runs/{second['id']}/stageruns"))["results"]
    assert [s["status"] for s in second_stages] == ["success", "cancelled"]
    assert_error(await api.put(two, {"status": "running"}), 400, "cancelled")

    # a third run: cancelling the stage run at the gate cancels the run
    third = await api.ok("POST", runs, {})
    three = f"{runs}/{third['id']}"
    await until(api, three, lambda r: r["status"] == "waiting")
    gate = (await api.ok("GET", f"/runs/{third['id']}/stageruns?status=pending"))["results"][0]
    stage_cancelled = await api.ok("PUT", f"/runs/{third['id']}/stageruns/{gate['id']}",
                                   {"status": "Cancelled"})
    assert stage_cancelled["status"] == "cancelled"
    assert (await api.ok("GET", three))["status"] == "cancelled"

    listed = await api.ok("GET", "/runs?pipeline_name=rollout&ordering=-run_number")
    assert [(r["run_number"], r["status"]) for r in listed["results"]] == [
        (3, "cancelled"), (2, "cancelled"), (1, "success")]
    await api.ok("DELETE", two)
    assert (await api.ok("GET", runs))["count"] == 2


async def test_a_pipeline_without_stages_ends_invalid(live: Api):
    pipeline = await live.ok("POST", "/pipelines", {"name": "empty"}, 201)
    run = await live.ok("POST", f"/pipelines/{pipeline['id']}/runs")
    ended = await until(live, f"/pipelines/{pipeline['id']}/runs/{run['id']}",
                        lambda r: r["status"] == "invalid")
    assert ended["ended_at"]
    assert (await live.ok("GET", f"/runs/{run['id']}/stageruns"))["count"] == 0


async def test_target_actions_device_events_and_command_cancel(live: Api):
    api = live
    offline = await devices(api, 3, "offline", prefix="off")
    pipeline = await api.ok("POST", "/pipelines", {"name": "slow", "stages": [
        {"name": "only", "device_ids": offline[:2], "operations": [INSTALL],
         "rollout": {"maximum_per_minute": 1}},
    ]}, 201)
    run = await api.ok("POST", f"/pipelines/{pipeline['id']}/runs", None)
    stage_runs = await until(api, f"/runs/{run['id']}/stageruns",
                             lambda c: c["count"] == 1
                             and c["results"][0]["status"] == "running")
    stage_run = stage_runs["results"][0]
    base = f"/stageruns/{stage_run['id']}/targetruns"
    targets = await until(api, base + "?ordering=-status",
                          lambda c: c["count"] == 2
                          and c["results"][0]["command_status"] == "queued")
    dispatched, held = targets["results"]
    assert held["status"] == "pending"  # one a minute: the second waits

    cancelled = await api.ok("PUT", f"{base}/{held['id']}", {"status": "Cancelled"})
    assert cancelled["status"] == "cancelled"
    assert_error(await api.put(f"{base}/{dispatched['id']}", {"status": "cancelled"}), 400,
                 "dispatched")

    added = await api.ok("POST", base, {"target_id": offline[2], "device_alias": "late"})
    assert len(added) == 1 and added[0]["status"] == "pending"
    assert added[0]["device_name"] == "off-2" and added[0]["device_alias"] == "late"
    again = await api.ok("POST", base, {"target_id": offline[2]})
    assert [t["id"] for t in again] == [added[0]["id"]]  # already there: the same target run

    command_id = dispatched["command_id"]
    events = f"/commands/{command_id}/events"
    first = await api.ok("POST", events, {"status": "INPROGRESS", "sequence": 5})
    assert (first["applied"], first["status"]) == (1, "inprogress")
    duplicate = await api.ok("POST", events, {"status": "inprogress", "sequence": 5})
    assert duplicate["applied"] == 0
    older = await api.ok("POST", events, {"status": "acknowledged", "sequence": 4})
    assert (older["applied"], older["status"]) == (0, "inprogress")
    running = await until(api, f"{base}/{dispatched['id']}", lambda t: t["status"] == "running")
    assert running["command_status"] == "inprogress"

    finished = await api.ok("POST", events, {"status": "success", "sequence": 9,
                                             "output": {"installed": "1.2.3"}})
    assert (finished["applied"], finished["status"]) == (1, "success")
    done = await until(api, f"{base}/{dispatched['id']}", lambda t: t["status"] == "success")
    assert done["command_status"] == "success"
    command = await api.ok("GET", f"{base}/{dispatched['id']}/command")
    assert command["output"] == {"installed": "1.2.3"}
    assert [e["applied"] for e in command["events"]][-4:] == [True, False, False, True]
    assert_error(await api.put(f"{base}/{dispatched['id']}/command/{command_id}",
                               {"request_status": "cancelled"}), 400, "success")
    assert_error(await api.post(f"{base}/{dispatched['id']}/command", {}), 400, "is success",
                 "failure, timeout, cancelled")

    stopped = await api.ok("PUT", f"/pipelines/{pipeline['id']}/runs/{run['id']}",
                           {"status": "cancelled"})
    assert stopped["status"] == "cancelled"
    late = await until(api, f"{base}/{added[0]['id']}", lambda t: t["status"] == "cancelled")
    assert late["ended_at"]


async def test_cancel_a_dispatched_command(live: Api):
    api = live
    offline = await devices(api, 1, "offline", prefix="off")
    run_path, _, base = await running_stage(api, "silent", offline)
    targets = await until(api, base, lambda c: c["count"] == 1
                          and c["results"][0]["command_status"] == "queued")
    target = targets["results"][0]
    command_path = f"{base}/{target['id']}/command/{target['command_id']}"
    result = await api.ok("PUT", command_path, {"request_status": "CANCELLED"})
    assert result["status"] == "cancelled"
    ended = await until(api, f"{base}/{target['id']}", lambda t: t["status"] == "failure")
    assert ended["command_status"] == "cancelled"
    assert_error(await api.put(command_path, {"request_status": "cancelled"}), 400, "cancelled")
    ended_run = await until(api, run_path, lambda r: r["status"] in ("success", "failure"))
    assert ended_run["status"] == "failure"


@pytest.fixture
async def live_worker_process(sqlite_engine: Engine, temporal_client: Client,
                              task_queue: str) -> AsyncIterator[Api]:
    """The deployed shape: the worker in its own process (`python worker.py`), the API here."""
    env = {**os.environ,
           "FLEETPIPE_TEMPORAL_ADDRESS": temporal_client.service_client.config.target_host,
           "FLEETPIPE_DATABASE_URL": str(sqlite_engine.url),
           "FLEETPIPE_TASK_QUEUE": task_queue}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", env=env, cwd=Path(__file__).resolve().parents[2],
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        settings = settings_for(task_queue=task_queue)
        async with api_for(sqlite_engine, temporal_client=temporal_client,
                           settings=settings) as api:
            yield api
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


async def test_reads_and_actions_answer_during_a_large_run(live_worker_process: Api):
    """A 400-device stage in flight (commands take 2.5 s each) with the worker in its own
    process: lists, counts, single reads and actions all answer (how fast is
    bench/api_poll.py's figure, not this test's)."""
    from sqlmodel import Session

    from store.definitions.devices import Device

    api = live_worker_process
    with Session(api.engine) as session:
        rows = [Device(enterprise_id=api.enterprise_id, name=f"bulk-{i:04d}",
                       attributes={"sim_latency_ms": "2500"}) for i in range(400)]
        session.add_all(rows)
        session.commit()
        ids = [str(row.id) for row in rows]
    pipeline = await api.ok("POST", "/pipelines", {"name": "bulk", "stages": [
        {"name": "all", "device_ids": ids, "operations": [INSTALL]}]}, 201)
    run = await api.ok("POST", f"/pipelines/{pipeline['id']}/runs", {})
    stage_runs = await until(api, f"/runs/{run['id']}/stageruns",
                             lambda c: c["count"] == 1
                             and c["results"][0]["target_run_counts"]["running"]
                             + c["results"][0]["target_run_counts"]["dispatched"] > 20)
    stage_run = stage_runs["results"][0]
    base = f"/stageruns/{stage_run['id']}/targetruns"
    for _ in range(3):
        for path in ["/runs", "/runs?ordering=-status&limit=1000", f"/runs/{run['id']}/stageruns",
                     f"{base}?limit=1000", f"{base}?limit=1000&ordering=-status",
                     f"{base}?status=running&limit=1000", "/devices?limit=1000",
                     f"/pipelines/{pipeline['id']}"]:
            content = await api.ok("GET", path)
            assert content is not None
    page = await api.ok("GET", f"{base}?limit=1000")
    assert page["count"] == 400 and len(page["results"]) == 400
    # Actions answer too: 200 once applied, or 202 while a busy run applies it.
    one = f"/pipelines/{pipeline['id']}/runs/{run['id']}"
    paused = await api.put(one, {"status": "waiting"})
    assert paused.status_code in (200, 202), paused.text
    assert paused.json()["code"] == paused.status_code
    await until(api, one, lambda r: r["status"] == "waiting", timeout=30)
    resumed = await api.put(one, {"status": "running"})
    assert resumed.status_code in (200, 202), resumed.text
    await until(api, one, lambda r: r["status"] in ("running", "success"), timeout=30)
    # (the run finishes on its own; the worker process stops with the test)


async def test_an_action_the_run_cannot_answer_in_time_is_202_and_still_applies(
        sqlite_engine: Engine, temporal_client: Client, task_queue: str):
    settings = settings_for(task_queue=task_queue)
    async with api_for(sqlite_engine, temporal_client=temporal_client,
                       settings=settings) as api:
        ids = await devices(api, 2)
        pipeline = await api.ok("POST", "/pipelines", {"name": "gated", "stages": [
            {"name": "a", "device_ids": ids[:1], "operations": [INSTALL]},
            {"name": "b", "trigger": "manual", "device_ids": ids[1:], "operations": [INSTALL]},
        ]}, 201)
        one = f"/pipelines/{pipeline['id']}/runs"
        async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
            run = await api.ok("POST", one, {})
            one += f"/{run['id']}"
            await until(api, one, lambda r: r["status"] == "waiting")
        # no worker now: the workflow cannot answer; the API answers 202 instead of waiting
        response = await api.put(one, {"status": "cancelled"})
        body = response.json()
        assert response.status_code == 202 and body["code"] == 202, body
        assert "Accepted" in body["message"] and body["content"]["status"] == "waiting"
        async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
            ended = await until(api, one, lambda r: r["status"] == "cancelled", timeout=45)
        assert ended["ended_at"]
