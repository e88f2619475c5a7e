"""Retrying finished runs over HTTP against the real stack (API, worker with the simulated
fleet, the Temporal dev server, SQLite): which target runs are sent again, which are carried
over, which stages run; the refusals; the steps view."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from temporalio.client import Client

from tests.api.conftest import Api
from tests.api.live_stack import live_stack
from tests.api.test_definitions import INSTALL
from tests.api.test_envelope_auth import assert_error
from tests.api.test_runs_e2e import devices, until

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REBOOT = {"operation_type": "REBOOT"}
ENDED = ("success", "failure", "cancelled", "timeout", "invalid")


@pytest.fixture
async def live(sqlite_engine: Engine, temporal_client: Client,
               task_queue: str) -> AsyncIterator[Api]:
    async with live_stack(sqlite_engine, temporal_client, task_queue) as api:
        yield api


async def _stage_targets(api: Api, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Each stage run's target runs, by stage name."""
    found = {}
    for stage_run in (await api.ok("GET", f"/runs/{run_id}/stageruns"))["results"]:
        rows = await api.ok("GET", f"/stageruns/{stage_run['id']}/targetruns?limit=1000")
        found[stage_run["stage_name"]] = rows["results"]
    return found


async def _set_behavior(api: Api, device_ids: list[str], behavior: str) -> None:
    for device_id in device_ids:
        await api.ok("PUT", f"/devices/{device_id}",
                     {"attributes": {"sim_behavior": behavior}})


async def _failed_three_stage_run(api: Api) -> tuple[dict, dict, list[str], list[str]]:
    """A run whose second stage failed for one device (both its operations) and whose third
    stage was never reached: (pipeline, the ended run, good devices, the failing device)."""
    good = await devices(api, 3, prefix="good")
    bad = await devices(api, 1, "fail", prefix="bad")
    pipeline = await api.ok("POST", "/pipelines", {"name": "retried", "stages": [
        {"name": "canary", "device_ids": good[:1], "operations": [INSTALL]},
        {"name": "wave", "trigger": "automatic", "device_ids": [good[1], bad[0]],
         "operations": [INSTALL, REBOOT]},
        {"name": "rest", "trigger": "automatic", "device_ids": good[2:],
         "operations": [INSTALL]},
    ]}, 201)
    run = await api.ok("POST", f"/pipelines/{pipeline['id']}/runs", {})
    ended = await until(api, f"/pipelines/{pipeline['id']}/runs/{run['id']}",
                        lambda r: r["status"] in ENDED)
    assert ended["status"] == "failure"
    return pipeline, ended, good, bad


async def test_from_failed_sends_again_only_what_did_not_succeed(live: Api):
    api = live
    pipeline, first, good, bad = await _failed_three_stage_run(api)
    runs = f"/pipelines/{pipeline['id']}/runs"
    await _set_behavior(api, bad, "succeed")  # the device was fixed
    retry = await api.ok("POST", f"{runs}/{first['id']}/retry", {})  # mode: from_failed
    assert retry["run_number"] == 2 and retry["previous_run_id"] == first["id"]
    assert (retry["trigger_type"], retry["trigger_source_type"], retry["trigger_source"]) == (
        "retry", "run", first["id"])
    done = await until(api, f"{runs}/{retry['id']}", lambda r: r["status"] in ENDED)
    assert done["status"] == "success"
    assert (await api.ok("GET", f"{runs}/{first['id']}"))["retries"] == [retry["id"]]

    stages = {s["stage_name"]: s for s in
              (await api.ok("GET", f"/runs/{retry['id']}/stageruns"))["results"]}
    assert {name: s["status"] for name, s in stages.items()} == {
        "canary": "success", "wave": "success", "rest": "success"}
    assert stages["canary"]["status_reason"] == "carried over from run 1"
    targets = await _stage_targets(api, retry["id"])
    # the canary, carried over whole: its row says so and no command was sent
    [canary] = targets["canary"]
    assert canary["status"] == "success" and canary["command_id"] is None
    assert canary["status_reason"] == "carried over from run 1" and canary["carried_over_from"]
    # the wave: the good device's two operations carried over, the bad one's both sent again
    by_device: dict[str, list[dict]] = {}
    for row in targets["wave"]:
        by_device.setdefault(row["target_id"], []).append(row)
    assert all(r["command_id"] is None and r["carried_over_from"] for r in by_device[good[1]])
    assert all(r["command_id"] and r["carried_over_from"] is None and r["status"] == "success"
               for r in by_device[bad[0]])
    assert len(by_device[bad[0]]) == 2
    # the stage not reached ran in full
    [rest] = targets["rest"]
    assert rest["command_id"] and rest["carried_over_from"] is None

    # the run retried succeeded: nothing failed, from_failed has nothing to send (409)
    assert_error(await api.post(f"{runs}/{retry['id']}/retry", {"mode": "from_failed"}), 409,
                 "nothing failed")


