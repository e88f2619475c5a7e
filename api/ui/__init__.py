"""The run page: a small operator UI served by the API at /ui/ (server-rendered HTML, one
vanilla script, nothing from a CDN). It reads the store and acts through run control, exactly
as the REST routes do; the session holds the operator's API key in an HttpOnly cookie."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.ui.router import UI_PATH, router

STATIC_DIR = Path(__file__).resolve().parent / "static"


def install_ui(app: FastAPI) -> None:
    app.mount(f"{UI_PATH}/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.include_router(router)
