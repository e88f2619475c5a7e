"""A waiting pipeline run says why (`waiting_for`): the gate it waits at, or who paused it and
since when, through the real API, worker and Temporal dev server."""

from __future__ import annotations

import pytest

from store.definitions.tenants import caller_for_hash, hash_key
from tests.api.conftest import Api
from tests.api.test_definitions import INSTALL
from tests.api.test_runs_e2e import live, until  # noqa: F401  (the fixture)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def test_waiting_for_names_the_gate_then_the_pause_and_who_paused(live: Api):  # noqa: F811
    api = live
    caller = caller_for_hash(api.engine, hash_key(api.key))
    assert caller is not None
    slow = [(await api.ok("POST", "/devices", {"name": f"slow-{i}", "attributes": {
        "sim_latency_ms": "4000"}}, 201))["id"] for i in range(2)]
    fleet = [(await api.ok("POST", "/devices", {"name": "fleet-0"}, 201))["id"]]
    pipeline = await api.ok("POST", "/pipelines", {"name": "why-wait", "stages": [
        {"name": "canary", "device_ids": slow, "operations": [INSTALL]},
        {"name": "fleet", "trigger": "manual", "device_ids": fleet, "operations": [INSTALL]},
    ]}, 201)
    run = await api.ok("POST", f"/pipelines/{pipeline['id']}/runs", {})
    one = f"/pipelines/{pipeline['id']}/runs/{run['id']}"
    assert run["waiting_for"] is None

    # paused while the canary runs: a pause, by this key
    await until(api, one, lambda r: r["status"] == "running")
    paused = await api.ok("PUT", one, {"status": "waiting"})
    assert paused["status"] == "waiting"
    pause = paused["waiting_for"]
    assert pause["kind"] == "pause" and pause["by"] == str(caller.key_id)
    assert pause["by_name"] == "tests" and pause["at"]
    listed = await api.ok("GET", "/runs?pipeline_name=why-wait")
    assert listed["results"][0]["waiting_for"] == pause
    resumed = await api.ok("PUT", one, {"status": "running"})
    assert resumed["status"] == "running" and resumed["waiting_for"] is None

    # at the manual gate: the gate, with the stage
    at_gate = await until(api, one, lambda r: r["status"] == "waiting")
    stage_runs = (await api.ok("GET", f"/runs/{run['id']}/stageruns"))["results"]
    gate = at_gate["waiting_for"]
    assert gate == {"kind": "gate", "stage_run_id": stage_runs[1]["id"], "stage_name": "fleet",
                    "stage_order": stage_runs[1]["order"]}

    # paused at the gate: the pause comes first (running resumes it), then the gate again
    paused = await api.ok("PUT", one, {"status": "waiting"})
    assert paused["waiting_for"]["kind"] == "pause"
    resumed = await api.ok("PUT", one, {"status": "running"})
    assert resumed["status"] == "waiting" and resumed["waiting_for"] == gate

    # passing the gate clears it
    await api.ok("PUT", one, {"status": "running"})
    done = await until(api, one, lambda r: r["status"] in ("success", "failure"))
    assert done["status"] == "success" and done["waiting_for"] is None
