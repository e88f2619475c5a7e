"""Concurrency keys over HTTP: the key is part of the run's shape, a second run with the key
waits `queued` (and a pause is refused there, a cancel leaves the line), and a bad key is a 400
in the envelope with nothing made."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import Engine
from temporalio.client import Client

from tests.api.conftest import Api
from tests.api.live_stack import live_stack
from tests.api.test_definitions import INSTALL
from tests.api.test_envelope_auth import assert_error
from tests.api.test_runs_e2e import until

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
async def live(sqlite_engine: Engine, temporal_client: Client,
               task_queue: str) -> AsyncIterator[Api]:
    async with live_stack(sqlite_engine, temporal_client, task_queue) as api:
        yield api


async def _pipeline(api: Api, latency_ms: str) -> str:
    device = await api.ok("POST", "/devices", {
        "name": "slow", "attributes": {"sim_latency_ms": latency_ms}}, 201)
    pipeline = await api.ok("POST", "/pipelines", {"name": "keyed", "stages": [
        {"name": "only", "device_ids": [device["id"]], "operations": [INSTALL]}]}, 201)
    return f"/pipelines/{pipeline['id']}/runs"


async def test_a_second_run_with_the_key_waits_queued_and_a_cancel_takes_it_out(live: Api):
    api = live
    runs = await _pipeline(api, "3000")
    first = await api.ok("POST", runs, {"concurrency_key": "site-1"})
    assert first["concurrency_key"] == "site-1"
    await until(api, f"{runs}/{first['id']}", lambda r: r["status"] == "running")
    second = await api.ok("POST", runs, {"concurrency_key": "site-1"})
    one, two = f"{runs}/{first['id']}", f"{runs}/{second['id']}"
    queued = await until(api, two, lambda r: r["status"] == "queued")
    assert queued["started_at"] is None
    assert queued["status_reason"].startswith(f"queued behind run {first['id']}")
    assert (await api.ok("GET", f"/runs/{second['id']}/stageruns"))["count"] == 0
    listed = await api.ok("GET", "/runs?status=queued")
    assert [r["id"] for r in listed["results"]] == [second["id"]]
    # A queued run takes a cancel, not a pause.
    assert_error(await api.put(two, {"status": "waiting"}), 400, "cancelled")
    cancelled = await api.ok("PUT", two, {"status": "cancelled"})
    assert cancelled["status"] == "cancelled" and cancelled["started_at"] is None
    assert (await api.ok("GET", one))["status"] == "running"
    done = await until(api, one, lambda r: r["status"] == "success")
    assert done["concurrency_key"] == "site-1"
    # Without a key the field is null.
    plain = await api.ok("POST", runs, {})
    assert plain["concurrency_key"] is None


@pytest.mark.parametrize("key, words", [
    ("", ["concurrency_key", "at least 1"]),
    ("k" * 129, ["concurrency_key", "at most 128"]),
    (" padded", ["concurrency_key", "whitespace"]),
    ("tab\tkey", ["concurrency_key", "control characters"]),
    (7, ["concurrency_key"]),
])
async def test_a_bad_concurrency_key_is_a_400_and_makes_no_run(api: Api, key, words):
    device = await api.ok("POST", "/devices", {"name": "d"}, 201)
    pipeline = await api.ok("POST", "/pipelines", {"name": "p", "stages": [
        {"name": "only", "device_ids": [device["id"]], "operations": [INSTALL]}]}, 201)
    runs = f"/pipelines/{pipeline['id']}/runs"
    assert_error(await api.post(runs, {"concurrency_key": key}), 400, *words)
    assert (await api.ok("GET", runs))["count"] == 0
