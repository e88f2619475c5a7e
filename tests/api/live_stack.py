"""The whole stack for HTTP tests of runs: a real worker with the simulated fleet on the test's
own task queue, the Temporal dev server, SQLite, and the app over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import Engine
from temporalio.client import Client

from tests.api.conftest import Api, api_for, settings_for
from worker import running_worker


@asynccontextmanager
async def live_stack(engine: Engine, client: Client, task_queue: str,
                     enterprise: str = "acme") -> AsyncIterator[Api]:
    settings = settings_for(task_queue=task_queue)
    async with running_worker(client, engine, task_queue=task_queue):
        async with api_for(engine, temporal_client=client, settings=settings,
                           enterprise=enterprise) as api:
            yield api
