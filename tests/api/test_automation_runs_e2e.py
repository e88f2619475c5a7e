"""Reference document 002 ("automation runs") served as written at /api/v1/automation-runs,
over the real stack: list, get, cancel, retry and steps, its three ways to authenticate, and
its error shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from temporalio.client import Client

from tests.api.conftest import Api, api_for
from tests.api.live_stack import live_stack
from tests.api.test_definitions import INSTALL
from tests.api.test_retries_e2e import ENDED, _failed_three_stage_run, _set_behavior
from tests.api.test_run_events_e2e import read_stream
from tests.api.test_runs_e2e import devices, until

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

RUNS = "/api/v1/automation-runs"
RUN_FIELDS = {"id", "automationId", "automationVersionId", "versionNumber", "status",
              "createdAt", "startedAt", "completedAt", "updatedAt", "durationSeconds", "error",
              "externalJobId", "orchestratorType", "tenantId", "concurrencyKey", "triggerType",
              "triggerSourceType", "triggerSourceId"}
STEP_FIELDS = {"key", "name", "actionRunId", "dependsOn", "status", "startedAt", "completedAt",
               "durationSeconds", "error", "result", "resultTruncated", "decisionId"}


@pytest.fixture
async def live(sqlite_engine: Engine, temporal_client: Client,
               task_queue: str) -> AsyncIterator[Api]:
    async with live_stack(sqlite_engine, temporal_client, task_queue) as api:
        yield api


def _peer(api: Api, **headers: str) -> httpx.AsyncClient:
    """A client without the envelope API's Authorization header (each test sends its own)."""
    client = api.make_client(token=None)
    client.headers.update(headers)
    return client


def _detail(response: httpx.Response, code: int, *words: str) -> str:
    body = response.json()
    assert response.status_code == code, body
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    for word in words:
        assert word in body["detail"], (word, body["detail"])
    return body["detail"]


def _invalid(response: httpx.Response, loc: list[Any]) -> list[dict[str, Any]]:
    body = response.json()
    assert response.status_code == 422, body
    assert set(body) == {"detail"}
    for item in body["detail"]:
        assert set(item) == {"loc", "msg", "type"}, item
    assert loc in [item["loc"] for item in body["detail"]], body
    return body["detail"]


