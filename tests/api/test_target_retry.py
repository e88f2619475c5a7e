"""POST .../targetruns/{id}/command on a finished target run, over HTTP against the real stack
(the API, a worker with the simulated fleet, the Temporal dev server, SQLite): the target run
is sent again as a retry row, and the stage run counts only current rows."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api
from tests.api.test_envelope_auth import assert_error
from tests.api.test_runs_e2e import live, running_stage, until  # noqa: F401  (the live fixture)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SLOW_MS = "6000"  # keeps the stage run open while the failed target run is sent again


async def _device(api: Api, name: str, **attributes: str) -> str:
    return (await api.ok("POST", "/devices", {"name": name, "attributes": attributes}, 201))["id"]


async def _target_of(api: Api, base: str, device_id: str, *statuses: str) -> dict[str, Any]:
    page = await until(api, f"{base}?limit=100", lambda c: any(
        t["target_id"] == device_id and t["status"] in statuses for t in c["results"]))
    return next(t for t in page["results"] if t["target_id"] == device_id)


async def _failed_then_fixed(api: Api) -> tuple[str, str, str, str, dict[str, Any]]:
    """A device whose target run failed, then fixed, beside a slow one that keeps the stage
    open: (device id, pipeline run path, stage run id, target runs path, the failed run)."""
    flaky = await _device(api, "flaky", sim_behavior="fail")
    slow = await _device(api, "slow", sim_latency_ms=SLOW_MS)
    run_path, stage_run_id, base = await running_stage(api, "retry", [flaky, slow])
    failed = await _target_of(api, base, flaky, "failure")
    # the simulated gateway reads a device's attributes at dispatch
    await api.ok("PUT", f"/devices/{flaky}", {"attributes": {}})
    return flaky, run_path, stage_run_id, base, failed


async def test_a_failed_target_run_sent_again_succeeds_and_so_does_its_stage(live: Api):  # noqa: F811
    api = live
    flaky, run_path, stage_run_id, base, failed = await _failed_then_fixed(api)
    assert failed["retry_of"] is None and failed["superseded_by"] is None

    response = await api.post(f"{base}/{failed['id']}/command", {})
    body = response.json()
    assert response.status_code == 200 and body["code"] == 200, body
    command = body["content"]
    new_id = command["target_run_id"]
    assert new_id != failed["id"] and command["id"] != failed["command_id"]
    assert command["device_id"] == flaky and command["operation_type"] == "INSTALL"
    assert new_id in body["message"]

    new = await api.ok("GET", f"{base}/{new_id}")
    assert (new["retry_of"], new["superseded_by"]) == (failed["id"], None)
    assert new["command_id"] == command["id"]
    old = await api.ok("GET", f"{base}/{failed['id']}")
    assert (old["status"], old["superseded_by"], old["retry_of"]) == ("failure", new_id, None)
    assert (old["command_id"], old["command_status"], old["ended_at"]) == (
        failed["command_id"], "failure", failed["ended_at"])
    # the slow device is still at work: the stage run is open and its failure is gone
    open_stage = await api.ok("GET", f"/runs/{run_path.rsplit('/', 1)[1]}/stageruns/"
                              f"{stage_run_id}")
    assert open_stage["status"] == "running"
    assert open_stage["target_run_counts"]["failure"] == 0
    assert sum(open_stage["target_run_counts"].values()) == 2

    done = await until(api, run_path, lambda r: r["status"] in ("success", "failure"))
    assert done["status"] == "success"
    stage = await api.ok("GET", f"/runs/{done['id']}/stageruns/{stage_run_id}")
    assert stage["status"] == "success"
    assert (stage["target_run_counts"]["success"], stage["target_run_counts"]["failure"]) == (2, 0)
    listed = (await api.ok("GET", base))["results"]
    assert sorted((t["target_id"] == flaky, t["status"], t["superseded_by"] is not None)
                  for t in listed) == [(False, "success", False), (True, "failure", True),
                                       (True, "success", False)]
    assert (await api.ok("GET", f"{base}?status=failure"))["count"] == 1  # the list shows all
    old_command = await api.ok("GET", f"{base}/{failed['id']}/command")
    assert old_command["status"] == "failure" and old_command["events"]
    assert old_command["target_run_id"] == failed["id"]
    new_command = await api.ok("GET", f"{base}/{new_id}/command")
    assert new_command["status"] == "success" and new_command["id"] == command["id"]


async def test_sent_again_while_the_run_is_paused_is_queued_until_it_resumes(live: Api):  # noqa: F811
    api = live
    _, run_path, _, base, failed = await _failed_then_fixed(api)
    assert (await api.ok("PUT", run_path, {"status": "waiting"}))["status"] == "waiting"

    response = await api.post(f"{base}/{failed['id']}/command", {})
    body = response.json()
    assert response.status_code == 200 and body["code"] == 200, body
    assert body["message"].startswith("Queued") and "paused" in body["message"]
    queued = body["content"]  # no command yet: the new target run, waiting its turn
    assert (queued["status"], queued["retry_of"], queued["command_id"]) == (
        "pending", failed["id"], None)
    assert queued["id"] in body["message"]
    assert_error(await api.get(f"{base}/{queued['id']}/command"), 404, "no command yet")

    assert (await api.ok("PUT", run_path, {"status": "running"}))["status"] == "running"
    done = await until(api, run_path, lambda r: r["status"] in ("success", "failure"))
    assert done["status"] == "success"
    sent = await api.ok("GET", f"{base}/{queued['id']}")
    assert sent["status"] == "success" and sent["command_status"] == "success"


async def test_what_cannot_be_sent_again(live: Api, other_api: Api):  # noqa: F811
    api = live
    flaky = await _device(api, "flaky", sim_behavior="fail")
    slow = await _device(api, "slow", sim_latency_ms=SLOW_MS)
    quick = await _device(api, "quick")
    run_path, _, base = await running_stage(api, "retry", [flaky, slow, quick])
    failed = await _target_of(api, base, flaky, "failure")
    succeeded = await _target_of(api, base, quick, "success")
    busy = await _target_of(api, base, slow, "dispatched", "running")  # its command is out

    assert_error(await api.post(f"{base}/{busy['id']}/command", {}), 400,
                 "already has an active command", busy["command_id"])
    refused = assert_error(await api.post(f"{base}/{succeeded['id']}/command", {}), 400,
                           "is success", "failure, timeout, cancelled")
    assert refused["content"]["allowed"] == ["failure", "timeout", "cancelled"]
    assert_error(await other_api.post(f"{base}/{failed['id']}/command", {}), 404)
    assert_error(await api.post(f"{base}/{succeeded['id'][:-4]}0000/command", {}), 404)

    # sent again (the device still fails): the old one is superseded and names its successor
    command = await api.ok("POST", f"{base}/{failed['id']}/command", {})
    new_id = command["target_run_id"]
    assert_error(await api.post(f"{base}/{failed['id']}/command", {}), 400,
                 "already sent again", new_id)

    done = await until(api, run_path, lambda r: r["status"] in ("success", "failure"))
    assert done["status"] == "failure"  # the retry failed too
    retried = await api.ok("GET", f"{base}/{new_id}")
    assert retried["status"] == "failure" and retried["superseded_by"] is None
    assert_error(await api.post(f"{base}/{new_id}/command", {}), 400, "stage run is failure")
    assert (await api.ok("GET", f"{base}/{new_id}"))["superseded_by"] is None
