"""The run page over real HTTP semantics (httpx over ASGI, a real SQLite store; no browser):
the login and its cookie, redirects without a session, the CSRF and Origin guards, escaping
of what devices are named, and what a waiting run says."""

from __future__ import annotations

from http.cookies import SimpleCookie
from uuid import uuid4

import httpx
import pytest
from sqlalchemy.engine import Engine

from api.ui.session import COOKIE
from store.db import transaction
from store.runs.commands import Command
from store.runs.tables import PipelineRun, StageRun, TargetRun
from tests.api.conftest import Api, settings_for
from tests.api.runs_fixture import seed_runs

NASTY = '<img src=x onerror="alert(1)">'


def browser(api: Api, base_url: str = "http://testserver") -> httpx.AsyncClient:
    """A client like a browser: no Authorization header, cookies kept, redirects not
    followed (the tests look at them)."""
    app = api.http._transport.app  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def signed_in(api: Api, client: httpx.AsyncClient) -> httpx.Response:
    response = await client.post("/ui/login", data={"api_key": api.key},
                                 headers={"Origin": str(client.base_url).rstrip("/")})
    assert response.status_code == 303 and response.headers["location"] == "/ui/"
    return response


def csrf_of(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


async def test_without_a_session_pages_redirect_to_the_login(api: Api):
    async with browser(api) as client:
        for path in ("/ui", "/ui/", f"/ui/runs/{uuid4()}"):
            response = await client.get(path)
            assert response.status_code == 303 and response.headers["location"] == "/ui/login"
        assert (await client.get(f"/ui/runs/{uuid4()}/live")).status_code == 401
        login = await client.get("/ui/login")
        assert login.status_code == 200 and 'name="api_key"' in login.text
        refused = await client.post("/ui/login", data={"api_key": "fp_not-a-key"})
        assert refused.status_code == 401 and "unknown or revoked" in refused.text
        assert COOKIE not in refused.cookies


async def test_the_session_cookie_is_httponly_strict_and_scoped(api: Api):
    async with browser(api) as client:
        response = await signed_in(api, client)
        cookie = SimpleCookie(response.headers["set-cookie"])[COOKIE]
        assert cookie["httponly"] and cookie["samesite"].lower() == "strict"
        assert cookie["path"] == "/ui" and not cookie["secure"]
        assert api.key not in response.headers["set-cookie"]  # encoded, never in clear
        page = await client.get("/ui/")
        assert page.status_code == 200 and "Runs" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_over_https_the_cookie_is_secure(sqlite_engine: Engine):
    from tests.api.conftest import api_for
    settings = settings_for(public_base_url="https://fleet.example.com")
    async with api_for(sqlite_engine, settings=settings) as api:
        async with browser(api, "https://fleet.example.com") as client:
            response = await signed_in(api, client)
            assert SimpleCookie(response.headers["set-cookie"])[COOKIE]["secure"]


async def test_actions_need_the_csrf_token_and_the_own_origin(api: Api):
    seeded = seed_runs(api.engine, api.enterprise_id)
    waiting = seeded.runs[1]
    async with browser(api) as client:
        await signed_in(api, client)
        page = await client.get(f"/ui/runs/{waiting.id}")
        assert page.status_code == 200
        token = csrf_of(page.text)
        for body, headers in (({}, {}), ({"csrf_token": "0" * 64}, {}),
                              ({"csrf_token": token}, {"Origin": "https://evil.example"})):
            refused = await client.post(f"/ui/runs/{waiting.id}/cancel", data=body,
                                        headers=headers)
            assert refused.status_code == 403, body
        assert (await client.post("/ui/logout")).status_code == 403
        # the logout with the token ends the session
        out = await client.post("/ui/logout", data={"csrf_token": token})
        assert out.status_code == 303 and out.headers["location"] == "/ui/login"
        assert (await client.get("/ui/")).status_code == 303


async def test_a_revoked_key_ends_the_session(api: Api):
    from store.definitions.tenants import caller_for_hash, hash_key, revoke_token
    async with browser(api) as client:
        await signed_in(api, client)
        assert (await client.get("/ui/")).status_code == 200
        caller = caller_for_hash(api.engine, hash_key(api.key))
        assert caller is not None
        revoke_token(api.engine, caller.key_id)
        assert (await client.get("/ui/")).status_code == 303


def seed_failed_run(engine: Engine, enterprise_id) -> PipelineRun:  # noqa: ANN001
    with transaction(engine) as session:
        run = PipelineRun(enterprise_id=enterprise_id, pipeline_id=uuid4(),
                          pipeline_name=NASTY, run_number=1, status="failure")
        session.add(run)
        session.flush()
        stage_run = StageRun(pipeline_run_id=run.id, enterprise_id=enterprise_id,
                             stage_id=uuid4(), stage_name=NASTY, order=1, run_number=1,
                             timeout_seconds=60, status="failure")
        session.add(stage_run)
        session.flush()
        target = TargetRun(id=uuid4(), stage_run_id=stage_run.id, pipeline_run_id=run.id,
                           enterprise_id=enterprise_id, stage_run_operation_id=uuid4(),
                           target_id=uuid4(), device_name=NASTY, status="failure",
                           command_status="failure")
        command = Command(id=uuid4(), target_run_id=target.id, enterprise_id=enterprise_id,
                          device_id=target.target_id, operation_type="INSTALL",
                          status="failure", reason="disk full",
                          output={"stderr": "</pre><script>alert(2)</script>"})
        target.command_id = command.id
        session.add(command)
        session.add(target)
    return run


async def test_names_and_outputs_are_escaped_and_failures_shown(api: Api):
    run = seed_failed_run(api.engine, api.enterprise_id)
    async with browser(api) as client:
        await signed_in(api, client)
        for path in ("/ui/", f"/ui/runs/{run.id}", f"/ui/runs/{run.id}/live"):
            page = await client.get(path)
            assert page.status_code == 200
            assert NASTY not in page.text and "<script>alert" not in page.text
            assert "&lt;img src=x onerror=" in page.text
        detail = (await client.get(f"/ui/runs/{run.id}")).text
        assert "disk full" in detail and "&lt;/pre&gt;&lt;script&gt;alert(2)" in detail
        assert "namespaces/default/workflows/pipeline-run-" + str(run.id) in detail


async def test_another_enterprises_run_is_not_found(api: Api, other_api: Api):
    run = seed_failed_run(other_api.engine, other_api.enterprise_id)
    async with browser(api) as client:
        await signed_in(api, client)
        assert (await client.get(f"/ui/runs/{run.id}")).status_code == 404


@pytest.mark.parametrize("waiting_for, words", [
    ({"kind": "gate", "stage_run_id": str(uuid4()), "stage_name": "fleet", "stage_order": 2},
     "Waiting at the manual gate of stage 2 \u201cfleet\u201d"),
    ({"kind": "pause", "by": "k-1", "by_name": "ops", "at": "2026-12-01T10:00:00Z"},
     "Paused by ops (key k-1) since 2026-12-01 10:00:00 UTC"),
])
async def test_waiting_for_in_words(api: Api, waiting_for, words):  # noqa: ANN001
    with transaction(api.engine) as session:
        run = PipelineRun(enterprise_id=api.enterprise_id, pipeline_id=uuid4(),
                          pipeline_name="p", run_number=1, status="waiting",
                          waiting_for=waiting_for)
        session.add(run)
    async with browser(api) as client:
        await signed_in(api, client)
        page = (await client.get(f"/ui/runs/{run.id}")).text
        assert words in page
        assert ('id="resume"' in page) == (waiting_for["kind"] == "pause")
        assert ('id="pause"' in page) == (waiting_for["kind"] == "gate")
