"""The "update run" document at /v1/runs/{id}, against the real stack: the API, a real worker
with the simulated fleet, the Temporal dev server and SQLite.

The devices are `offline` simulated devices: they take the command and never answer, so the
agent below, written from the document alone (plain httpx, `Authorization: Bearer`), is what
moves each run. What it reports must show in the native target run and its command, and the
target run's workflow must end with it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from temporalio.client import Client

from domain.ids import target_run_workflow_id
from tests.api.conftest import Api, GuardedClient, api_for
from tests.api.test_definitions import INSTALL
from tests.api.test_runs_e2e import devices, live, running_stage, until  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Agent:
    """A device agent as the document describes one: GET and PATCH /v1/runs/{run_id}."""

    def __init__(self, api: Api, key: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {key or api.key}"}
        self.http: GuardedClient = api.make_client(token=None)
        self.http.headers.update(headers)

    async def get(self, run_id: str) -> httpx.Response:
        return await self.http.get(f"/v1/runs/{run_id}")

    async def patch(self, run_id: str, body: Any) -> httpx.Response:
        return await self.http.patch(f"/v1/runs/{run_id}", json=body)

    async def ok(self, run_id: str, body: Any | None = None) -> dict[str, Any]:
        response = await (self.patch(run_id, body) if body is not None else self.get(run_id))
        assert response.status_code == 200, response.text
        return response.json()


def refused(response: httpx.Response, code: int, *words: str) -> Any:
    """The document's error shape: `{"detail": ...}` and nothing else."""
    body = response.json()
    assert response.status_code == code, body
    assert set(body) == {"detail"}, body
    for word in words:
        assert word in str(body["detail"]), (word, body["detail"])
    return body["detail"]


RUN_FIELDS = ["workflow_id", "machine_id", "id", "user_id", "organization_id", "status", "error",
              "output_data", "input_attachment_ids", "output_attachment_ids",
              "run_message_history", "input_values", "pool_ids", "sensitive_input_aliases",
              "session_id", "session_alias", "release_session_after", "created_at"]


async def dispatched_runs(api: Api, name: str, count: int) -> tuple[str, str, list[dict]]:
    """(pipeline run path, stage run id, target runs) of a run over `count` silent devices,
    once every command is at the gateway."""
    ids = await devices(api, count, "offline", prefix=name)
    group = await api.ok("POST", "/devicegroups", {"name": f"{name}-pool", "device_ids": ids},
                         201)
    run_path, stage_run_id, targets = await running_stage(api, name, ids)
    page = await until(api, targets, lambda c: c["count"] == count and all(
        t["status"] == "dispatched" for t in c["results"]))
    return run_path, stage_run_id, [dict(t, group_id=group["id"]) for t in page["results"]]


