"""Operations endpoints, outside the Esper envelope and without auth: `/healthz` (the process
answers; no I/O), `/readyz` (what the API needs is reachable) and `/metrics` (Prometheus)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.engine import Engine

from control.connection import TemporalConnection
from observability.metrics import exposition
from observability.readiness import Check, check_readiness
from store.health import ping
from store.migrations import require_head


def readiness_checks(engine: Engine, temporal: TemporalConnection) -> list[Check]:
    """What the API needs to serve runs: the store answers and is at the migrations' head,
    and Temporal answers."""

    async def store() -> None:
        await asyncio.to_thread(ping, engine)

    async def migrations() -> None:
        await asyncio.to_thread(require_head, engine)  # raises saying what to run

    return [Check("store", store), Check("migrations", migrations),
            Check("temporal", temporal.check)]


def install_health(app: FastAPI, temporal: TemporalConnection,
                   engine_of: Callable[[Request], Engine | None]) -> None:
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> JSONResponse:
        engine = engine_of(request)
        if engine is None:
            return JSONResponse({"status": "not ready", "not_ready": ["store"],
                                 "checks": {"store": "the store is not open yet"}}, 503)
        readiness = await check_readiness(readiness_checks(engine, temporal))
        return JSONResponse(readiness.body(), readiness.status_code)

    async def metrics() -> Response:
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    for path, endpoint in (("/healthz", healthz), ("/readyz", readyz), ("/metrics", metrics)):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)
