"""The FastAPI application: `create_app(settings)`, and `app` for `uvicorn api.app:app`.

Every route lives under the canonical base `/api/pipelines/v0`; the reference documents'
literal bases (`/v0`, `/pipelines/v0`) and trailing slashes reach the same routes without a
redirect (api.middleware). Every response, errors included, is an envelope.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from sqlalchemy.engine import Engine
from temporalio.client import Client

from api.codec_cors import CodecCorsMiddleware
from api.docs_pages import install_docs
from api.envelope import ErrorEnvelope
from api.errors import install_error_handlers
from api.health import install_health
from api.input_guard import InputGuardMiddleware
from api.middleware import (
    CANONICAL_BASE,
    BodyLimitMiddleware,
    CatchAllMiddleware,
    PathAliasMiddleware,
)
from api.observe import RequestObservability, RouteCapture
from api.peers.automation_runs import PREFIX as AUTOMATION_RUNS
from api.peers.automation_runs import errors as automation_runs_errors
from api.peers.automation_runs import router as automation_runs_router
from api.peers.update_run import install_update_run
from api.routers import (
    codec,
    commands,
    device_groups,
    devices,
    operation_lists,
    pipeline_runs,
    pipelines,
    run_events,
    stage_runs,
    stages,
    target_lists,
    target_runs,
)
from api.surfaces import register_surface
from api.ui import install_ui
from control.codec import PayloadCodecService
from control.connection import TemporalConnection
from control.service import RunControl
from observability.logs import configure_logging
from settings import Settings, get_settings
from store.db import make_engine
from store.migrations import require_head

DESCRIPTION = f"""
fleetpipe runs pipelines over fleets of devices. This is the Esper pipelines v0 API.

* **Base path** `{CANONICAL_BASE}`. The reference documents' paths work as written too:
  `/v0/runs`, `/pipelines/v0/pipelines/{{id}}/runs`; a trailing slash is accepted everywhere.
* **Auth**: `Authorization: Token <api-key>` or `Authorization: Bearer <api-key>`
  (create one with `fleetpipe tokens create --enterprise NAME`).
* **Envelope**: every response is `{{"code", "message", "content"}}`; lists are
  `{{"count", "next", "previous", "results"}}` with `limit` (default 20, at most 1000) and
  `offset`.
* **Status PUTs are actions** carried to the run's workflow: a value the run's state refuses is
  a 400 naming what is allowed. Status values are accepted in any case.
