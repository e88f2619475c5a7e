"""The run page in a real browser: Debian's Chromium driven by Playwright, against the API in
its own process (uvicorn, as `fleetpipe api` runs it), a real worker and the Temporal dev
server. Log in, watch a run move, pause and resume it at its gate, promote it, see it end.

With FLEETPIPE_SCREENSHOTS=1 the run page's screenshot is written to docs/images/run-page.png
(the operator guide shows it); otherwise it goes to the test's own folder."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

import worker
from cli.dev_stack import api_command
from settings import Settings
from store.db import make_engine
from store.definitions.tenants import create_token
from store.migrations import upgrade
from tests.builders import StageSpec, make_pipeline
from tests.observability.test_metrics_e2e import until_answers
from tests.observability.test_readiness import free_port

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO = Path(__file__).resolve().parents[3]
SCREENSHOT = REPO / "docs" / "images" / "run-page.png"
# Only against a hang: the run takes seconds; nothing here measures how fast.
HANG_GUARD_MS = 90_000
PIPELINE_NAME = "demo <rollout>"  # shown as text, never as markup


def chromium() -> str:
    """Debian's Chromium (Playwright's own browser download cannot work here). CI installs it
    (.ci/run): there a missing browser fails the test instead of skipping it."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        message = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": .ci/run should have installed it")
        pytest.skip(message)
    return found


@dataclass
class Stack:
    url: str
    key: str
    pipeline_id: str


@pytest.fixture
async def stack(tmp_path: Path, temporal_env: WorkflowEnvironment,
                task_queue: str) -> AsyncIterator[Stack]:
    database_url = f"sqlite:///{tmp_path / 'fleetpipe.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    enterprise_id, pipeline_id = make_pipeline(engine, [
        StageSpec("canary", devices=[{"sim_latency_ms": "1200"} for _ in range(3)]),
        StageSpec("fleet", trigger="manual", devices=[{} for _ in range(4)]),
    ], name=PIPELINE_NAME)
    key = create_token(engine, enterprise_id, "browser test")
    engine.dispose()
    address = temporal_env.client.service_client.config.target_host
    api_port = free_port()
    settings = Settings(database_url=database_url, temporal_address=address,
                        task_queue=task_queue, worker_metrics_port=0)
    stop = asyncio.Event()
    served = asyncio.create_task(worker.serve(settings, stop=stop))
    env = {**os.environ, "FLEETPIPE_DATABASE_URL": database_url,
           "FLEETPIPE_TEMPORAL_ADDRESS": address, "FLEETPIPE_TASK_QUEUE": task_queue,
           "FLEETPIPE_API_HOST": "127.0.0.1", "FLEETPIPE_API_PORT": str(api_port),
           "PYTHONUNBUFFERED": "1"}
    with (tmp_path / "api.log").open("w") as log_file:
        api = subprocess.Popen(api_command(), env=env, stdout=log_file,
                               stderr=subprocess.STDOUT, cwd=REPO)
    try:
        url = f"http://127.0.0.1:{api_port}"
        await until_answers(f"{url}/healthz", api)
        yield Stack(url, key, str(pipeline_id))
    finally:
        api.terminate()
        api.wait(timeout=30)
        stop.set()
        await asyncio.wait_for(served, 60)