async def test_from_step_and_full(live: Api):
    api = live
    pipeline, first, good, bad = await _failed_three_stage_run(api)
    runs = f"/pipelines/{pipeline['id']}/runs"
    steps = await api.ok("GET", f"/runs/{first['id']}/steps")
    keys = [step["key"] for step in steps["steps"]]
    assert [s["status"] for s in steps["steps"]] == ["success", "failure", "cancelled"]
    assert (steps["completed_count"], steps["failed_count"]) == (1, 2)
    assert steps["steps"][2]["depends_on"] == keys[:2]
    assert steps["steps"][1]["error"]["counts"] == {"failure": 2}
    assert steps["steps"][1]["result"]["success"] == 2

    # from a stage whose earlier stage failed: refused, nothing made
    assert_error(await api.post(f"{runs}/{first['id']}/retry",
                                {"mode": "from_step", "step_key": keys[2]}), 409, "wave")
    assert_error(await api.post(f"{runs}/{first['id']}/retry", {"mode": "from_step"}), 400,
                 "step_key")
    assert_error(await api.post(f"{runs}/{first['id']}/retry",
                                {"mode": "from_step", "step_key": "nope"}), 400, "step_key")
    assert_error(await api.post(f"{runs}/{first['id']}/retry", {"mode": "again"}), 400,
                 "mode", "from_failed")
    assert (await api.ok("GET", runs))["count"] == 1

    await _set_behavior(api, bad, "succeed")
    from_wave = await api.ok("POST", f"{runs}/{first['id']}/retry",
                             {"mode": "from_step", "step_key": keys[1]})
    done = await until(api, f"{runs}/{from_wave['id']}", lambda r: r["status"] in ENDED)
    assert done["status"] == "success" and done["run_number"] == 2
    targets = await _stage_targets(api, from_wave["id"])
    assert [r["command_id"] for r in targets["canary"]] == [None]  # carried over
    assert all(r["command_id"] and r["carried_over_from"] is None for r in targets["wave"])
    assert len(targets["wave"]) == 4  # every target of the wave ran again

    full = await api.ok("POST", f"{runs}/{first['id']}/retry", {"mode": "FULL"})
    done = await until(api, f"{runs}/{full['id']}", lambda r: r["status"] in ENDED)
    assert done["status"] == "success" and done["run_number"] == 3
    targets = await _stage_targets(api, full["id"])
    assert all(r["command_id"] and r["carried_over_from"] is None
               for rows in targets.values() for r in rows)
    assert (await api.ok("GET", f"{runs}/{first['id']}"))["retries"] == [
        from_wave["id"], full["id"]]
    full_steps = await api.ok("GET", f"/runs/{full['id']}/steps")
    assert [s["key"] for s in full_steps["steps"]] == keys  # stable across runs of a snapshot


async def test_a_running_run_is_not_retried_and_a_promote_is_a_recorded_decision(live: Api):
    api = live
    quick = await devices(api, 1, prefix="quick")
    slow = await devices(api, 1, "offline", prefix="slow")
    pipeline = await api.ok("POST", "/pipelines", {"name": "gated", "stages": [
        {"name": "first", "device_ids": quick, "operations": [INSTALL]},
        {"name": "second", "trigger": "manual", "device_ids": slow, "operations": [INSTALL]},
    ]}, 201)
    runs = f"/pipelines/{pipeline['id']}/runs"
    run = await api.ok("POST", runs, {})
    assert run["trigger_type"] == "api" and run["trigger_source_type"] == "api_key"
    assert run["trigger_source"] and run["pipeline_version"] == pipeline["version"]
    one = f"{runs}/{run['id']}"
    await until(api, one, lambda r: r["status"] == "waiting")
    assert_error(await api.post(f"{one}/retry", {}), 409, "waiting")
    steps = await api.ok("GET", f"/runs/{run['id']}/steps")
    assert steps["steps"][0]["decision_id"] is None  # automatic: no gate
    assert steps["steps"][1]["decision_id"] is None and steps["pending_count"] == 1
    second = steps["steps"][1]
    await api.ok("PUT", f"/runs/{run['id']}/stageruns/{second['stage_run_id']}",
                 {"status": "queued"})
    steps = await until(api, f"/runs/{run['id']}/steps",
                        lambda c: c["steps"][1]["status"] == "running")
    assert steps["steps"][1]["decision_id"] and steps["steps"][1]["promoted_by"] == (
        run["trigger_source"])
    assert steps["running_count"] == 1 and steps["steps"][1]["duration_seconds"] is not None
    assert_error(await api.post(f"{one}/retry", {"mode": "full"}), 409, "running")
    await api.ok("PUT", one, {"status": "cancelled"})
    assert (await api.ok("GET", runs))["count"] == 1  # the refusals made nothing
