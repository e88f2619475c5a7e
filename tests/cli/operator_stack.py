"""The whole stack for the operator's CLI, reached over real HTTP: the API served by uvicorn on a
loopback port (in a thread, with its own event loop), a real worker with the simulated fleet, the
Temporal dev server and an SQLite file. The CLI runs in-process through Click's runner, in a
thread, so the test's loop keeps serving the worker meanwhile."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import Engine
from temporalio.client import Client
from typer.testing import CliRunner, Result

from api.app import create_app
from cli.main import app as cli_app
from settings import Settings
from store.definitions.tenants import create_token, ensure_enterprise
from worker import running_worker

BASE = "/api/pipelines/v0"
HANG_GUARD = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    url: str
    key: str
    engine: Engine
    enterprise_id: Any
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {"FLEETPIPE_API_URL": self.url, "FLEETPIPE_TOKEN": self.key,
                "XDG_CONFIG_HOME": str(self.home), **extra}

    async def cli(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """`fleetpipe ARGS` in a thread, with this stack's URL and key in the environment."""
        given = env if env is not None else self.env()

        def invoke() -> Result:
            return CliRunner().invoke(cli_app, list(args), env=given)

        async with asyncio.timeout(120):
            return await asyncio.to_thread(invoke)

    async def spawn(self, *args: str) -> asyncio.subprocess.Process:
        """`fleetpipe ARGS` as its own process (the installed entry point), its output piped,
        for a test that reads the output while the command still runs."""
        return await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "fleetpipe"), *args,
            env={**os.environ, **self.env(), "PYTHONUNBUFFERED": "1"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url + BASE, timeout=HANG_GUARD,
                                 headers={"Authorization": f"Token {self.key}"})

    async def ok(self, method: str, path: str, json: Any = None) -> Any:
        async with self.http() as http:
            response = await http.request(method, path, json=json)
        assert response.is_success, response.text
        return response.json()["content"]

    async def until(self, path: str, check: Any, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        content = None
        while time.monotonic() < deadline:
            content = await self.ok("GET", path)
            if check(content):
                return content
            await asyncio.sleep(0.2)
        raise AssertionError(f"{path} never satisfied the check; last: {content}")


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test process keeps its own
        pass


@pytest.fixture
async def stack(sqlite_engine: Engine, temporal_client: Client, task_queue: str,
                tmp_path: Path) -> AsyncIterator[Stack]:
    address = temporal_client.service_client.config.target_host
    settings = Settings(database_url="sqlite://", task_queue=task_queue,
                        temporal_address=address)
    enterprise = ensure_enterprise(sqlite_engine, "acme")
    key = create_token(sqlite_engine, enterprise.id, "cli tests")
    port = free_port()
    server = _Server(uvicorn.Config(create_app(settings, engine=sqlite_engine),
                                    host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    async with running_worker(temporal_client, sqlite_engine, task_queue=task_queue):
        thread.start()
        try:
            async with asyncio.timeout(HANG_GUARD):
                while not server.started:
                    assert thread.is_alive(), "the API server stopped while starting"
                    await asyncio.sleep(0.05)
            yield Stack(url=f"http://127.0.0.1:{port}", key=key, engine=sqlite_engine,
                        enterprise_id=enterprise.id, home=tmp_path / "config")
        finally:
            server.should_exit = True
            await asyncio.to_thread(thread.join, 30)