async def test_a_device_agent_reports_its_run_through_the_document(
        live: Api, temporal_client: Client) -> None:  # noqa: F811  (the live fixture)
    api = live
    run_path, stage_run_id, targets = await dispatched_runs(api, "agent", 2)
    pipeline = await api.ok("GET", run_path)
    good, bad = targets
    agent = Agent(api)

    seen = await agent.ok(good["id"])
    assert list(seen) == RUN_FIELDS
    assert seen["id"] == good["id"] and seen["machine_id"] == good["target_id"]
    assert seen["workflow_id"] == pipeline["pipeline_id"]
    assert seen["organization_id"] == str(api.enterprise_id) and seen["user_id"] is None
    assert seen["status"] == "scheduling"
    assert seen["session_id"] == stage_run_id and seen["session_alias"] == "only"
    assert seen["input_values"] == INSTALL["args"]
    assert seen["pool_ids"] == [good["group_id"]]
    assert seen["release_session_after"] is True  # its only operation
    assert (seen["error"], seen["output_data"], seen["output_attachment_ids"]) == ([], {}, [])
    assert seen["sensitive_input_aliases"] == {}

    # running, with output and a message; then more output; then success
    step = await agent.ok(good["id"], {
        "status": "running", "output_data": {"progress": 10, "phase": "download"},
        "run_message_history": [{"role": "agent", "content": "downloading"}]})
    assert step["status"] == "running"
    await agent.ok(good["id"], {
        "output_data": {"progress": 100}, "output_attachment_ids": ["log-1", "log-1", "shot-2"],
        "run_message_history": [{"role": "agent", "content": "installed"}]})
    # A report that would move it backwards names the status it is in, and changes nothing.
    refused(await agent.patch(good["id"], {"status": "scheduling",
                                           "output_data": {"progress": 0}}), 409, "running")
    # Inputs may be given back unchanged, never changed once the command is out.
    await agent.ok(good["id"], {"input_values": INSTALL["args"]})
    refused(await agent.patch(good["id"], {"input_values": {"app_version": "9"}}), 409,
            "input_values", "sent")
    done = await agent.ok(good["id"], {
        "status": "success", "run_message_history": [{"role": "agent", "content": "done"}]})
    assert done["status"] == "success"
    assert done["output_data"] == {"progress": 100, "phase": "download"}
    assert done["output_attachment_ids"] == ["log-1", "shot-2"]
    history = done["run_message_history"]
    assert [m.get("content") or m["status"] for m in history] == [
        "queued", "inprogress", "downloading", "installed", "success", "done"]

    # The target run's workflow ends with the report, and the native shapes show it.
    result = await temporal_client.get_workflow_handle(
        target_run_workflow_id(good["id"])).result()
    assert result["status"] == "success"
    native = await until(api, f"/stageruns/{stage_run_id}/targetruns/{good['id']}",
                         lambda t: t["status"] == "success")
    assert native["output_data"] == {"progress": 100, "phase": "download"}
    assert native["output_attachment_ids"] == ["log-1", "shot-2"]
    assert [m["content"] for m in native["run_message_history"]] == [
        "downloading", "installed", "done"]
    assert native["command_status"] == "success" and native["error"] == []
    listed = await api.ok("GET", f"/stageruns/{stage_run_id}/targetruns")
    assert [t for t in listed["results"] if t["id"] == good["id"]][0] == native
    command = await api.ok("GET", f"/stageruns/{stage_run_id}/targetruns/{good['id']}/command")
    assert command["output"] == {"progress": 100, "phase": "download"}
    assert command["output_attachment_ids"] == ["log-1", "shot-2"]
    assert [m["content"] for m in command["run_message_history"]] == [
        "downloading", "installed", "done"]
    assert [e["status"] for e in command["events"] if e["applied"]][-1] == "success"
    assert "scheduling" not in [e["status"] for e in command["events"]]

    # A finished run takes no more reports.
    for late in ({"status": "running"}, {"status": "success"},
                 {"run_message_history": [{"late": True}]}):
        refused(await agent.patch(good["id"], late), 409, "finished", "success")

    # The other device reports an error: its run fails with the device's words.
    await agent.ok(bad["id"], {"status": "running"})
    failed = await agent.ok(bad["id"], {"status": "error", "error": ["disk full"],
                                        "output_data": {"free_mb": 0}})
    assert failed["status"] == "error" and failed["error"] == ["disk full"]
    result = await temporal_client.get_workflow_handle(
        target_run_workflow_id(bad["id"])).result()
    assert result["status"] == "failure"
    native = await until(api, f"/stageruns/{stage_run_id}/targetruns/{bad['id']}",
                         lambda t: t["status"] == "failure")
    assert native["error"] == ["disk full"] and native["status_reason"] == "disk full"
    after = await agent.ok(bad["id"])
    assert after["status"] == "error" and after["error"] == ["disk full"]
    # The run and its stage run say what failed: the stage, the counts by status.
    run = await until(api, run_path, lambda r: r["status"] == "failure")
    assert run["status_reason"] == ("stage 1 'only' ended failure: 1 of 2 target runs did not "
                                    "succeed (1 failure)")
    stage_run = await api.ok("GET", f"/runs/{run['id']}/stageruns/{stage_run_id}")
    assert stage_run["status_reason"] == "1 of 2 target runs did not succeed (1 failure)"