def screenshot_path(tmp_path: Path) -> Path:
    if os.environ.get("FLEETPIPE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        return SCREENSHOT
    return tmp_path / "run-page.png"


async def test_a_run_through_the_run_page_in_chromium(stack: Stack, tmp_path: Path):
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=HANG_GUARD_MS)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium(), headless=True)
        try:
            context = await browser.new_context(viewport={"width": 1100, "height": 900})
            context.set_default_timeout(HANG_GUARD_MS)
            page = await context.new_page()
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))

            # no key: the run pages send to the login
            await page.goto(f"{stack.url}/ui/")
            await expect(page).to_have_url(f"{stack.url}/ui/login")
            await page.fill("#api_key", "fp_wrong")
            await page.click("button[type=submit]")
            await expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")
            await page.fill("#api_key", stack.key)
            await page.click("button[type=submit]")
            await expect(page).to_have_url(f"{stack.url}/ui/")

            # the session cookie: HttpOnly (no script sees it), SameSite=Strict, under /ui
            cookies = await context.cookies()
            assert [(c["name"], c["httpOnly"], c["sameSite"], c["path"], c["secure"])
                    for c in cookies] == [("fleetpipe_ui", True, "Strict", "/ui", False)]
            assert await page.evaluate("document.cookie") == ""

            # a run started elsewhere (the REST API) shows in the list; its page opens
            async with httpx.AsyncClient(base_url=stack.url, headers={
                    "Authorization": f"Token {stack.key}"}) as rest:
                started = await rest.post(
                    f"/api/pipelines/v0/pipelines/{stack.pipeline_id}/runs", json={})
                assert started.status_code == 200, started.text
                run_id = started.json()["content"]["id"]
            await page.reload()
            await page.click(f"tr[data-run-id='{run_id}'] td a >> nth=0")
            await expect(page).to_have_url(f"{stack.url}/ui/runs/{run_id}")
            await expect(page.locator("h1")).to_contain_text(PIPELINE_NAME)
            link = page.locator("a.temporal")
            assert await link.get_attribute("href") == (
                f"http://127.0.0.1:8233/namespaces/default/workflows/pipeline-run-{run_id}")

            # it moves without a reload: stage 1 reaches its 3 targets' success, and the run
            # stops at the gate of stage 2 with a Promote button
            stage_one = page.locator("li.stage[data-stage='1']")
            await expect(stage_one).to_have_attribute("data-success", "3")
            await expect(stage_one).to_have_attribute("data-status", "success")
            # (the page polled: its script stamps each update it swapped in)
            await expect(page.locator("#live")).to_have_attribute("data-updated",
                                                                  re.compile(r"^\d{4}-"))
            waiting = page.locator("#waiting-for")
            await expect(waiting).to_have_text(
                "Waiting at the manual gate of stage 2 \u201cfleet\u201d: promote it to go on.")
            await expect(page.locator("li.stage[data-stage='2']")).to_have_class(
                re.compile(r"\bgate\b"))
            promote = page.locator("#promote")
            await expect(promote).to_have_text("Promote \u201cfleet\u201d")
            await page.screenshot(path=str(screenshot_path(tmp_path)), full_page=True)

            # a POST without the session's CSRF token is refused, and changes nothing
            forged = await page.request.post(f"{stack.url}/ui/runs/{run_id}/cancel", form={})
            assert forged.status == 403
            await expect(page.locator("#run-status")).to_have_text("waiting")

            # paused at the gate: says by whom; resumed: back at the gate
            await page.click("#pause")
            await expect(waiting).to_contain_text("Paused by browser test (key ")
            await expect(page.locator("#promote")).to_have_count(0)
            await page.click("#resume")
            await expect(waiting).to_contain_text("manual gate of stage 2")

            # promoted: stage 2 runs its 4 targets and the run ends with success
            await page.click("#promote")
            await expect(page.locator("#run-status")).to_have_text("success")
            await expect(page.locator("li.stage[data-stage='2']")).to_have_attribute(
                "data-success", "4")
            await expect(page.locator("#waiting-for")).to_have_count(0)
            await expect(page.locator(".actions button")).to_have_count(0)

            # logged out: the pages send to the login again
            await page.click("text=Log out")
            await expect(page).to_have_url(f"{stack.url}/ui/login")
            await page.goto(f"{stack.url}/ui/runs/{run_id}")
            await expect(page).to_have_url(f"{stack.url}/ui/login")
            await page.wait_for_load_state("networkidle")
            # everything the pages loaded came from the API itself (no CDN)
            assert requested and all(url.startswith(stack.url + "/") for url in requested), \
                sorted({url for url in requested if not url.startswith(stack.url)})
            assert f"{stack.url}/ui/static/run.js" in requested
        finally:
            await browser.close()


async def test_swagger_and_redoc_render_with_no_way_out(stack: Stack):
    """/docs and /redoc draw the API in Chromium while every request to another host fails."""
    from playwright.async_api import Route, async_playwright, expect

    expect.set_options(timeout=HANG_GUARD_MS)
    outside: list[str] = []

    async def only_local(route: Route) -> None:
        if route.request.url.startswith(stack.url + "/"):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium(), headless=True)
        try:
            page = await browser.new_page()
            await page.route("**/*", only_local)
            await page.goto(f"{stack.url}/docs")
            await expect(page.locator(".swagger-ui .info .title")).to_contain_text("fleetpipe")
            await expect(page.locator(".opblock-summary-path").first).to_be_visible()
            await page.wait_for_load_state("networkidle")  # what it loads once drawn, too
            await page.goto(f"{stack.url}/redoc")
            await expect(page.locator("h1").first).to_contain_text("fleetpipe")
            await expect(page.locator("img[alt='redocly logo']")).to_be_visible()
            await page.wait_for_load_state("networkidle")
            assert outside == []
        finally:
            await browser.close()
