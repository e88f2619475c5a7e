"""The "update run" document served as written, at `/v1/runs/{run_id}` over target runs.

A sub-application mounted at /v1: its errors are FastAPI's own shape (`{"detail": ...}`, 422
for a body or path that does not validate), while every other path keeps the envelope. It
shares the main app's state (engine, run control), so it needs no lifespan of its own.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.errors import ApiError
from api.peers.update_run.router import router
from control.errors import RunsUnavailable
from domain.update_run import ReportRefused
from store.tenancy import NotFound

BASE = "/v1"


def _detail(code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=code, headers=headers)


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return _detail(exc.code, exc.message, exc.headers)


async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
    return _detail(404, str(exc))


async def _refused(_: Request, exc: ReportRefused) -> JSONResponse:
    return _detail(409, exc.message)


async def _unavailable(_: Request, exc: RunsUnavailable) -> JSONResponse:
    return _detail(503, str(exc))


def install_update_run(app: FastAPI) -> None:
    peer = FastAPI(title="fleetpipe: update run", version="1", docs_url=None, redoc_url=None,
                   redirect_slashes=False,
                   summary="Target runs as the update-run document writes them")
    peer.state = app.state  # the engine and run control the main app holds
    peer.include_router(router)
    peer.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    peer.add_exception_handler(NotFound, _not_found)  # type: ignore[arg-type]
    peer.add_exception_handler(ReportRefused, _refused)  # type: ignore[arg-type]
    peer.add_exception_handler(RunsUnavailable, _unavailable)  # type: ignore[arg-type]
    app.mount(BASE, peer)
