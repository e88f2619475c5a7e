"""A run's event stream and audit trail over real HTTP (uvicorn on a loopback port) against
the real stack: a worker with the simulated fleet, the Temporal dev server, SQLite and
PostgreSQL. The stream carries every entry of the run's log, in order, once, and ends after the
run's terminal event; a reconnect with Last-Event-ID loses and repeats nothing; actions carry
the API key that did them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from temporalio.client import Client

from api.app import create_app
from store.audit import OperatorAction
from store.definitions.tenants import caller_for_hash, create_token, ensure_enterprise, hash_key
from store.runs.commands import Command, CommandEvent
from store.runs.tables import StatusEvent, TargetRun
from tests.api.conftest import BASE, settings_for
from tests.api.test_definitions import INSTALL
from worker import running_worker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
GUARD = 60.0


@dataclass
class Sse:
    id: int  # -1: the event had no id
    event: str
    data: Any


@dataclass
class Served:
    url: str
    engine: Engine
    key: str
    key_id: UUID
    other_key: str
    app: Any

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url + BASE, timeout=GUARD, headers={
            "Authorization": f"Token {key or self.key}"})


@pytest.fixture
async def served(engine: Engine, temporal_client: Client,
                 task_queue: str) -> AsyncIterator[Served]:
    ent = ensure_enterprise(engine, "acme")
    key = create_token(engine, ent.id, "operator-anna")
    other = create_token(engine, ensure_enterprise(engine, "globex").id, "globex")
    caller = caller_for_hash(engine, hash_key(key))
    assert caller is not None
    settings = settings_for(task_queue=task_queue, event_stream_keepalive_seconds=0.5,
                            event_stream_poll_seconds=0.1)
    app = create_app(settings, engine=engine, temporal_client=temporal_client)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on"))
    async with running_worker(temporal_client, engine, task_queue=task_queue):
        serving = asyncio.create_task(server.serve())
        async with asyncio.timeout(GUARD):
            while not server.started:
                await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield Served(f"http://127.0.0.1:{port}", engine, key, caller.key_id, other, app)
        finally:
            server.should_exit = True
            await serving


async def ok(http: httpx.AsyncClient, method: str, path: str, body: Any = None,
             code: int = 200) -> Any:
    response = await http.request(method, path, json=body)
    assert response.status_code == code, response.text
    return response.json()["content"]


async def until(http: httpx.AsyncClient, path: str, check: Callable[[Any], bool]) -> Any:
    deadline = time.monotonic() + GUARD
    while True:
        content = await ok(http, "GET", path)
        if check(content):
            return content
        assert time.monotonic() < deadline, f"{path} never satisfied the check: {content}"
        await asyncio.sleep(0.1)


async def read_stream(http: httpx.AsyncClient, path: str, *, headers: dict | None = None,
                      stop: Callable[[Sse], bool] | None = None,
                      comments: list[str] | None = None) -> list[Sse]:
    """The events of a stream until the server ends it (or `stop(event)` holds)."""
    events: list[Sse] = []
    async with asyncio.timeout(GUARD), http.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                if comments is not None:
                    comments.append(line)
                continue
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                continue
            if not fields:
                continue
            sse = Sse(int(fields.get("id", -1)), fields.get("event", ""),
                      json.loads(fields.get("data", "null")))
            fields = {}
            events.append(sse)
            if stop is not None and stop(sse):
                break
    return events


def log_of(engine: Engine, run_id: str) -> list[StatusEvent]:
    with Session(engine) as session:
        return list(session.exec(select(StatusEvent).where(
            StatusEvent.pipeline_run_id == UUID(run_id)).order_by(col(StatusEvent.id))).all())


async def gated_pipeline(http: httpx.AsyncClient, name: str, behaviour: str = "succeed",
                         latency_ms: int = 0) -> tuple[str, str]:
    """(pipeline id, runs path) of a two-stage pipeline, the second behind a manual gate."""
    ids = [(await ok(http, "POST", "/devices", {"name": f"{name}-{i}", "attributes": {
        "sim_behavior": behaviour, "sim_latency_ms": str(latency_ms)}}, 201))["id"]
        for i in range(3)]
    pipeline = await ok(http, "POST", "/pipelines", {"name": name, "stages": [
        {"name": "canary", "device_ids": ids[:1], "operations": [INSTALL]},
        {"name": "fleet", "trigger": "manual", "device_ids": ids[1:], "operations": [INSTALL]},
    ]}, 201)
    return pipeline["id"], f"/pipelines/{pipeline['id']}/runs"


async def test_a_run_streams_every_change_in_order_and_ends_after_its_terminal_event(
        served: Served) -> None:
    async with served.client() as http:
        _, runs = await gated_pipeline(http, "streamed")
        run = await ok(http, "POST", runs, {})
        comments: list[str] = []
        reading = asyncio.create_task(read_stream(http, f"/runs/{run['id']}/events",
                                                  comments=comments))
        await until(http, f"{runs}/{run['id']}", lambda r: r["status"] == "waiting")
        await asyncio.sleep(1.2)  # idle at the gate: keep-alives go out
        stages = await ok(http, "GET", f"/runs/{run['id']}/stageruns")
        fleet = next(s for s in stages["results"] if s["name"] == "fleet")
        await ok(http, "PUT", f"/runs/{run['id']}/stageruns/{fleet['id']}", {"status": "queued"})
        events = await reading

    assert comments, "no keep-alive comment while the run waited at its gate"
    *body, end = events
    assert end.event == "end" and end.data["status"] == "success"
    ids = [e.id for e in body]
    assert ids == sorted(set(ids))  # increasing, each once
    log = log_of(served.engine, run["id"])
    # Every entry of the run's log, nothing else, and the terminal status change is the last.
    assert ids == [entry.id for entry in log]
    assert body[-1].event == "status" and body[-1].data["run_kind"] == "pipeline_run"
    assert body[-1].data["to_status"] == "success"
    assert end.id == body[-1].id

    pipeline_path = [e.data["to_status"] for e in body if e.event == "status"
                     and e.data["run_kind"] == "pipeline_run"]
    assert pipeline_path == ["queued", "processing", "running", "waiting", "running",
                             "complete", "success"]
    # Every status change of every target run, and every applied command event, is there.
    with Session(served.engine) as session:
        targets = session.exec(select(TargetRun).where(
            TargetRun.pipeline_run_id == UUID(run["id"]))).all()
        applied = {str(c.id): session.exec(select(CommandEvent.status).where(
            CommandEvent.command_id == c.id, col(CommandEvent.applied)).order_by(
            col(CommandEvent.id))).all() for c in session.exec(select(Command).where(
                col(Command.target_run_id).in_([t.id for t in targets]))).all()}
    assert len(targets) == 3 and len(applied) == 3
    for target in targets:
        path = [e.data["to_status"] for e in body if e.event == "status"
                and e.data["run_id"] == str(target.id)]
        assert path[0] == "queued" and path[-1] == target.status == "success", path
    for command_id, statuses in applied.items():
        streamed = [e for e in body if e.event == "command"
                    and e.data["command_id"] == command_id]
        assert [e.data["command_status"] for e in streamed] == statuses
        assert streamed[-1].data["command_status"] == "success"
    # The operator's actions, with the key, placed before what they caused.
    actions = [e for e in body if e.event == "action"]
    assert [(a.data["action"], a.data["outcome"]) for a in actions] == [
        ("start", "requested"), ("promote", "requested")]
    assert {a.data["key_id"] for a in actions} == {str(served.key_id)}
    assert actions[0].id == body[0].id  # the start comes first in the log
    fleet_queued = next(e for e in body if e.event == "status"
                        and e.data["run_id"] == fleet["id"] and e.data["to_status"] == "queued")
    assert actions[1].id < fleet_queued.id


async def test_a_reconnect_with_last_event_id_loses_and_repeats_nothing(served: Served) -> None:
    async with served.client() as http:
        _, runs = await gated_pipeline(http, "resumed")
        run = await ok(http, "POST", runs, {})
        stream = f"/runs/{run['id']}/events"
        # First connection: until the run waits at its gate, then the client goes away.
        first = await read_stream(http, stream, stop=lambda e: e.event == "status"
                                  and e.data.get("to_status") == "waiting"
                                  and e.data["run_kind"] == "pipeline_run")
        stages = await ok(http, "GET", f"/runs/{run['id']}/stageruns")
        fleet = next(s for s in stages["results"] if s["name"] == "fleet")
        await ok(http, "PUT", f"/runs/{run['id']}/stageruns/{fleet['id']}", {"status": "queued"})
        # Second: resumes after the last id it saw (the header, as EventSource sends it),
        # while the run goes on; nested under its pipeline.
        second = await read_stream(http, f"{runs}/{run['id']}/events",
                                   headers={"Last-Event-ID": str(first[-1].id)})
        assert second[-1].event == "end"
        ids = [e.id for e in first + second[:-1]]
        assert ids == [entry.id for entry in log_of(served.engine, run["id"])]
        # After the end: from a middle id, by query parameter, the rest and the end at once.
        middle = ids[len(ids) // 2]
        third = await read_stream(http, f"{stream}?last_event_id={middle}")
        assert [e.id for e in third[:-1]] == [i for i in ids if i > middle]
        assert third[-1].event == "end" and third[-1].data["status"] == "success"


async def test_another_enterprises_or_an_unknown_run_is_a_404(served: Served) -> None:
    async with served.client() as http, served.client(served.other_key) as other:
        pipeline_id, runs = await gated_pipeline(http, "private")
        run = await ok(http, "POST", runs, {})
        for client, path in [
            (other, f"/runs/{run['id']}/events"),
            (other, f"{runs}/{run['id']}/events"),
            (http, "/runs/00000000-0000-0000-0000-000000000000/events"),
            (other, f"/runs/{run['id']}/actions"),
        ]:
            response = await client.get(path)
            assert response.status_code == 404, (path, response.text)
            assert response.json()["code"] == 404
        bad = await http.get(f"/runs/{run['id']}/events", headers={"Last-Event-ID": "x"})
        assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["message"]
        unauthenticated = await httpx.AsyncClient(base_url=served.url + BASE).get(
            f"/runs/{run['id']}/events")
        assert unauthenticated.status_code == 401
        await ok(http, "PUT", f"{runs}/{run['id']}", {"status": "cancelled"})


async def test_pause_resume_cancel_promote_are_recorded_with_the_key(served: Served) -> None:
    async with served.client() as http:
        _, runs = await gated_pipeline(http, "audited", latency_ms=4000)
        run = await ok(http, "POST", runs, {})
        one = f"{runs}/{run['id']}"
        await until(http, f"/runs/{run['id']}/stageruns", lambda c: any(
            s["status"] == "running" for s in c["results"]))
        await ok(http, "PUT", one, {"status": "waiting"})
        await until(http, one, lambda r: r["status"] == "waiting")
        await ok(http, "PUT", one, {"status": "running"})
        await ok(http, "PUT", one, {"status": "cancelled"})
        await until(http, one, lambda r: r["status"] == "cancelled")
        listed = await ok(http, "GET", f"/runs/{run['id']}/actions")
        nested = await ok(http, "GET", f"{one}/actions?limit=2&offset=1")
        events = await read_stream(http, f"/runs/{run['id']}/events")

    assert listed["count"] == 4
    rows = listed["results"]
    assert [r["action"] for r in rows] == ["start", "pause", "resume", "cancel"]
    # done; or accepted, if a busy run answered after the API's 2 s (a 202)
    assert rows[0]["outcome"] == "done"
    assert {r["outcome"] for r in rows[1:]} <= {"done", "accepted"}
    assert {r["key_id"] for r in rows} == {str(served.key_id)}
    assert {r["actor"] for r in rows} == {"operator-anna"}
    assert [r["request"] for r in rows[1:]] == [
        {"status": "waiting"}, {"status": "running"}, {"status": "cancelled"}]
    assert all(r["at"] and r["pipeline_run_id"] == run["id"] for r in rows)
    assert [r["id"] for r in nested["results"]] == [r["id"] for r in rows[1:3]]
    assert nested["count"] == 4 and nested["next"] and nested["previous"]
    # In the stream, each action comes before the status change it caused.
    streamed = [(e.event, e.data.get("action") or e.data.get("to_status")) for e in events
                if e.event == "action" or e.data.get("run_kind") == "pipeline_run"]
    assert streamed.index(("action", "pause")) < streamed.index(("status", "waiting"))
    assert streamed.index(("action", "cancel")) < streamed.index(("status", "cancelled"))
    assert events[-1].event == "end" and events[-1].data["status"] == "cancelled"


async def test_an_action_the_run_refuses_is_recorded_as_refused(served: Served) -> None:
    async with served.client() as http:
        _, runs = await gated_pipeline(http, "refusals", latency_ms=3000)
        run = await ok(http, "POST", runs, {})
        stages = await until(http, f"/runs/{run['id']}/stageruns", lambda c: any(
            s["status"] == "running" for s in c["results"]))
        fleet = next(s for s in stages["results"] if s["name"] == "fleet")
        # The run waits at no gate yet: its workflow refuses the promotion.
        early = await http.put(f"/runs/{run['id']}/stageruns/{fleet['id']}",
                               json={"status": "queued"})
        assert early.status_code == 400, early.text
        await ok(http, "PUT", f"{runs}/{run['id']}", {"status": "cancelled"})
        events = await read_stream(http, f"/runs/{run['id']}/events")
    with Session(served.engine) as session:
        actions = session.exec(select(OperatorAction).where(
            OperatorAction.pipeline_run_id == UUID(run["id"])).order_by(
            col(OperatorAction.id))).all()
    assert [(a.action, a.outcome) for a in actions][:2] == [
        ("start", "done"), ("promote", "refused")]
    assert actions[2].action == "cancel" and actions[2].outcome in ("done", "accepted")
    assert len(actions) == 3
    assert "cannot be promoted" in actions[1].message
    assert actions[1].key_id == served.key_id and actions[1].subject_id == UUID(fleet["id"])
    streamed = [(e.data["action"], e.data["outcome"]) for e in events if e.event == "action"]
    assert streamed == [("start", "requested"), ("promote", "requested"),
                        ("promote", "refused"), ("cancel", "requested")]