async def test_list_get_retry_and_steps_with_each_way_to_authenticate(live: Api):
    api = live
    pipeline, first, good, bad = await _failed_three_stage_run(api)
    bearer = _peer(api, Authorization=f"Bearer {api.key}")
    token = _peer(api, Authorization=f"Token {api.key}")
    header = _peer(api, **{"X-API-Key": api.key})
    cookie = _peer(api)
    cookie.cookies.set("vai_token", api.key)
    async with bearer, token, header, cookie:
        for client in (bearer, token, header, cookie):
            listed = (await client.get(RUNS)).json()
            assert listed["total"] == 1 and [r["id"] for r in listed["items"]] == [first["id"]]
        run = (await header.get(f"{RUNS}/{first['id']}")).json()
        assert set(run) == RUN_FIELDS
        assert (run["status"], run["automationId"], run["tenantId"]) == (
            "failure", pipeline["id"], str(api.enterprise_id))
        assert run["externalJobId"] == f"pipeline-run-{first['id']}"
        assert run["orchestratorType"] == "temporal" and run["concurrencyKey"] is None
        assert (run["triggerType"], run["triggerSourceType"], run["triggerSourceId"]) == (
            "api", "api_key", first["trigger_source"])
        assert run["versionNumber"] == pipeline["version"] and run["automationVersionId"]
        assert run["durationSeconds"] > 0 and run["completedAt"]
        assert run["error"]["stage"]["name"] == "wave"
        assert run["error"]["counts"] == {"failure": 2}

        steps = (await cookie.get(f"{RUNS}/{first['id']}/steps")).json()
        assert set(steps) == {"automationRunId", "completedCount", "failedCount",
                              "pendingCount", "runningCount", "steps"}
        assert (steps["completedCount"], steps["failedCount"], steps["pendingCount"],
                steps["runningCount"]) == (1, 2, 0, 0)
        assert all(set(step) == STEP_FIELDS for step in steps["steps"])
        keys = [step["key"] for step in steps["steps"]]
        assert steps["steps"][1]["dependsOn"] == keys[:1]
        assert steps["steps"][1]["result"]["failure"] == 2
        assert steps["steps"][1]["resultTruncated"] is False

        # bad input: the document's 422
        _invalid(await bearer.get(f"{RUNS}?limit=1001"), ["query", "limit"])
        _invalid(await bearer.get(f"{RUNS}?offset=-1"), ["query", "offset"])
        _invalid(await bearer.get(f"{RUNS}?status=paused"), ["query", "status"])
        _invalid(await bearer.get(f"{RUNS}/not-a-uuid"), ["path", "run_id"])
        _invalid(await bearer.post(f"{RUNS}/{first['id']}/retry", json={"mode": "again"}),
                 ["body", "mode"])
        _invalid(await bearer.post(f"{RUNS}/{first['id']}/retry", json={"mode": "from_step"}),
                 ["body", "stepKey"])
        _invalid(await bearer.post(f"{RUNS}/{first['id']}/retry",
                                   json={"mode": "from_step", "stepKey": "nope"}),
                 ["body", "stepKey"])
        assert (await bearer.get(RUNS)).json()["total"] == 1  # nothing made
        # a finished run is not cancelled again
        _detail(await token.post(f"{RUNS}/{first['id']}/cancel"), 409, "failure")

        await _set_behavior(api, bad, "succeed")
        retried = (await header.post(f"{RUNS}/{first['id']}/retry", json={})).json()
        assert set(retried) == RUN_FIELDS
        assert (retried["triggerType"], retried["triggerSourceType"],
                retried["triggerSourceId"]) == ("retry", "run", first["id"])
        assert retried["versionNumber"] == run["versionNumber"]
        done = await until(api, f"/pipelines/{pipeline['id']}/runs/{retried['id']}",
                           lambda r: r["status"] in ENDED)
        assert done["status"] == "success"
        again = (await bearer.get(f"{RUNS}/{retried['id']}")).json()
        assert again["status"] == "success" and again["error"] is None
        retry_steps = (await bearer.get(f"{RUNS}/{retried['id']}/steps")).json()
        assert [s["key"] for s in retry_steps["steps"]] == keys
        assert retry_steps["completedCount"] == 3
        listed = (await bearer.get(f"{RUNS}?limit=1")).json()
        assert listed["total"] == 2 and listed["items"][0]["id"] == retried["id"]  # newest
        second_page = (await bearer.get(f"{RUNS}?limit=1&offset=1")).json()
        assert [r["id"] for r in second_page["items"]] == [first["id"]]
        assert (await bearer.get(f"{RUNS}?status=failure")).json()["total"] == 1

        # the event stream, as the document's client reads it (X-API-Key): the finished run's
        # whole log, numbered, ending after its terminal event; a resume repeats nothing
        events = await read_stream(header, f"{RUNS}/{first['id']}/events")
        *body, end = events
        assert end.event == "end" and end.data["status"] == "failure"
        ids = [event.id for event in body]
        assert ids == sorted(set(ids)) and len(ids) > 3
        middle = ids[len(ids) // 2]
        rest = await read_stream(header, f"{RUNS}/{first['id']}/events",
                                 headers={"Last-Event-ID": str(middle)})
        assert [event.id for event in rest[:-1]] == [i for i in ids if i > middle]
        _invalid(await header.get(f"{RUNS}/{first['id']}/events",
                                  headers={"Last-Event-ID": "x"}), ["header", "Last-Event-ID"])


async def test_cancel_refusals_and_who_may_see_a_run(live: Api, sqlite_engine: Engine):
    api = live
    slow = await devices(api, 1, "offline", prefix="slow")
    pipeline = await api.ok("POST", "/pipelines", {"name": "slow", "stages": [
        {"name": "only", "device_ids": slow, "operations": [INSTALL]}]}, 201)
    run = await api.ok("POST", f"/pipelines/{pipeline['id']}/runs", {})
    await until(api, f"/runs/{run['id']}/stageruns",
                lambda c: c["results"] and c["results"][0]["status"] == "running")
    async with _peer(api, Authorization=f"Bearer {api.key}") as peer:
        _detail(await peer.post(f"{RUNS}/{run['id']}/retry", json={"mode": "full"}), 409,
                "running")
        running = (await peer.get(f"{RUNS}/{run['id']}")).json()
        assert running["status"] == "running" and running["completedAt"] is None
        assert running["durationSeconds"] is not None and running["error"] is None
        cancelled = (await peer.post(f"{RUNS}/{run['id']}/cancel")).json()
        assert set(cancelled) == RUN_FIELDS and cancelled["status"] == "cancelled"
        assert cancelled["error"]["status"] == "cancelled"
        _detail(await peer.post(f"{RUNS}/{run['id']}/cancel"), 409, "cancelled")
        # a retry of the cancelled run sends its cancelled target run again
        await _set_behavior(api, slow, "succeed")
        retried = (await peer.post(f"{RUNS}/{run['id']}/retry")).json()
        done = await until(api, f"/pipelines/{pipeline['id']}/runs/{retried['id']}",
                           lambda r: r["status"] in ENDED)
        assert done["status"] == "success"

    async with _peer(api) as nobody:
        _detail(await nobody.get(RUNS), 401, "not authenticated")
    async with _peer(api, **{"X-API-Key": "not-a-key"}) as wrong:
        _detail(await wrong.get(RUNS), 401, "unknown")
    async with _peer(api, Authorization="Basic abc") as malformed:
        _detail(await malformed.get(RUNS), 401, "malformed")
    async with api_for(sqlite_engine, enterprise="globex") as other:
        async with _peer(other, Authorization=f"Bearer {other.key}") as stranger:
            assert (await stranger.get(RUNS)).json() == {"items": [], "total": 0}
            for path in (f"{RUNS}/{run['id']}", f"{RUNS}/{run['id']}/steps"):
                _detail(await stranger.get(path), 404, str(run["id"]))
            _detail(await stranger.post(f"{RUNS}/{run['id']}/retry"), 404)
            _detail(await stranger.post(f"{RUNS}/{run['id']}/cancel"), 404)
        # the native API keeps its envelope
        response = await other.get(f"/runs/{run['id']}/steps")
        assert response.status_code == 404 and set(response.json()) == {
            "code", "message", "content"}