async def test_reports_the_document_refuses(live: Api, sqlite_engine: Engine,  # noqa: F811
                                            temporal_client: Client) -> None:
    api = live
    _, _, [target] = await dispatched_runs(api, "refusals", 1)
    agent = Agent(api)
    run_id = target["id"]
    # Unknown status, wrong types, a malformed id: 422 in FastAPI's own shape.
    detail = refused(await agent.patch(run_id, {"status": "exploded"}), 422)
    assert detail[0]["loc"] == ["body", "status"]
    for body in ({"error": "not a list"}, {"output_data": [1, 2]},
                 {"run_message_history": ["text"]}, {"output_attachment_ids": [1]},
                 {"input_values": "x"}, {"status": 3}):
        detail = refused(await agent.patch(run_id, body), 422)
        assert detail[0]["loc"][0] == "body", body
    refused(await agent.get("not-a-uuid"), 422)
    # No key, an unknown key: 401; another enterprise's run, or none: 404.
    anonymous = api.make_client(token=None)
    refused(await anonymous.get(f"/v1/runs/{run_id}"), 401)
    refused(await Agent(api, key="nope").get(run_id), 401)
    async with api_for(sqlite_engine, enterprise="globex",
                       temporal_client=temporal_client) as other:
        stranger = Agent(other)
        refused(await stranger.get(run_id), 404, run_id)
        refused(await stranger.patch(run_id, {"status": "success"}), 404, run_id)
    refused(await agent.get("00000000-0000-0000-0000-000000000000"), 404)
    # None of it reached the run: it still waits for its device.
    still = await agent.ok(run_id)
    assert still["status"] == "scheduling" and still["output_data"] == {}
    # The native surface keeps its envelope beside /v1.
    native = await api.get(f"/stageruns/{target['stage_run_id']}/targetruns/nope")
    assert set(native.json()) == {"code", "message", "content"}
    # A report before the device started: scheduling, with data, is taken.
    taken = await agent.ok(run_id, {"status": "scheduling",
                                    "run_message_history": [{"note": "waiting for wifi"}]})
    assert taken["status"] == "scheduling"
    assert taken["run_message_history"][-1] == {"note": "waiting for wifi"}
    # A gateway's event (the native device-event endpoint) carries the same kind of report.
    command_id = (await api.ok("GET", f"/stageruns/{target['stage_run_id']}/targetruns/"
                               f"{run_id}"))["command_id"]
    await api.ok("POST", f"/commands/{command_id}/events", {
        "status": "inprogress", "output": {"step": 1}, "error": ["retrying download"],
        "run_message_history": [{"from": "gateway"}]})
    via_gateway = await agent.ok(run_id)
    assert via_gateway["status"] == "running" and via_gateway["output_data"] == {"step": 1}
    assert via_gateway["error"] == ["retrying download"]
    assert via_gateway["run_message_history"][-1] == {"from": "gateway"}
    # cancelled ends it (a cancelled command fails its target run: error in this view).
    ended = await agent.ok(run_id, {"status": "cancelled"})
    assert ended["status"] == "error"
    refused(await agent.patch(run_id, {"status": "cancelled"}), 409, "finished")


async def test_a_run_whose_command_is_not_created_yet_takes_no_report(
        live: Api) -> None:  # noqa: F811  (the live fixture)
    api = live
    # One device a minute: the second device's target run waits, pending, with no command.
    ids = await devices(api, 2, "offline", prefix="waiting")
    pipeline = await api.ok("POST", "/pipelines", {"name": "slow", "stages": [
        {"name": "only", "device_ids": ids, "operations": [INSTALL],
         "rollout": {"maximum_per_minute": 1}}]}, 201)
    run = await api.ok("POST", f"/pipelines/{pipeline['id']}/runs", {})
    stage_runs = await until(api, f"/runs/{run['id']}/stageruns",
                             lambda c: c["count"] == 1
                             and c["results"][0]["status"] == "running")
    targets = f"/stageruns/{stage_runs['results'][0]['id']}/targetruns"
    page = await until(api, targets, lambda c: c["count"] == 2 and sorted(
        t["status"] for t in c["results"]) == ["dispatched", "pending"])
    [waiting] = [t for t in page["results"] if t["status"] == "pending"]
    agent = Agent(api)
    assert (await agent.ok(waiting["id"]))["status"] == "scheduling"
    for body in ({"status": "running"}, {"status": "scheduling", "output_data": {"a": 1}}):
        refused(await agent.patch(waiting["id"], body), 409, "scheduling",
                "has not been created yet")
    # Inputs, even before anything was sent, are not changed one run at a time.
    refused(await agent.patch(waiting["id"], {"input_values": {"app_version": "2"}}), 409,
            "input_values", "pipeline run is created")
    assert (await agent.ok(waiting["id"], {"input_values": INSTALL["args"]}))[
        "input_values"] == INSTALL["args"]
    await api.ok("PUT", f"/pipelines/{pipeline['id']}/runs/{run['id']}",
                 {"status": "cancelled"})
