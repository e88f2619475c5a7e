"""The codec endpoint speaks Temporal's remote-codec protocol: the real `temporal` CLI, pointed
at the API over real HTTP (uvicorn), shows a history's sensitive input with an API key and
cannot without one."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
import uvicorn
from sqlalchemy.engine import Engine
from temporalio.client import Client

from api.app import create_app
from domain.inputs import SensitiveValues
from store.definitions.tenants import create_token, ensure_enterprise
from tests.api.conftest import settings_for
from tests.conftest import TEST_CODEC_KEYS, venv_binary
from workflows import names
from workflows.messages import PipelineRunInput


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def served_api(sqlite_engine: Engine) -> AsyncIterator[tuple[str, str]]:
    """(codec endpoint, API key) of the API served by uvicorn on a free local port."""
    key = create_token(sqlite_engine, ensure_enterprise(sqlite_engine, "acme").id, "cli")
    app = create_app(settings_for(codec_keys=TEST_CODEC_KEYS), engine=sqlite_engine)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(30):
        while not server.started:
            await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/codec", key
    finally:
        server.should_exit = True
        await task


async def _show(client: Client, workflow_id: str, *codec: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        venv_binary("temporal"), "workflow", "show", "-w", workflow_id, "-o", "json",
        "--address", client.service_client.config.target_host,
        "--namespace", client.namespace, *codec,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    async with asyncio.timeout(60):
        out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


def _started_input(shown: str) -> tuple[bytes, bytes]:
    """(encoding, data) of the workflow's input, from `temporal workflow show -o json`."""
    started = json.loads(shown)["events"][0]["workflowExecutionStartedEventAttributes"]
    [payload] = started["input"]["payloads"]
    return base64.b64decode(payload["metadata"]["encoding"]), base64.b64decode(payload["data"])


async def test_the_temporal_cli_reads_a_sensitive_input_through_the_codec_endpoint(
        served_api: tuple[str, str], temporal_client: Client, task_queue: str):
    endpoint, key = served_api
    secret = f"cli-secret-{uuid.uuid4().hex}"
    workflow_id = f"codec-cli-{uuid.uuid4()}"
    # Started only to have a history: no worker polls this task queue.
    handle = await temporal_client.start_workflow(
        names.PIPELINE_RUN_WORKFLOW, PipelineRunInput(
            pipeline_run_id=str(uuid.uuid4()), enterprise_id=str(uuid.uuid4()),
            search_attributes=False, sensitive=SensitiveValues({"token": secret})),
        id=workflow_id, task_queue=task_queue)
    try:
        code, shown = await _show(temporal_client, workflow_id, "--codec-endpoint", endpoint,
                                  "--codec-auth", f"Token {key}")
        assert code == 0, shown
        encoding, data = _started_input(shown)
        assert encoding == b"json/plain" and secret.encode() in data
        plain_code, plain = await _show(temporal_client, workflow_id)
        assert plain_code == 0, plain
        encoding, data = _started_input(plain)
        assert encoding == b"binary/encrypted" and secret.encode() not in data
        refused_code, refused = await _show(temporal_client, workflow_id,
                                            "--codec-endpoint", endpoint)
        # Refused with 401, the CLI retries until its deadline and shows nothing.
        assert refused_code != 0, refused
        assert secret not in refused
    finally:
        await handle.terminate("test over")