"""

TAGS = [
    {"name": "Pipeline Runs", "description": "Runs of a pipeline: start, watch, pause, resume, "
     "cancel, delete."},
    {"name": "Stage Runs", "description": "A run's stages: promote a manual gate, cancel; the "
     "operations each sends."},
    {"name": "Target Runs", "description": "One device x one operation of a stage run, and its "
     "device command."},
    {"name": "Device events", "description": "How a gateway reports command progress."},
    {"name": "Pipelines", "description": "Pipeline definitions (also created whole in one POST)."},
    {"name": "Stages", "description": "A pipeline's ordered stages."},
    {"name": "Target lists", "description": "Devices and device groups a stage targets."},
    {"name": "Operations", "description": "Operation lists of a stage and their operations."},
    {"name": "Devices", "description": "The enterprise's devices."},
    {"name": "Device groups", "description": "Named sets of devices."},
    {"name": "Payload codec", "description": "The Temporal remote codec (`/codec/decode`, "
     "`/codec/encode`): shows a run's encrypted sensitive inputs in the Temporal Web UI."},
    automation_runs_router.TAG,
]

PEER_PREFIXES = (AUTOMATION_RUNS,)
ROUTERS = [pipeline_runs, run_events, stage_runs, target_runs, commands, pipelines, stages,
           target_lists, operation_lists, devices, device_groups]


def _operation_id(route: APIRoute) -> str:
    return route.name


_GENERIC_NAMES = [
    (re.compile(r"^Envelope_list_(\w+?)__$"), r"\1ArrayEnvelope"),
    (re.compile(r"^Envelope_(\w+?)_$"), r"\1Envelope"),
    (re.compile(r"^ListContent_(\w+?)_$"), r"\1List"),
]


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The generated schema, tidied: no 422 responses (validation errors are 400 envelopes)
    and readable names for the envelope models (`PipelineRunPublicEnvelope`)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                             description=app.description, routes=app.routes, tags=app.openapi_tags)
        for template, path in schema.get("paths", {}).items():
            if template.startswith(PEER_PREFIXES):
                continue  # a peer document's own shape: its 422s are what it writes
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        components = schema.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        renames = {}
        for name in components:
            for pattern, replacement in _GENERIC_NAMES:
                if pattern.match(name):
                    renames[name] = pattern.sub(replacement, name)
                    break
        text = json.dumps(schema)
        for old, new in renames.items():
            text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
        tidy = json.loads(text)
        tidy["components"]["schemas"] = {
            renames.get(name, name): value
            for name, value in tidy["components"]["schemas"].items()
        }
        app.openapi_schema = tidy
        return tidy

    return build


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    temporal_client: Client | None = None,
) -> FastAPI:
    """The API. Without `engine` the lifespan opens the settings' database (and refuses it
    unless its schema is at head); without `temporal_client` the run-control service connects
    to Temporal on first need."""
    settings = settings or get_settings()
    temporal = TemporalConnection(settings, temporal_client)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = app.state.engine is None
        if owned:
            configure_logging(settings.log_format)  # the served process, not an embedding test
            app.state.engine = make_engine(settings.resolved_database_url())
            # A store that `fleetpipe db upgrade` has not taken to head is refused.
            require_head(app.state.engine)
            app.state.control = RunControl(app.state.engine, temporal, settings)
        try:
            yield
        finally:
            feed = getattr(app.state, "run_feed", None)
            if feed is not None:  # the shared tail of the run event streams
                await feed.close()
            if owned:
                app.state.engine.dispose()
                app.state.engine = None
                app.state.control = None

    app = FastAPI(
        title="fleetpipe",
        version="0",
        summary="Durable pipeline runs over device fleets (Esper pipelines v0 API)",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,  # served by api.docs_pages, with assets from the package
        redoc_url=None,
        redirect_slashes=False,
        # The REST routes take token auth, never cookies (the run page's session cookie is
        # read only under /ui, behind its CSRF guard): a body without a type is JSON.
        strict_content_type=False,
        generate_unique_id_function=_operation_id,
        responses={401: {"model": ErrorEnvelope,
                         "description": "Missing, unknown or revoked API key"}},
    )
    app.state.settings = settings
    app.state.engine = engine
    # The run-control service is built once, with the engine: here when one is given (an ASGI
    # client in tests may not run the lifespan), else in the lifespan that opens it.
    app.state.control = RunControl(engine, temporal, settings) if engine is not None else None
    app.state.codec = PayloadCodecService(settings.codec_keyring(), settings.temporal_namespace)
    for module in ROUTERS:
        app.include_router(module.router, prefix=CANONICAL_BASE)
    app.include_router(codec.router)  # where the Temporal Web UI's codec setting points
    # Reference 002 as written, under its own path and in its own error shape.
    app.include_router(automation_runs_router.router)
    register_surface(app, AUTOMATION_RUNS, automation_runs_errors.render)
    install_docs(app)
    install_ui(app)
    install_health(app, temporal, lambda request: request.app.state.engine)
    install_error_handlers(app)
    install_update_run(app)  # /v1/runs: its own error shape
    # Last added runs first: request id and metrics, the codec's CORS, aliases, then the size
    # limit, the input guard, the catch-all, then the route capture around the app.
    app.add_middleware(RouteCapture)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(InputGuardMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(PathAliasMiddleware)
    app.add_middleware(CodecCorsMiddleware, origins=settings.codec_origins())
    app.add_middleware(RequestObservability)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app


# Building the app has no side effects: the database opens in the lifespan, Temporal on first use.
app = create_app()
