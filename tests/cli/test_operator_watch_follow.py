"""How `runs watch` follows a run, over real HTTP against a small server speaking the API's
shapes: it re-reads the run on each event of the run's event stream where the server has one,
and polls (from one second, backing off) where the stream answers 404. The real stack's tests
cover whichever of the two the real API offers; this pins both."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from typer.testing import CliRunner

from cli.main import app
from cli.remote.client import Api, Target
from cli.remote.run_view import RunView
from cli.remote.watch import POLL_FIRST, POLL_MAX, STREAM_COALESCE, follow
from tests.cli.operator_stack import free_port

RUN_ID = "6c1b9f54-7f77-4a53-9d3c-111111111111"


class FakeRuns:
    """One run that succeeds when told; the stream (if offered) tells it after one event."""

    def __init__(self, *, stream: bool) -> None:
        self.status = "running"
        self.waiting_for: dict[str, Any] | None = None
        self.stream = stream
        self.stream_headers: dict[str, str] = {}
        self.app = FastAPI()
        base = "/api/pipelines/v0/runs/{run_id}"
        self.app.get(base)(self.run)
        self.app.get(base + "/stageruns")(self.stage_runs)
        if stream:
            self.app.get(base + "/events")(self.events)

    def _run(self) -> dict[str, Any]:
        return {"id": RUN_ID, "pipeline_id": "p", "pipeline_name": "fake", "run_number": 1,
                "status": self.status, "status_reason": "", "started_at": None,
                "waiting_for": self.waiting_for}

    async def run(self, run_id: str) -> JSONResponse:
        return JSONResponse({"code": 200, "message": "OK", "content": self._run()})

    async def stage_runs(self, run_id: str) -> JSONResponse:
        stage = {"id": "s1", "stage_name": "only", "order": 1, "trigger": "automatic",
                 "status": self.status, "target_run_counts": {"success": 1}}
        return JSONResponse({"code": 200, "message": "OK", "content": {
            "count": 1, "next": None, "previous": None, "results": [stage]}})

    async def events(self, run_id: str, request: Request) -> StreamingResponse:
        self.stream_headers = dict(request.headers)

        async def feed() -> AsyncIterator[str]:
            yield ": keep-alive\n\n"
            await asyncio.sleep(0.2)
            self.status = "success"
            yield 'id: 7\nevent: status\ndata: {"to_status": "success"}\n\n'

        return StreamingResponse(feed(), media_type="text/event-stream")


def _serve(fake: FakeRuns) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(fake.app, host="127.0.0.1", port=port,
                                           log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the fake API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(params=[True, False], ids=["stream", "no-stream"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[FakeRuns, str]]:
    fake = FakeRuns(stream=request.param)
    for url in _serve(fake):
        yield fake, url


def test_follows_the_event_stream_where_offered_else_polls(
        served: tuple[FakeRuns, str]) -> None:
    fake, url = served
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if not fake.stream and len(slept) == 3:
            fake.status = "success"  # the polled run ends after a few unchanged reads
        time.sleep(min(seconds, 0.05))

    with Api(Target(url=url, token="fp_test")) as api:
        views: list[RunView] = []
        last = follow(api, RUN_ID, views.append, sleep=sleep)
    assert last.status == "success" and last.exit_code == 0
    assert [v.status for v in views][-1] == "success"
    if fake.stream:
        assert slept and set(slept) == {STREAM_COALESCE}  # woken by events, never a poll
        assert fake.stream_headers["authorization"] == "Token fp_test"
        assert fake.stream_headers["accept"] == "text/event-stream"
    else:
        # Polled: from one second, backing off while nothing changed, never above the cap.
        assert slept[0] == POLL_FIRST and slept[1] > slept[0] and max(slept) <= POLL_MAX


def test_resume_never_passes_a_gate_by_surprise(tmp_path: Any) -> None:
    fake = FakeRuns(stream=False)
    fake.status = "waiting"
    fake.waiting_for = {"kind": "gate", "stage_run_id": "s1", "stage_name": "only",
                        "stage_order": 1}
    for url in _serve(fake):
        result = CliRunner().invoke(app, ["runs", "resume", RUN_ID, "--api-url", url,
                                          "--token", "fp_test"],
                                    env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert result.exit_code == 1
    assert ("fake#1 is not paused: it waits at the gate of stage 1 (only); pass it with "
            "`fleetpipe runs promote fake#1`") in result.stderr
